"""Voice messages left for an operator (or a department): the recording's name in Asterisk's
recordings folder plus who it is for, from whom, when and why, indexed in Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace
from ari_app.storage.records import DurableRecords

__all__ = ["Voicemail", "Voicemails", "voicemail_id"]

_NAMESPACE = uuid.UUID("5b0f2c9e-6d1a-4c55-9a8e-2f4b7c1d0a3e")


def voicemail_id(recording: str) -> str:
    """The voice message id of a recording: 32 hex digits like every voice message id, the
    same in every instance and on every try (one recording is one message)."""
    return uuid.uuid5(_NAMESPACE, recording).hex


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


class Voicemails(DurableRecords[Voicemail]):
    def __init__(self, redis: Redis, *, keys: Keyspace,
                 on_created: Callable[[Voicemail], Awaitable[None]] | None = None) -> None:
        super().__init__(redis, "voicemail", Voicemail, keys=keys, on_created=on_created)

    async def listing(self, for_whom: str | None = None, heard: bool | None = None) -> list[Voicemail]:
        return [v for v in await self.all()
                if (for_whom is None or v.for_whom == for_whom)
                and (heard is None or v.heard == heard)]

    async def mark_heard(self, voicemail_id: str) -> Voicemail | None:
        voicemail = await self.get(voicemail_id)
        if voicemail is not None and not voicemail.heard:
            voicemail.heard = True
            await self.redis.set(self._key(voicemail_id), json.dumps(asdict(voicemail)))
        return voicemail

    async def delete(self, voicemail_id: str) -> Voicemail | None:
        voicemail = await self.get(voicemail_id)
        if voicemail is not None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(voicemail_id))
                pipe.zrem(self.index_key, voicemail_id)
                await pipe.execute()
        return voicemail
