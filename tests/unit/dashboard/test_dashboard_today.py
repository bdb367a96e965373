"""Today's figures (ari_app/dashboard/today.py): what each call event adds to its UTC hour, and
the hourly series and a queue's totals read back from the stored hashes; the writer sums
per hour, and keeps the sums while Redis is away."""

from __future__ import annotations

import asyncio
import calendar
from types import MappingProxyType

from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from ari_app.calls.events import CallEvent
from ari_app.dashboard.today import (TodayFigures, bucket_of, figures_of, hour_of,
                                     hours_of_day, queue_totals, series)
from ari_app.storage import Keyspace

KEYS = Keyspace()

AT = calendar.timegm((2026, 12, 3, 14, 7, 30))  # 14:07:30 UTC


def event(name: str, **data) -> CallEvent:
    return CallEvent(name, "c1", AT, name.split(":")[0], name.split(":")[1],
                     data=MappingProxyType(data))


def test_given_an_instant_when_hour_of_then_its_utc_hour():
    assert hour_of(AT) == "2026-12-03T14"
    hours = hours_of_day(AT)
    assert hours[0] == "2026-12-03T00" and hours[-1] == "2026-12-03T23" and len(hours) == 24


def test_given_lengths_when_bucketed_then_upper_bound_or_more():
    assert bucket_of(0, (10, 30)) == "10"
    assert bucket_of(10, (10, 30)) == "10"
    assert bucket_of(10.5, (10, 30)) == "30"
    assert bucket_of(31, (10, 30)) == "more"


def test_given_a_call_started_when_counted_then_one_call():
    assert figures_of(event("inbound:call_started", number="+1")) == {"calls": 1}


def test_given_a_caller_put_through_when_counted_then_answered_wait_level_and_error():
    figures = figures_of(event("queue:connected", queue="sales", waited=12.0,
                               within_service_level=True, estimate_error=-8.5,
                               operator="PJSIP/operator1"))
    assert figures == {
        "waits": 1, "wait_sum": 12.0, "wait_bucket_30": 1, "answered": 1,
        "within_service_level": 1, "estimates": 1, "estimate_error_sum": 8.5,
        "queue:sales:waits": 1, "queue:sales:wait_sum": 12.0, "queue:sales:answered": 1,
        "queue:sales:within_service_level": 1, "queue:sales:estimates": 1,
        "queue:sales:estimate_error_sum": 8.5}


def test_given_a_late_answer_without_estimate_when_counted_then_no_level_no_error():
    figures = figures_of(event("queue:connected", queue="sales", waited=400,
                               within_service_level=False, estimate_error=None))
    assert figures["answered"] == 1 and figures["wait_bucket_more"] == 1
    assert "within_service_level" not in figures and "estimates" not in figures


def test_given_an_abandon_when_counted_then_abandoned_and_its_wait():
    figures = figures_of(event("queue:abandoned", queue="sales", waited=5, position=2))
    assert figures["abandoned"] == 1 and figures["queue:sales:abandoned"] == 1
    assert figures["wait_bucket_10"] == 1 and "answered" not in figures


def test_given_other_ways_out_of_the_queue_when_counted_then_only_the_wait():
    left = figures_of(event("queue:queue_left", outcome="voicemail", waited=70))
    assert left == {"waits": 1, "wait_sum": 70.0, "wait_bucket_120": 1}
    kept = figures_of(event("queue:place_kept", waited=20, position=1))
    assert kept["waits"] == 1 and "abandoned" not in kept


def test_given_a_queue_entry_when_counted_then_queued_only_when_someone_serves_it():
    assert figures_of(event("queue:entered", queue="sales", operators=1)) == {
        "queued": 1, "queue:sales:queued": 1}
    assert figures_of(event("queue:entered", queue="sales", operators=0)) == {}


def test_given_a_hold_ended_when_counted_then_its_length():
    assert figures_of(event("hold:ended", outcome="resumed", held_for=45)) == {
        "holds": 1, "hold_sum": 45.0, "hold_bucket_60": 1}
    assert figures_of(event("hold:ended", outcome="resumed")) == {}


def test_given_bad_values_when_counted_then_ignored_not_raised():
    assert figures_of(event("hold:ended", held_for=True)) == {}
    assert figures_of(event("hold:ended", held_for=float("nan"))) == {}
    assert "estimates" not in figures_of(event("queue:connected", estimate_error="x"))


def test_given_steps_nobody_counts_when_counted_then_nothing():
    for name in ("hold:check_in_played", "queue:check_in_played", "queue:state_changed",
                 "transfer:ended", "operator:paused"):
        assert figures_of(event(name)) == {}


def test_given_stored_hours_when_series_then_counts_means_and_buckets():
    hours = ["2026-12-03T13", "2026-12-03T14"]
    stored = [{}, {b"calls": b"3", b"answered": b"2", b"waits": b"2", b"wait_sum": b"25.5",
                   b"wait_bucket_10": b"1", b"wait_bucket_30": b"1", b"holds": b"1",
                   b"hold_sum": b"40", b"hold_bucket_60": b"1", b"abandoned": b"1"}]
    quiet, busy = series(hours, stored)
    assert quiet["calls"] == 0 and quiet["mean_wait"] is None and quiet["mean_hold"] is None
    assert busy["hour"] == "2026-12-03T14"
    assert (busy["calls"], busy["answered"], busy["abandoned"]) == (3, 2, 1)
    assert busy["mean_wait"] == 12.8 and busy["mean_hold"] == 40.0
    assert busy["wait_buckets"] == {"10": 1, "30": 1, "60": 0, "120": 0, "300": 0, "more": 0}
    assert busy["hold_buckets"]["60"] == 1


def test_given_stored_hours_when_a_queue_totalled_then_summed_over_the_day():
    stored = [{b"queue:sales:answered": b"2", b"queue:sales:within_service_level": b"1",
               b"queue:sales:estimates": b"2", b"queue:sales:estimate_error_sum": b"30",
               b"queue:other:answered": b"9"},
              {b"queue:sales:answered": b"2", b"queue:sales:abandoned": b"1"}]
    totals = queue_totals("sales", stored)
    assert totals["answered"] == 4 and totals["abandoned"] == 1
    assert totals["service_level_share"] == 0.25 and totals["mean_estimate_error"] == 15.0
    assert queue_totals("none", stored)["service_level_share"] is None


class FakePipeline:
    def __init__(self, redis: "FakeRedis") -> None:
        self.redis, self.commands = redis, []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    def hincrbyfloat(self, key, name, amount):
        self.commands.append(("hincrbyfloat", key, name, amount))

    def expire(self, key, seconds):
        self.commands.append(("expire", key, seconds))

    async def execute(self):
        if self.redis.fail_next:
            self.redis.fail_next -= 1
            raise RedisConnectionError("Redis is loading")
        for command, key, *rest in self.commands:
            if command == "expire":
                self.redis.ttl[key] = rest[0]
            else:
                fields = self.redis.hashes.setdefault(key, {})
                fields[rest[0]] = fields.get(rest[0], 0.0) + rest[1]


class FakeRedis:
    """Only what the writer uses: a pipeline of HINCRBYFLOAT and EXPIRE."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, float]] = {}
        self.ttl: dict[str, int] = {}
        self.fail_next = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


async def test_given_events_when_written_then_summed_per_hour_with_expiry():
    redis = FakeRedis()
    today = TodayFigures(redis, keys=KEYS, linger=0)  # type: ignore[arg-type]
    today.start()
    for _ in range(3):
        today.on_event(event("inbound:call_started"))
    today.on_event(event("queue:abandoned", queue="sales", waited=5))
    await today.flush()
    stored = redis.hashes[KEYS.dashboard_hour("2026-12-03T14")]
    assert stored["calls"] == 3 and stored["queue:sales:abandoned"] == 1
    assert redis.ttl[KEYS.dashboard_hour("2026-12-03T14")] == 3 * 86400
    await today.close()


async def test_given_redis_away_when_events_come_then_kept_summed_and_written_once_back():
    redis = FakeRedis()
    redis.fail_next = 2
    today = TodayFigures(redis, keys=KEYS, linger=0, retry_pause=0.01)  # type: ignore[arg-type]
    with capture_logs() as logs:
        today.start()
        today.on_event(event("inbound:call_started"))
        await asyncio.sleep(0)
        today.on_event(event("inbound:call_started"))
        await today.flush()
    assert redis.hashes[KEYS.dashboard_hour("2026-12-03T14")]["calls"] == 2
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "dashboard figures waits for storage"]
    await today.close()


def test_given_a_call_put_through_at_once_then_answered_but_not_after_a_hold():
    direct = CallEvent("inbound:state_changed", "c1", AT, "inbound", "state_changed",
                       old="ringing_operator", new="connected")
    resumed = CallEvent("inbound:state_changed", "c1", AT, "inbound", "state_changed",
                        old="held", new="connected")
    assert figures_of(direct) == {"answered": 1}
    assert figures_of(resumed) == {}


def test_given_a_caller_of_a_queue_put_through_at_once_then_the_queue_counts_them_answered_in_time():
    """A free operator of the queue took them: no wait in line, so within the service level;
    the hour's own answered comes from the transition (counted once)."""
    put = event("inbound:put_through", queue="sales", waited=6.5)

    assert figures_of(put) == {"queue:sales:answered": 1, "queue:sales:within_service_level": 1}
    assert figures_of(event("inbound:put_through", queue=None, waited=1.0)) == {}
