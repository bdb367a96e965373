"""Callback requests: "never say call again later; take the number and call back".

This is the durable intake every source uses (the hold fallback now; transfers, supervisor
escalation and the web form later): a request is in Redis (append-only persistence) before
the caller is told it was taken. The dialer that works through them comes with its own issue.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

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


class CallbackRequests:
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        self.redis, self.prefix = redis, prefix
        self.pending_key = f"{prefix}:callbacks:pending"

    def _key(self, request_id: str) -> str:
        return f"{self.prefix}:callback:{request_id}"

    async def create(self, request: CallbackRequest) -> CallbackRequest:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(request.id), json.dumps(asdict(request)))
            pipe.zadd(self.pending_key, {request.id: request.created_at})
            await pipe.execute()
        return request

    async def get(self, request_id: str) -> CallbackRequest | None:
        raw = await self.redis.get(self._key(request_id))
        return CallbackRequest(**json.loads(raw)) if raw else None

    async def pending(self) -> list[CallbackRequest]:
        ids = await self.redis.zrange(self.pending_key, 0, -1)
        found = [await self.get(i.decode() if isinstance(i, bytes) else i) for i in ids]
        return [r for r in found if r is not None]
