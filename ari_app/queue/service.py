"""The queues as a service: who is in line where, what a caller entering is told, who serves
each queue, and what the queue remembers between calls (recent handle times, callers who hung
up while waiting). Shared by every app instance through Redis.

What a caller entering is told is decided here from the line and the operators: closed (outside
the queue's hours) or full (`max_waiting`) is an overflow; no operator logged in is "we cannot
say how long"; else the place and the estimate of `estimate.py`. A caller who hung up while
waiting and calls again within `return_window` seconds is put back at their old place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import structlog
from redis.asyncio import Redis

from ari_app.calls.vocabulary import prompt_media
from ari_app.operators.service import OperatorService
from ari_app.prompts.catalog import spoken_minutes
from ari_app.policy import BusinessHours, Policy, QueuePolicy
from ari_app.queue.estimate import EstimateSettings, HandleTimes, estimate_wait
from ari_app.queue.machine import QueueEntered, QueueRefused
from ari_app.queue.store import CALLBACK, LIVE, QueueEntry, QueueStore
from ari_app.storage.keyspace import Keyspace

__all__ = ["Joined", "QueueDesk"]

logger = structlog.get_logger()


@dataclass(frozen=True)
class Joined:
    """What entering the queue came to: the machine's event, and whether the caller is in line
    (a refused or operator-less caller is not: nobody would ever take them)."""
    event: QueueEntered | QueueRefused
    in_line: bool


class QueueDesk:
    def __init__(self, redis: Redis, policy: Policy, operators: OperatorService, *,
                 keys: Keyspace, clock: Callable[[], float] = time.time,
                 node: str | None = None) -> None:
        self.redis, self.keys, self.clock = redis, keys, clock
        self.node = node  # this instance's Asterisk node: its callers' entries say so
        self.store = QueueStore(redis, keys=keys)
        self.policies: Mapping[str, QueuePolicy] = {q.name: q for q in policy.queues}
        self.business: BusinessHours = policy.business_hours
        self._operators = {
            q.name: operators.for_endpoints(q.operators or policy.operators.endpoints)
            for q in policy.queues}

    @property
    def names(self) -> list[str]:
        return list(self.policies)

    def default(self) -> str | None:
        """The queue of a call whose dialplan names none: the policy's first."""
        return next(iter(self.policies), None)

    def for_number(self, dialled: str) -> str | None:
        """The queue that lists the number the caller dialled, else the policy's first."""
        for name, policy in self.policies.items():
            if dialled in policy.extensions:
                return name
        return self.default()

    def operators(self, queue: str) -> OperatorService:
        """The operators who serve `queue` (its `operators`, else all of the policy's)."""
        return self._operators[queue]

    def queues_of(self, endpoint: str) -> list[str]:
        return [name for name, ops in self._operators.items() if endpoint in ops.endpoints]

    # --- a caller entering, leaving, coming back ------------------------------------------
    async def someone_waiting(self, queue: str) -> bool:
        return await self.store.length(queue) > 0

    async def returning(self, queue: str, number: str) -> bool:
        """Did `number` hang up while waiting in `queue`, within the return window?"""
        if not number or queue not in self.policies:
            return False
        return bool(await self.redis.exists(self.keys.queue_left(queue, number)))

    async def join(self, queue: str, call_id: str, number: str, language: str = "en"
                   ) -> Joined:
        """Put the caller in line (back at their old place when they return) and say what they
        are told; an overflow or a queue nobody serves leaves them out of line."""
        policy, now = self.policies[queue], self.clock()
        hours = policy.hours
        moment = datetime.fromtimestamp(now, timezone.utc)
        if hours is not None:
            local = moment.astimezone(self.business.zone).time()
            closed = local not in hours
        else:
            closed = not self.business.is_open(moment)
        if closed:
            return Joined(QueueRefused(now, "closed", _hours_said(
                hours or self.business.hours_on(moment.astimezone(self.business.zone)
                                                .weekday()))), False)
        operators = self.operators(queue)
        available, free = await operators.counts()
        if available == 0:
            return Joined(QueueEntered(now, 0, _NO_ESTIMATE, 0), False)
        if await self.store.length(queue) >= policy.max_waiting:
            return Joined(QueueRefused(now, "full"), False)
        entry, returning = await self._come_back(queue, number), True
        if entry is None:
            entry, returning = QueueEntry(call_id, now, node=self.node), False
        else:
            entry = replace(entry, id=call_id, kind=LIVE, number=None, request=None,
                            node=self.node)
        position = await self.store.enqueue(queue, entry)
        estimate = estimate_wait(position, now=now, handle_times=await self.handle_times(queue),
                                 available=available, free=free,
                                 settings=self._estimate_settings(policy))
        limit = policy.max_estimated_wait
        if limit is not None and estimate.seconds is not None and estimate.seconds > limit * 60:
            # too long a wait to ask of anyone: said, and the way out at once
            await self.store.remove(queue, call_id)
            said = ((prompt_media("queue-wait-about"),
                     *spoken_minutes(estimate.minutes, language)) if estimate.minutes
                    else ())
            return Joined(QueueRefused(now, "full", said), False)
        return Joined(QueueEntered(now, position, estimate, available, returning,
                                   entry.arrival), True)

    async def _come_back(self, queue: str, number: str) -> QueueEntry | None:
        if not number:
            return None
        key = self.keys.queue_left(queue, number)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.delete(key)
            raw, _ = await pipe.execute()
        return QueueEntry.from_json(raw) if raw else None

    async def leave(self, queue: str, call_id: str, *, abandoned: bool, number: str,
                    arrival: float | None) -> None:
        """Out of line; an abandon is remembered for the return window (by caller number)."""
        await self.store.remove(queue, call_id)
        window = self.policies[queue].return_window
        if abandoned and number and arrival is not None and window > 0:
            await self.redis.set(self.keys.queue_left(queue, number),
                                 QueueEntry(call_id, arrival).to_json(), ex=window)

    async def put_back(self, queue: str, call_id: str, arrival: float) -> int:
        """Back in line at the caller's own place (an operator did not take the call)."""
        return await self.store.enqueue(queue, QueueEntry(call_id, arrival, node=self.node))

    async def position(self, queue: str, call_id: str) -> int | None:
        return await self.store.position(queue, call_id)

    async def keep_place(self, queue: str, call_id: str, number: str, request: str,
                         arrival: float) -> QueueEntry:
        """The caller's entry becomes a callback at the same place (in line again if it was not:
        a caller nobody could serve keeps their arrival time)."""
        kept = await self.store.keep_place(queue, call_id, number, request)
        if kept is None:
            kept = QueueEntry(call_id, arrival, CALLBACK, 0, number, request)
            await self.store.enqueue(queue, kept)
        return kept

    # --- what the estimate is based on -----------------------------------------------------
    @staticmethod
    def _estimate_settings(policy: QueuePolicy) -> EstimateSettings:
        return EstimateSettings(default_handle_time=policy.default_handle_time)

    async def handle_times(self, queue: str) -> HandleTimes:
        raws = await self.redis.lrange(self.keys.queue_handle_times(queue), 0, -1)
        return HandleTimes(sorted((float(a), float(b)) for a, b in map(json.loads, raws)))

    async def talk_started(self, call_id: str, queue: str, at: float) -> None:
        await self.redis.hset(self.keys.queue_talking(), call_id,
                              json.dumps({"queue": queue, "since": at}))

    async def talk_ended(self, call_id: str, at: float) -> None:
        """A call put through from a queue ended: its talk time counts for the estimates."""
        key = self.keys.queue_talking()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, call_id)
            pipe.hdel(key, call_id)
            raw, _ = await pipe.execute()
        if not raw:
            return
        talk = json.loads(raw)
        if talk["queue"] not in self.policies:
            return
        window = EstimateSettings().window
        times = self.keys.queue_handle_times(talk["queue"])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(times, json.dumps([at, max(0.0, at - talk["since"])]))
            pipe.ltrim(times, 0, window - 1)
            await pipe.execute()

    # --- GET /api/queues --------------------------------------------------------------------
    async def listing(self) -> list[dict]:
        now, out = self.clock(), []
        for name, policy in self.policies.items():
            entries = await self.store.waiting(name)
            operators = await self.operators(name).listing()
            out.append({
                "name": name, "department": policy.department,
                "waiting": [{"id": e.id, "position": i + 1, "kind": e.kind,
                             "waited": round(now - e.arrival, 1), "priority": e.priority}
                            for i, e in enumerate(entries)],
                "longest_wait": round(max((now - e.arrival for e in entries), default=0.0), 1),
                "operators": operators})
        return out


def _hours_said(hours) -> tuple[str, ...]:
    """"Our operators take calls from 9 to 18 o'clock" (minutes said when not on the hour);
    nothing when the queue has no hours today."""
    if hours is None:
        return ()

    def at(moment) -> tuple[str, ...]:
        return (f"number:{moment.hour}", *((f"number:{moment.minute}",) if moment.minute else ()))

    return (prompt_media("queue-hours-from"), *at(hours.start), prompt_media("queue-hours-to"),
            *at(hours.end), prompt_media("queue-hours-oclock"))


_NO_ESTIMATE = estimate_wait(1, now=0.0, handle_times=(), available=0, free=0,
                             settings=EstimateSettings())
