"""Callback requests: "never say call again later; take the number and call back".

This is the durable intake every source uses (the hold fallback now; transfers, supervisor
escalation and the web form later): a request is in Redis (append-only persistence) before
the caller is told it was taken. The dialer that works through them comes with its own issue.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from ari_app.records import DurableRecords

__all__ = ["CallbackRequest", "CallbackRequests"]


@dataclass
class CallbackRequest:
    number: str
    source: str                 # hold-fallback | transfer-fallback | supervisor | web
    call_id: str | None = None
    name: str = ""
    reason: str | None = None
    operator: str | None = None
    own_number: bool = True     # the number the caller called from, or one they typed
    language: str = "en"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    status: str = "pending"
    for_whom: str | None = None         # who should call: a directory entry, "supervisor"
    latest_at: float | None = None      # promised to the customer: call back by then


class CallbackRequests(DurableRecords[CallbackRequest]):
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        super().__init__(redis, "callback", "callbacks:pending", CallbackRequest, prefix)
        self.pending_key = self.index_key

    async def pending(self) -> list[CallbackRequest]:
        return await self.all()
