"""Today's figures for the supervisor dashboard, a consumer of call events: per UTC hour, the
calls, those answered (at once or from a queue), the queue callers abandoned, their waits and the holds' lengths (sum,
count and a few buckets: a distribution, not just a mean), those answered within the queue's
service level, and how far the estimate said was from the wait. Kept in Redis (one hash per
hour, `Keyspace.dashboard_hour`), so every instance adds to and shows the same figures; a
queue's own figures are fields of the same hash (`queue:<name>:<figure>`).

`figures_of(event)` is the pure part (event -> increments). `on_event` only adds them up in
memory (the call never waits for Redis); one task writes what was added, a batch per
pipeline (HINCRBYFLOAT per field, EXPIRE once per hour key and process), `linger` seconds
after the first. With Redis away the increments stay summed in memory (bounded: a counter
per field and hour) and are written when it is back, as the etiquette log does.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping

from redis.asyncio import Redis

from ari_app.calls.events import CallEvent
from ari_app.storage.writer import BackgroundWriter
from ari_app.storage.keyspace import Keyspace

__all__ = ["HOLD_BUCKETS", "TodayFigures", "WAIT_BUCKETS", "bucket_of", "figures_of",
           "hour_of", "hours_of_day", "series"]

# upper bounds in seconds; a value above the last is counted in "more"
WAIT_BUCKETS = (10, 30, 60, 120, 300)
HOLD_BUCKETS = (30, 60, 120, 300, 600)
RETENTION_DAYS = 3
QUEUE_ENDS = ("connected", "abandoned", "queue_left", "place_kept")


def hour_of(at: float) -> str:
    """The UTC hour an event belongs to: "2026-12-03T14"."""
    return time.strftime("%Y-%m-%dT%H", time.gmtime(at))


def hours_of_day(now: float) -> list[str]:
    """Today's UTC hours, 00 to 23."""
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return [f"{day}T{h:02d}" for h in range(24)]


def bucket_of(seconds: float, bounds: tuple[int, ...]) -> str:
    """The bucket a length falls in: its upper bound ("30"), or "more" past the last."""
    for bound in bounds:
        if seconds <= bound:
            return str(bound)
    return "more"


def _length(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return max(0.0, float(value))


def figures_of(event: CallEvent) -> dict[str, float]:
    """What one event adds to its hour: field -> increment (empty for most events)."""
    d, step = event.data, event.step
    match event.rule, step:
        case "inbound", "call_started":
            return {"calls": 1}
        case "inbound", "state_changed" if (event.old, event.new) == ("ringing_operator",
                                                                      "connected"):
            return {"answered": 1}  # put through at once, no queue (the queue counts its own)
        case "hold", "ended":
            held = _length(d.get("held_for"))
            if held is None:
                return {}
            return {"holds": 1, "hold_sum": held,
                    f"hold_bucket_{bucket_of(held, HOLD_BUCKETS)}": 1}
        case "inbound", "put_through" if isinstance(d.get("queue"), str) and d.get("queue"):
            # straight to a free operator of the queue: answered (the hour counts it from the
            # transition above), and within the service level, for the queue's own tiles
            return {f"queue:{d['queue']}:answered": 1,
                    f"queue:{d['queue']}:within_service_level": 1}
        case "queue", "entered" if (d.get("operators") or 0) > 0:
            return _per_queue(d, {"queued": 1})
        case "queue", end if end in QUEUE_ENDS:
            return _queue_end(step, d)
    return {}


def _queue_end(step: str, d: Mapping[str, object]) -> dict[str, float]:
    out: dict[str, float] = {}
    waited = _length(d.get("waited"))
    if waited is not None:
        out.update({"waits": 1, "wait_sum": waited,
                    f"wait_bucket_{bucket_of(waited, WAIT_BUCKETS)}": 1})
    if step == "connected":
        out["answered"] = 1
        if d.get("within_service_level"):
            out["within_service_level"] = 1
        error = d.get("estimate_error")
        if not isinstance(error, bool) and isinstance(error, (int, float)) and math.isfinite(error):
            out.update({"estimates": 1, "estimate_error_sum": abs(float(error))})
    elif step == "abandoned":
        out["abandoned"] = 1
    return _per_queue(d, out)


def _per_queue(d: Mapping[str, object], figures: dict[str, float]) -> dict[str, float]:
    """The hour's figures, and the queue's own (no wait buckets: the tiles need none)."""
    queue = d.get("queue")
    if not isinstance(queue, str) or not queue:
        return figures
    return {**figures, **{f"queue:{queue}:{k}": v for k, v in figures.items()
                          if not k.startswith("wait_bucket_")}}


def _number(raw: object) -> float:
    try:
        return float(raw.decode() if isinstance(raw, bytes) else raw)  # type: ignore[union-attr, arg-type]
    except (TypeError, ValueError):
        return 0.0


def series(hours: list[str], stored: list[Mapping]) -> list[dict]:
    """The hourly series the page draws: one entry per hour, counts as ints, the means of the
    waits and holds, and their buckets."""
    out = []
    for hour, raw in zip(hours, stored):
        h = {(k.decode() if isinstance(k, bytes) else k): _number(v) for k, v in raw.items()}
        waits, holds = h.get("waits", 0.0), h.get("holds", 0.0)
        out.append({
            "hour": hour, "calls": int(h.get("calls", 0)), "queued": int(h.get("queued", 0)),
            "answered": int(h.get("answered", 0)), "abandoned": int(h.get("abandoned", 0)),
            "within_service_level": int(h.get("within_service_level", 0)),
            "waits": int(waits), "mean_wait": round(h["wait_sum"] / waits, 1) if waits else None,
            "holds": int(holds), "mean_hold": round(h["hold_sum"] / holds, 1) if holds else None,
            "wait_buckets": {b: int(h.get(f"wait_bucket_{b}", 0))
                             for b in [*map(str, WAIT_BUCKETS), "more"]},
            "hold_buckets": {b: int(h.get(f"hold_bucket_{b}", 0))
                             for b in [*map(str, HOLD_BUCKETS), "more"]}})
    return out


def queue_totals(queue: str, stored: list[Mapping]) -> dict:
    """One queue's figures summed over the day's hours."""
    prefix = f"queue:{queue}:"
    total: Counter[str] = Counter()
    for raw in stored:
        for k, v in raw.items():
            name = k.decode() if isinstance(k, bytes) else k
            if name.startswith(prefix):
                total[name[len(prefix):]] += _number(v)
    estimates = total["estimates"]
    answered = total["answered"]
    return {"queued": int(total["queued"]), "answered": int(answered),
            "abandoned": int(total["abandoned"]),
            "within_service_level": int(total["within_service_level"]),
            "service_level_share": (round(total["within_service_level"] / answered, 3)
                                    if answered else None),
            "mean_estimate_error": (round(total["estimate_error_sum"] / estimates, 1)
                                    if estimates else None)}


class TodayFigures(BackgroundWriter):
    what = "dashboard figures"

    def __init__(self, redis: Redis, *, keys: Keyspace, retention_days: int = RETENTION_DAYS,
                 retry_pause: float = 0.5, linger: float = 0.2) -> None:
        super().__init__(retry_pause=retry_pause, linger=linger)
        self.redis, self.keys = redis, keys
        self.ttl = int(retention_days * 86400)
        self._pending: dict[str, Counter[str]] = {}  # hour -> field -> increment
        self._expiring: set[str] = set()  # hour keys whose expiry this process set

    # --- the consumer (sync, cheap) ------------------------------------------------------
    def on_event(self, event: CallEvent) -> None:
        figures = figures_of(event)
        if not figures:
            return
        self._pending.setdefault(hour_of(event.at), Counter()).update(figures)
        self._queued()

    # --- the writer (storage/writer.py runs it) -----------------------------------------
    def _has_pending(self) -> bool:
        return bool(self._pending)

    def _take(self) -> dict[str, Counter[str]]:
        batch, self._pending = self._pending, {}
        return batch

    def _put_back(self, batch: dict[str, Counter[str]]) -> None:
        for hour, figures in batch.items():  # kept, added to what came meanwhile
            self._pending.setdefault(hour, Counter()).update(figures)

    async def _write(self, batch: dict[str, Counter[str]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for hour, figures in batch.items():
                key = self.keys.dashboard_hour(hour)
                for name, n in figures.items():
                    pipe.hincrbyfloat(key, name, n)
                if key not in self._expiring:
                    pipe.expire(key, self.ttl)
            await pipe.execute()
        self._expiring.update(self.keys.dashboard_hour(h) for h in batch)
        if len(self._expiring) > 1000:
            self._expiring.clear()

    # --- reading -------------------------------------------------------------------------
    async def day(self, now: float) -> tuple[list[str], list[Mapping]]:
        """Today's hours and each hour's stored hash (empty for an hour with nothing); what
        this process has not written yet (at most `linger` old) shows on the next read."""
        hours = hours_of_day(now)
        async with self.redis.pipeline(transaction=False) as pipe:
            for hour in hours:
                pipe.hgetall(self.keys.dashboard_hour(hour))
            return hours, await pipe.execute()
