"""The supervisor dashboard's snapshot: everything a supervisor watches, read from the same
Redis every instance writes, in one answer (`GET /api/dashboard`):

- the queues: who waits and for how long, the estimate a caller entering now would be told,
  and today's answered, abandoned, within the service level and the estimate's mean error;
- the operators: state and since when, and each current hold with its start, next check-in
  and the time the caller is offered the way out (the hold nearing it flagged);
- the callback requests still open, late ones first, with the window they were promised;
- the open complaints, newest first;
- today's figures per UTC hour (dashboard/today.py).

The page re-fetches it when the live stream says something happened; it counts the timers
itself between fetches (`now` is the server's clock, so the page can correct its own).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from ari_app.callback.service import CallbackRequest, CallbackRequests
from ari_app.dashboard.today import TodayFigures, queue_totals, series
from ari_app.escalation.service import Complaints
from ari_app.operators.service import OperatorService
from ari_app.queue.estimate import EstimateSettings, estimate_wait
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.reads import get_each

if TYPE_CHECKING:
    from ari_app.queue.service import QueueDesk

__all__ = ["Dashboard", "NEAR_WAY_OUT", "callbacks_late_first", "hold_of", "nearing_way_out"]

NEAR_WAY_OUT = 30.0  # s before the way out, or past 2/3 of the hold's stretch: highlighted
MAX_COMPLAINTS = 100  # the newest open ones shown
MIN_GAP = 0.25  # s between two builds of the snapshot: at most four a second, whoever asks


def nearing_way_out(way_out_at: float | None, stretch: float | None, now: float) -> bool:
    """A hold whose caller is about to be offered the way out (voicemail, callback): within
    NEAR_WAY_OUT seconds of it, or past two thirds of the stretch that leads to it."""
    if way_out_at is None:
        return False
    left = way_out_at - now
    if left <= NEAR_WAY_OUT:
        return True
    return bool(stretch) and left <= stretch / 3  # type: ignore[operator]


def hold_of(call_id: str, snapshot: Mapping[str, Any], now: float) -> dict:
    """A hold snapshot (hold/machine.py `to_dict`) as the dashboard shows it."""
    settings = snapshot.get("settings") or {}
    way_out = snapshot.get("fallback_at")
    stretch = settings.get("fallback_after")
    return {"call_id": call_id, "state": snapshot.get("state"),
            "reason": snapshot.get("reason"), "started_at": snapshot.get("started_at"),
            "next_check_in": snapshot.get("next_check_in"), "way_out_at": way_out,
            "way_out_after": stretch,
            "nearing_way_out": nearing_way_out(way_out, stretch, now)}


def callbacks_late_first(requests: Sequence[CallbackRequest], now: float) -> list[dict]:
    """The open requests, those past their promised window first (the latest promise first:
    the longest overdue), then by when their window ends, then by when they were made."""
    def order(r: CallbackRequest) -> tuple:
        latest = r.latest_at if r.latest_at is not None else float("inf")
        return (0 if latest < now else 1, latest, r.created_at)

    return [{"id": r.id, "number": r.number, "name": r.name, "topic": r.topic,
             "source": r.source, "status": r.status, "for_whom": r.for_whom,
             "window": {"earliest": r.earliest_at, "latest": r.latest_at,
                        "time_zone": r.time_zone},
             "late": r.latest_at is not None and r.latest_at < now,
             "attempts": r.attempts, "next_attempt_at": r.next_attempt_at,
             "created_at": r.created_at}
            for r in sorted((r for r in requests if r.status in ("pending", "dialing")),
                            key=order)]


def _retrieved(future: asyncio.Future) -> None:
    """Every request that waited may have left: the outcome is taken, never "never retrieved"."""
    if not future.cancelled():
        future.exception()


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class Dashboard:
    def __init__(self, redis: Redis, *, keys: Keyspace, today: TodayFigures,
                 operators: OperatorService, callbacks: CallbackRequests,
                 complaints: Complaints, queues: QueueDesk | None = None,
                 clock: Callable[[], float] = time.time, min_gap: float = MIN_GAP) -> None:
        self.redis, self.keys, self.today = redis, keys, today
        self.operators, self.callbacks, self.complaints = operators, callbacks, complaints
        self.queues, self.clock = queues, clock
        self._next: asyncio.Future | None = None    # the snapshot the requests now wait for
        self._builder: asyncio.Task | None = None
        self.min_gap, self._last_build = min_gap, float("-inf")

    async def snapshot(self) -> dict:
        return json.loads(await self.snapshot_body())

    async def snapshot_body(self) -> bytes:
        """The snapshot as JSON, begun after this request came: requests arriving while one
        is being built share the next one (built and encoded once), built as soon as that one
        is done. So it is never older than the event that made a page ask, and twenty open
        dashboards cost about what one does (at most one build every `min_gap` s)."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieved)
            if self._builder is None or self._builder.done():
                self._builder = asyncio.get_running_loop().create_task(
                    self._build_while_asked(), name="dashboard-snapshot")
        return await asyncio.shield(self._next)

    async def _build_while_asked(self) -> None:
        loop = asyncio.get_running_loop()
        while self._next is not None:
            # at most one build every `min_gap` s, however many pages ask
            await asyncio.sleep(max(0.0, self._last_build + self.min_gap - loop.time()))
            self._last_build = loop.time()
            asked, self._next = self._next, None  # who asks from now on waits for the next
            try:
                asked.set_result(json.dumps(await self._build(),
                                            separators=(",", ":")).encode())
            except Exception as exc:  # each waiting request answers it (503 for Redis away)
                asked.set_exception(exc)

    async def _build(self) -> dict:
        now = self.clock()
        hours, stored = await self.today.day(now)
        return {"now": round(now, 3),
                "queues": await self._queues(now, stored),
                "operators": await self._operators(now),
                "callbacks": callbacks_late_first(await self.callbacks.pending(), now),
                "complaints": await self._complaints(),
                "today": series(hours, stored)}

    async def _queues(self, now: float, stored: list[Mapping]) -> list[dict]:
        if self.queues is None:
            return []
        out = []
        for queue in await self.queues.listing():
            policy = self.queues.policies[queue["name"]]
            listed = queue["operators"]
            estimate = estimate_wait(
                len(queue["waiting"]) + 1, now=now,
                handle_times=await self.queues.handle_times(queue["name"]),
                available=sum(1 for o in listed if o["state"] == "logged_in"),
                free=sum(1 for o in listed if o["free"]),
                settings=EstimateSettings(default_handle_time=policy.default_handle_time))
            out.append({**queue, "operators": [o["endpoint"] for o in listed],
                        "service_level": policy.service_level,
                        "estimate": {"said": estimate.said, "minutes": estimate.minutes,
                                     "seconds": (None if estimate.seconds is None
                                                 else round(estimate.seconds, 1)),
                                     "basis": estimate.basis},
                        "today": queue_totals(queue["name"], stored)})
        return out

    async def _operators(self, now: float) -> list[dict]:
        """Every operator with the holds of their calls (the hold snapshots of the live calls
        whose operator they are: pipelined reads, storage/reads.py)."""
        operators = await self.operators.listing()
        calls = sorted(_text(c) for c in await self.redis.smembers(self.keys.live_calls()))
        holds: dict[str, list[dict]] = {}
        if calls:
            raws = await get_each(self.redis, [key for call_id in calls for key in (
                self.keys.call(call_id), self.keys.snapshot("hold", call_id))])
            for call_id, call_raw, hold_raw in zip(calls, raws[::2], raws[1::2]):
                if not call_raw or not hold_raw:
                    continue
                call, hold = json.loads(call_raw), json.loads(hold_raw)
                if hold.get("state") in ("ended", "done"):
                    continue
                operator = call.get("operator") or ""
                holds.setdefault(operator, []).append(
                    {**hold_of(call_id, hold, now), "caller": call.get("number")})
        return [{**o, "holds": holds.get(o["endpoint"], [])} for o in operators]

    async def _complaints(self) -> list[dict]:
        ids = await self.redis.zrevrange(self.complaints.index_key, 0, MAX_COMPLAINTS * 2 - 1)
        out = []
        for raw_id in ids:
            complaint = await self.complaints.get(_text(raw_id))
            if complaint is None or complaint.status != "open":
                continue
            out.append({"id": complaint.id, "call_id": complaint.call_id,
                        "caller_number": complaint.caller_number,
                        "caller_name": complaint.caller_name, "operator": complaint.operator,
                        "recorded": complaint.recording is not None,
                        "duration": complaint.duration, "callback_id": complaint.callback_id,
                        "created_at": complaint.created_at})
            if len(out) >= MAX_COMPLAINTS:
                break
        return out
