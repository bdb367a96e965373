"""Supervisor on demand: who is on duty, and the complaints taken when nobody is.

`SupervisorDesk.on_duty` is where "transfer, or record the complaint" is decided: escalation
must be allowed by the policy, the time must be inside the supervisors' hours (business hours
unless the policy gives their own), and one supervisor phone must be free (reserved in Redis
like an operator, so two calls never get the same supervisor).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from redis.asyncio import Redis
from redis.exceptions import WatchError

from ari_app.operators.service import OperatorService
from ari_app.policy import BusinessHours, SupervisorPolicy
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.records import DurableRecords

__all__ = ["Complaint", "ComplaintClosed", "Complaints", "SupervisorDesk", "OnDuty",
           "complaint_id"]

_NAMESPACE = uuid.UUID("9c1e5d2a-3f47-4b8e-a6d0-7e2c4b9f1a58")


def complaint_id(call_id: str, started_at: float | None) -> str:
    """The id of the complaint a call's escalation takes: the same on every try of its step
    (storage failing part way files it once), another for a second escalation of the call."""
    return uuid.uuid5(_NAMESPACE, f"{call_id}/{started_at!r}").hex


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
    status: str = "open"            # open | closed (a supervisor handled it)
    closed_at: float | None = None
    closed_by: str | None = None    # the supervisor's user, or "api-token"
    resolution: str = ""            # what was done, in their words


class ComplaintClosed(Exception):
    """Closed already (by someone else, most likely): nothing is changed."""

    def __init__(self, complaint: Complaint) -> None:
        super().__init__(f"complaint {complaint.id} was closed by {complaint.closed_by}")
        self.complaint = complaint


class Complaints(DurableRecords[Complaint]):
    def __init__(self, redis: Redis, *, keys: Keyspace,
                 on_created: Callable[[Complaint], Awaitable[None]] | None = None) -> None:
        super().__init__(redis, "complaint", Complaint, keys=keys, on_created=on_created)

    async def listing(self, status: str | None = None) -> list[Complaint]:
        """Newest first; `status` open or closed, or both."""
        found = [c for c in await self.all() if status is None or c.status == status]
        return sorted(found, key=lambda c: c.created_at, reverse=True)

    async def close(self, complaint_id: str, *, by: str, resolution: str,
                    now: float) -> Complaint | None:
        """A supervisor handled it: off the open list (the dashboard), saying who, when and
        what was done. None: no such complaint; ComplaintClosed: closed already. Two closing
        at once: one wins, the other is told (the record is written only if still open)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            key = self._key(complaint_id)
            await pipe.watch(key)
            complaint = await self.get(complaint_id)
            if complaint is None:
                return None
            if complaint.status != "open":
                raise ComplaintClosed(complaint)
            complaint.status, complaint.closed_at = "closed", now
            complaint.closed_by, complaint.resolution = by, resolution
            pipe.multi()
            pipe.set(key, json.dumps(asdict(complaint)))
            try:
                await pipe.execute()
            except WatchError:
                raise ComplaintClosed(await self.get(complaint_id) or complaint) from None
        return complaint


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
