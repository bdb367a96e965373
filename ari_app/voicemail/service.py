"""Voice messages left for an operator (or a department): the recording's name in Asterisk's
recordings folder plus who it is for, from whom, when and why, indexed in Redis."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

__all__ = ["Voicemail", "Voicemails"]


@dataclass
class Voicemail:
    recording: str              # ARI stored recording name (spool/recording/<name>.wav)
    for_whom: str               # operator endpoint, department or person id
    caller_number: str = ""
    caller_name: str = ""
    call_id: str | None = None
    reason: str | None = None
    duration: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    heard: bool = False


class Voicemails:
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        self.redis, self.prefix = redis, prefix
        self.index_key = f"{prefix}:voicemails"

    def _key(self, voicemail_id: str) -> str:
        return f"{self.prefix}:voicemail:{voicemail_id}"

    async def create(self, voicemail: Voicemail) -> Voicemail:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(voicemail.id), json.dumps(asdict(voicemail)))
            pipe.zadd(self.index_key, {voicemail.id: voicemail.created_at})
            await pipe.execute()
        return voicemail

    async def get(self, voicemail_id: str) -> Voicemail | None:
        raw = await self.redis.get(self._key(voicemail_id))
        return Voicemail(**json.loads(raw)) if raw else None

    async def all(self) -> list[Voicemail]:
        ids = await self.redis.zrange(self.index_key, 0, -1)
        found = [await self.get(i.decode() if isinstance(i, bytes) else i) for i in ids]
        return [v for v in found if v is not None]
