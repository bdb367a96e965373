"""Tells the business a voice message arrived: a JSON POST to the admin's webhook
(ETIQUETTE_VOICEMAIL_WEBHOOK). Best effort and off the call's path: a slow or failing webhook
never delays a caller; the message is in Redis either way."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import aiohttp
import structlog

from ari_app.voicemail.service import Voicemail

__all__ = ["VoicemailNotifier"]

logger = structlog.get_logger()


class VoicemailNotifier:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        self._tasks: set[asyncio.Task] = set()

    def __call__(self, voicemail: Voicemail) -> None:
        task = asyncio.get_running_loop().create_task(self._post(voicemail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, voicemail: Voicemail) -> None:
        body = {"event": "voicemail", "voicemail": asdict(voicemail),
                "audio": f"/api/voicemails/{voicemail.id}/audio"}
        try:
            async with self.session.post(self.url, json=body) as resp:
                if resp.status >= 300:
                    logger.warning("voicemail webhook refused", status=resp.status, url=self.url)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            logger.warning("voicemail webhook failed", error=str(exc) or type(exc).__name__,
                           url=self.url)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.session.close()
