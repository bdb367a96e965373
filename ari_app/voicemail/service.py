"""Voice messages left for an operator (or a department): the recording's name in Asterisk's
recordings folder plus who it is for, from whom, when and why, indexed in Redis."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

from ari_app.records import DurableRecords

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


class Voicemails(DurableRecords[Voicemail]):
    def __init__(self, redis: Redis, prefix: str = "etq") -> None:
        super().__init__(redis, "voicemail", "voicemails", Voicemail, prefix)
