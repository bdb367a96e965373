"""Supervisor on demand: who is on duty, and the complaints taken when nobody is.

`SupervisorDesk.on_duty` is where "transfer, or record the complaint" is decided: escalation
must be allowed by the policy, the time must be inside the supervisors' hours (business hours
unless the policy gives their own), and one supervisor phone must be free (reserved in Redis
like an operator, so two calls never get the same supervisor).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from redis.asyncio import Redis

from ari_app.operators.service import OperatorService
from ari_app.policy import BusinessHours, SupervisorPolicy
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.records import DurableRecords

__all__ = ["Complaint", "Complaints", "SupervisorDesk", "OnDuty"]


@dataclass
class Complaint:
    call_id: str
    caller_number: str = ""
    caller_name: str = ""
    operator: str | None = None     # who the caller was talking to
    recording: str | None = None    # ARI stored recording name, when something was said
    duration: float = 0.0
    callback_id: str | None = None  # the supervisor's promised callback
    window_minutes: int = 60
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    status: str = "open"


class Complaints(DurableRecords[Complaint]):
    def __init__(self, redis: Redis, *, keys: Keyspace,
                 on_created: Callable[[Complaint], Awaitable[None]] | None = None) -> None:
        super().__init__(redis, "complaint", Complaint, keys=keys, on_created=on_created)


@dataclass(frozen=True)
class OnDuty:
    endpoint: str | None   # the supervisor reserved for this call, or None
    why: str               # why not, for the timeline


class SupervisorDesk:
    def __init__(self, policy: SupervisorPolicy, hours: BusinessHours,
                 supervisors: OperatorService, clock: Callable[[], float] = time.time) -> None:
        self.policy, self.hours, self.supervisors, self.clock = policy, hours, supervisors, clock

    async def on_duty(self, call_id: str) -> OnDuty:
        if not self.policy.escalation_allowed:
            return OnDuty(None, "escalation not allowed by policy")
        if not self.policy.endpoints:
            return OnDuty(None, "no supervisor in the policy")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        hours = self.policy.hours
        on_duty = (now.astimezone(self.hours.zone).time() in hours if hours is not None
                   else self.hours.is_open(now))
        if not on_duty:
            return OnDuty(None, "outside the supervisors' hours")
        endpoint = await self.supervisors.reserve_free(call_id)
        return OnDuty(endpoint, "" if endpoint else "no supervisor free")

    async def release(self, endpoint: str, call_id: str) -> None:
        await self.supervisors.release(endpoint, call_id)
