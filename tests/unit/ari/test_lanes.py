"""Lanes: one ordered lane (task) per call, created on demand and gone once drained."""

import asyncio

import structlog
from structlog.testing import capture_logs

from ari_app.ari.lanes import Lanes


def lane_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("lane:")]


async def test_given_items_on_one_key_when_handled_then_order_is_kept():
    seen: list[tuple[str, int]] = []

    async def handler(key, item):
        await asyncio.sleep(0)  # yield between items: other lanes may run, this one may not reorder
        seen.append((key, item))

    lanes = Lanes(handler)
    for i in range(5):
        lanes.submit("a", i)
        lanes.submit("b", i)
    await lanes.join()

    assert [i for k, i in seen if k == "a"] == [0, 1, 2, 3, 4]
    assert [i for k, i in seen if k == "b"] == [0, 1, 2, 3, 4]


async def test_given_item_submitted_while_lane_busy_when_drained_then_same_lane_handles_it():
    tasks: list[asyncio.Task] = []
    first_started, release = asyncio.Event(), asyncio.Event()

    async def handler(key, item):
        tasks.append(asyncio.current_task())
        if item == 1:
            first_started.set()
            await release.wait()

    lanes = Lanes(handler)
    lanes.submit("a", 1)
    await first_started.wait()
    lanes.submit("a", 2)
    assert len(lanes) == 1
    release.set()
    await lanes.join()

    assert len(tasks) == 2 and tasks[0] is tasks[1]


async def test_given_slow_handler_on_key_a_when_key_b_submitted_then_b_is_not_delayed():
    a_started, a_release, b_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def handler(key, item):
        if key == "a":
            a_started.set()
            await a_release.wait()
        else:
            b_done.set()
        finished.append(key)

    lanes = Lanes(handler)
    lanes.submit("a", "slow")
    await a_started.wait()
    lanes.submit("b", "quick")

    await asyncio.wait_for(b_done.wait(), timeout=5)  # safety net only: a is still blocked
    assert not a_release.is_set()
    assert finished == ["b"]  # b finished while a is still blocked
    assert len(lanes) == 1

    a_release.set()
    await lanes.join()
    assert finished == ["b", "a"]


async def test_given_handler_raises_when_lane_continues_then_error_logged_and_next_item_handled():
    seen: list[str] = []

    async def handler(key, item):
        if item["type"] == "Boom":
            raise RuntimeError("kaboom")
        seen.append(item["type"])

    lanes = Lanes(handler)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        lanes.submit("call-1", {"type": "StasisStart"})
        lanes.submit("call-1", {"type": "Boom"})
        lanes.submit("call-1", {"type": "StasisEnd"})
        await lanes.join()

    assert seen == ["StasisStart", "StasisEnd"]
    errors = [e for e in logs if e["event"] == "call handler failed"]
    assert len(errors) == 1
    assert errors[0]["log_level"] == "error"
    assert errors[0]["item"] == "Boom"
    assert errors[0]["call_id"] == "call-1"
    assert errors[0]["exc_info"] is True
    assert len(lanes) == 0


async def test_given_lanes_with_work_when_joined_then_every_lane_task_has_ended():
    async def handler(key, item):
        await asyncio.sleep(0)

    lanes = Lanes(handler)
    for key in ("a", "b", "c"):
        lanes.submit(key, 1)
        lanes.submit(key, 2)
    assert len(lanes) == 3

    await lanes.join()

    assert len(lanes) == 0
    assert lane_tasks() == []


async def test_given_drained_lane_when_new_item_then_fresh_lane_handles_it():
    tasks: list[asyncio.Task] = []

    async def handler(key, item):
        tasks.append(asyncio.current_task())

    lanes = Lanes(handler)
    lanes.submit("a", 1)
    await lanes.join()
    lanes.submit("a", 2)
    await lanes.join()

    assert len(tasks) == 2 and tasks[0] is not tasks[1]
    assert len(lanes) == 0


async def test_given_handler_running_when_closed_then_cancelled_and_no_lane_left():
    started = asyncio.Event()
    outcome: list[str] = []
    handled: list[int] = []

    async def handler(key, item):
        handled.append(item)
        started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    lanes = Lanes(handler)
    lanes.submit("a", 1)
    lanes.submit("a", 2)
    await started.wait()

    await lanes.close()

    assert outcome == ["cancelled"]
    assert handled == [1]  # the queued item is dropped, not handled after close
    assert len(lanes) == 0
    assert lane_tasks() == []


async def test_given_lane_not_started_yet_when_closed_then_no_lane_left_and_key_usable():
    handled: list[int] = []

    async def handler(key, item):
        handled.append(item)

    lanes = Lanes(handler)
    lanes.submit("a", 1)  # task created, not yet run
    await lanes.close()
    assert len(lanes) == 0

    lanes.submit("a", 2)
    await lanes.join()
    assert handled == [2]


async def test_given_handler_when_it_logs_then_call_id_is_the_lane_key():
    async def handler(key, item):
        structlog.get_logger().info("handling", item=item)

    lanes = Lanes(handler)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        lanes.submit("call-a", 1)
        lanes.submit("call-b", 2)
        await lanes.join()

    assert sorted((e["call_id"], e["item"]) for e in logs if e["event"] == "handling") == [
        ("call-a", 1), ("call-b", 2)]


async def test_given_lane_bound_call_id_when_submitter_logs_then_its_context_is_untouched():
    async def handler(key, item):
        pass

    lanes = Lanes(handler)
    structlog.contextvars.clear_contextvars()
    lanes.submit("call-a", 1)
    await lanes.join()

    assert "call_id" not in structlog.contextvars.get_contextvars()


class StorageAway(Exception):
    pass


async def test_given_storage_away_when_item_fails_then_it_is_retried_in_order_once_back():
    """Redis restarting: the call's events wait at the head of its lane, none is dropped."""
    seen: list[int] = []
    failures = {"left": 3}
    stalled_seen: list[object] = []

    async def handler(key, item):
        if item == 1 and failures["left"]:
            failures["left"] -= 1
            raise StorageAway("redis not reachable")
        seen.append(item)

    lanes = Lanes(handler, retry_on=(StorageAway,), retry_backoff=(0.01, 0.02))
    with capture_logs() as logs:
        for i in range(3):
            lanes.submit("a", i)
        while not lanes.stalled("a"):
            await asyncio.sleep(0.005)
        stalled_seen.append(lanes.stalled("a"))
        await lanes.join()

    assert seen == [0, 1, 2]
    assert isinstance(stalled_seen[0], StorageAway)
    assert lanes.stalled("a") is None and not lane_tasks()
    events = [entry["event"] for entry in logs]
    assert events.count("call waits for storage") == 1, "one warning per outage, not per retry"
    assert "call resumed after storage came back" in events
    assert "call handler failed" not in events


async def test_given_other_error_when_item_fails_then_logged_and_lane_goes_on():
    seen: list[int] = []

    async def handler(key, item):
        if item == 0:
            raise RuntimeError("bug")
        seen.append(item)

    lanes = Lanes(handler, retry_on=(StorageAway,))
    with capture_logs() as logs:
        lanes.submit("a", 0)
        lanes.submit("a", 1)
        await lanes.join()
    assert seen == [1]
    assert [e["event"] for e in logs] == ["call handler failed"]


async def test_given_stalled_lane_when_request_queued_then_it_is_answered_at_once():
    """An API request must not wait behind a call's events for storage to come back."""
    release = asyncio.Event()
    answered: list[tuple[object, Exception]] = []

    async def handler(key, item):
        if item == "event" and not release.is_set():
            raise StorageAway("redis not reachable")

    def refuse(item, why):
        if item == "request":
            answered.append((item, why))
            return True
        return False

    lanes = Lanes(handler, retry_on=(StorageAway,), retry_backoff=(0.01, 0.02),
                  refuse_while_stalled=refuse)
    lanes.submit("a", "event")
    lanes.submit("a", "request")  # queued before the stall is known
    while not lanes.stalled("a"):
        await asyncio.sleep(0.005)
    lanes.submit("a", "request")  # submitted while stalled
    assert [item for item, _ in answered] == ["request", "request"]
    assert all(isinstance(why, StorageAway) for _, why in answered)
    release.set()
    await lanes.join()
    assert not lane_tasks()


async def test_given_stalled_lane_when_items_wait_then_each_is_offered_to_while_stalled():
    """What must not wait for storage (music after a prompt) is done meanwhile; the items
    themselves still run in order once storage is back."""
    release = asyncio.Event()
    offered: list[tuple[str, object]] = []
    seen: list[object] = []

    async def handler(key, item):
        if item == "tick" and not release.is_set():
            raise StorageAway("redis not reachable")
        seen.append(item)

    async def meanwhile(key, item):
        offered.append((key, item))
        if item == "prompt ended":
            release.set()  # storage back at the next retry

    lanes = Lanes(handler, retry_on=(StorageAway,), retry_backoff=(0.01, 0.02),
                  while_stalled=meanwhile)
    lanes.submit("a", "tick")
    while not lanes.stalled("a"):
        await asyncio.sleep(0.005)
    lanes.submit("a", "prompt ended")
    await lanes.join()

    assert ("a", "tick") in offered and ("a", "prompt ended") in offered
    assert seen == ["tick", "prompt ended"] and not lane_tasks()
