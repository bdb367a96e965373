"""The etiquette log consumer: the timeline's entry shape, one list per call and one per
operator and UTC day, both with the policy's retention; queued, written in order, kept while
Redis is away, bounded."""

from __future__ import annotations

import asyncio
import json

from redis.exceptions import ConnectionError as RedisConnectionError

from ari_app.calls.etiquette_log import EtiquetteLog, entry_of, operator_day
from ari_app.calls.events import CallEvent
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

DAY = 1796169600.0  # 2026-12-02 00:00 UTC


class FakePipeline:
    def __init__(self, redis: "FakeRedis") -> None:
        self.redis, self.commands = redis, []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    def rpush(self, key, *values):
        self.commands.append(("rpush", key, values))

    def expire(self, key, seconds):
        self.commands.append(("expire", key, seconds))

    async def execute(self):
        if self.redis.fail_next:
            self.redis.fail_next -= 1
            raise RedisConnectionError("Redis is loading")
        for command, key, value in self.commands:
            self.redis.commands.append(command)
            if command == "rpush":
                self.redis.lists.setdefault(key, []).extend(value)
            else:
                self.redis.ttl[key] = value


class FakeRedis:
    """Only what the log's writer uses: a pipeline of RPUSH and EXPIRE, and LRANGE."""

    def __init__(self) -> None:
        self.lists: dict[str, list[str]] = {}
        self.ttl: dict[str, int] = {}
        self.commands: list[str] = []
        self.fail_next = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def lrange(self, key, start, end):
        return list(self.lists.get(key, []))


def ev(name: str, label: str, at: float = DAY + 3600, operator: str | None = "PJSIP/operator1",
       **data) -> CallEvent:
    return CallEvent(name, "call-1", at, name.split(":")[0], label, operator=operator, data=data)


def test_given_event_when_entry_then_timeline_shape_with_step_and_operator():
    entry = entry_of(ev("hold:check_in_played", "check-in", prompt="checkin-1", held_for=24))
    assert entry == {"t": DAY + 3600, "rule": "hold", "event": "check-in", "prompt": "checkin-1",
                     "held_for": 24, "step": "hold:check_in_played", "operator": "PJSIP/operator1"}


def test_given_time_when_operator_day_then_utc_date():
    assert operator_day(DAY - 1) == "2026-12-01"
    assert operator_day(DAY) == "2026-12-02"


async def test_given_steps_when_written_then_call_and_operator_day_lists_with_retention():
    redis = FakeRedis()
    log = EtiquetteLog(redis, retention_days=90, keys=KEYS)  # type: ignore[arg-type]
    log.start()
    log.on_event(ev("inbound:call_started", "call started", operator=None, number="100"))
    log.on_event(ev("hold:started", "hold started", reason="lookup"))
    log.on_event(CallEvent("hold:state_changed", "call-1", DAY, "hold", "state_changed",
                           old="announcing", new="holding", operator="PJSIP/operator1"))

    entries = await log.read("call-1")
    assert [e["step"] for e in entries] == ["inbound:call_started", "hold:started"]
    assert entries[1]["event"] == "hold started" and entries[1]["reason"] == "lookup"
    day = [json.loads(x) for x in redis.lists[KEYS.operator_day("PJSIP/operator1", "2026-12-02")]]
    assert [(e["step"], e["call_id"]) for e in day] == [("hold:started", "call-1")]
    assert set(redis.ttl.values()) == {90 * 86400}
    assert set(redis.ttl) == {KEYS.timeline("call-1"),
                              KEYS.operator_day("PJSIP/operator1", "2026-12-02")}
    await log.close()


async def test_given_operator_step_without_call_when_written_then_only_in_operator_day():
    redis = FakeRedis()
    log = EtiquetteLog(redis, retention_days=90, keys=KEYS)  # type: ignore[arg-type]
    log.start()
    log.on_event(CallEvent("operator:paused", "", DAY + 60, "operator", "paused",
                           operator="PJSIP/operator1", data={"reason": "break"}))
    await log.flush()

    assert set(redis.lists) == {KEYS.operator_day("PJSIP/operator1", "2026-12-02")}
    day = await log.read_operator("PJSIP/operator1", "2026-12-02")
    assert day == [{"t": DAY + 60, "rule": "operator", "event": "paused", "reason": "break",
                    "step": "operator:paused", "operator": "PJSIP/operator1"}]
    await log.close()


async def test_given_redis_away_when_written_then_kept_and_written_in_order_once_back():
    redis = FakeRedis()
    redis.fail_next = 2
    log = EtiquetteLog(redis, retention_days=1, retry_pause=0.01, keys=KEYS)  # type: ignore[arg-type]
    log.start()
    for n in range(3):
        log.on_event(ev("hold:check_in_played", "check-in", operator=None, n=n))

    entries = await log.read("call-1")
    assert [e["n"] for e in entries] == [0, 1, 2]
    await log.close()


async def test_given_full_queue_when_more_then_oldest_dropped_and_counted():
    log = EtiquetteLog(FakeRedis(), retention_days=1, max_queued=2, keys=KEYS)  # type: ignore[arg-type]
    for n in range(3):
        log.on_event(ev("hold:check_in_played", "check-in", operator=None, n=n))
    assert log.dropped == 1
    log.start()
    assert [e["n"] for e in await log.read("call-1")] == [1, 2]
    await log.close()


async def test_given_writer_not_started_when_read_then_no_wait():
    log = EtiquetteLog(FakeRedis(), retention_days=1, keys=KEYS)  # type: ignore[arg-type]
    log.on_event(ev("hold:started", "hold started"))
    assert await asyncio.wait_for(log.read("call-1"), 1) == []


async def test_given_many_steps_when_written_then_one_rpush_per_list_and_retention_set_once():
    redis = FakeRedis()
    log = EtiquetteLog(redis, retention_days=1, keys=KEYS, linger=0.01)  # type: ignore[arg-type]
    log.start()
    for n in range(5):  # one call's steps in a burst: one round trip
        log.on_event(ev("hold:check_in_played", "check-in", n=n))
    await log.flush()
    assert redis.commands == ["rpush", "rpush", "expire", "expire"]
    log.on_event(ev("hold:check_in_played", "check-in", n=5))  # later: the ttl is still fresh
    entries = await log.read("call-1")
    assert [e["n"] for e in entries] == [0, 1, 2, 3, 4, 5]
    assert redis.commands[4:] == ["rpush", "rpush"]
    await log.close()
