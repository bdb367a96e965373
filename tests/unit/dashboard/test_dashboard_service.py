"""The dashboard's snapshot (ari_app/dashboard/service.py): callbacks late first, and a hold
nearing its way out flagged."""

from __future__ import annotations

import asyncio

from ari_app.callback.service import CallbackRequest
from ari_app.dashboard.service import (Dashboard, callbacks_late_first, hold_of,
                                       nearing_way_out)

NOW = 1_000_000.0


def request(rid: str, latest: float | None, created: float = NOW - 600,
            status: str = "pending") -> CallbackRequest:
    return CallbackRequest(number="+12125550100", source="web", id=rid, created_at=created,
                           latest_at=latest, earliest_at=None if latest is None else latest - 1800,
                           status=status)


def test_given_open_requests_when_listed_then_late_first_longest_overdue_first():
    listed = callbacks_late_first([
        request("soon", NOW + 600), request("late-a-bit", NOW - 60),
        request("no-window", None), request("very-late", NOW - 3600),
        request("later", NOW + 7200)], NOW)
    assert [c["id"] for c in listed] == ["very-late", "late-a-bit", "soon", "later",
                                         "no-window"]
    assert [c["late"] for c in listed] == [True, True, False, False, False]
    assert listed[0]["window"]["latest"] == NOW - 3600


def test_given_done_or_failed_requests_when_listed_then_left_out():
    listed = callbacks_late_first([request("done", NOW - 10, status="done"),
                                   request("failed", NOW - 10, status="failed"),
                                   request("dialing", NOW - 10, status="dialing")], NOW)
    assert [c["id"] for c in listed] == ["dialing"]


def test_given_same_window_when_listed_then_oldest_request_first():
    listed = callbacks_late_first([request("b", NOW + 60, created=NOW - 10),
                                   request("a", NOW + 60, created=NOW - 20)], NOW)
    assert [c["id"] for c in listed] == ["a", "b"]


def test_given_a_hold_when_far_from_its_way_out_then_not_nearing():
    assert not nearing_way_out(NOW + 100, 120, NOW)      # 20 s of 120 gone
    assert not nearing_way_out(None, 120, NOW)


def test_given_a_hold_within_30_s_or_past_two_thirds_when_checked_then_nearing():
    assert nearing_way_out(NOW + 30, 600, NOW)           # within 30 s
    assert nearing_way_out(NOW + 39, 120, NOW)           # 81 s of 120 gone: past 2/3
    assert nearing_way_out(NOW - 5, 120, NOW)            # past it
    assert not nearing_way_out(NOW + 41, 120, NOW)


def test_given_a_hold_snapshot_when_shown_then_its_timers():
    shown = hold_of("c1", {"state": "holding", "reason": "lookup", "started_at": NOW - 50,
                           "next_check_in": NOW + 10, "fallback_at": NOW + 20,
                           "settings": {"fallback_after": 70}}, NOW)
    assert shown == {"call_id": "c1", "state": "holding", "reason": "lookup",
                     "started_at": NOW - 50, "next_check_in": NOW + 10, "way_out_at": NOW + 20,
                     "way_out_after": 70, "nearing_way_out": True}


class CountingDashboard(Dashboard):
    """The snapshot's sharing alone: each build waits for the test to let it finish."""

    def __init__(self) -> None:
        super().__init__(None, keys=None, today=None, operators=None,  # type: ignore[arg-type]
                         callbacks=None, complaints=None, min_gap=0.0)
        self.builds = 0
        self.release = asyncio.Event()

    async def _build(self) -> dict:
        self.builds += 1
        number = self.builds
        await self.release.wait()
        self.release.clear()
        return {"build": number}


async def test_given_requests_while_a_snapshot_is_built_when_answered_then_they_share_the_next():
    board = CountingDashboard()
    first = asyncio.create_task(board.snapshot())
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first build has begun
    later = [asyncio.create_task(board.snapshot()) for _ in range(5)]
    await asyncio.sleep(0)
    board.release.set()
    assert await first == {"build": 1}
    await asyncio.sleep(0)
    board.release.set()
    # all five came after build 1 began: none gets it, all get build 2, built once
    assert [await t for t in later] == [{"build": 2}] * 5
    assert board.builds == 2


async def test_given_a_build_fails_when_answered_then_every_waiting_request_gets_the_error():
    class Failing(CountingDashboard):
        async def _build(self) -> dict:
            raise ConnectionError("redis away")

    board = Failing()
    results = await asyncio.gather(board.snapshot(), board.snapshot(), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert isinstance(await asyncio.gather(board.snapshot(), return_exceptions=True), list)


async def test_given_many_requests_when_built_then_builds_at_least_min_gap_apart():
    class Timed(Dashboard):
        def __init__(self) -> None:
            super().__init__(None, keys=None, today=None, operators=None,  # type: ignore[arg-type]
                             callbacks=None, complaints=None, min_gap=0.05)
            self.starts: list[float] = []

        async def _build(self) -> dict:
            self.starts.append(asyncio.get_running_loop().time())
            return {}

    board = Timed()
    for _ in range(3):
        await asyncio.gather(*(board.snapshot() for _ in range(4)))
    assert len(board.starts) == 3
    assert all(b - a >= 0.049 for a, b in zip(board.starts, board.starts[1:]))
