"""The background writer the call events' stores share (the etiquette log, the dashboard's
figures): `on_event` only queues, so a call never waits for Redis; one task writes what was
queued, a batch per pipeline, `linger` seconds after the first entry so that many calls' steps
land in one round trip. With Redis away it keeps the batch and tries again every
`retry_pause` (one warning per outage); a bug is logged and never retried for ever.

A subclass says what a batch is: `_has_pending`, `_take`, `_put_back`, `_write`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ari_app.storage import storage_away

__all__ = ["BackgroundWriter"]

logger = structlog.get_logger()


class BackgroundWriter:
    what = "writer"  # in the log lines: "<what> waits for storage"

    def __init__(self, *, retry_pause: float, linger: float) -> None:
        self.retry_pause, self.linger = retry_pause, linger
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None

    # --- what a subclass says --------------------------------------------------------------
    def _has_pending(self) -> bool:
        raise NotImplementedError

    def _take(self) -> Any:
        """The next batch, out of the queue."""
        raise NotImplementedError

    def _put_back(self, batch: Any) -> None:
        """A batch Redis did not take, back in front of what came meanwhile."""
        raise NotImplementedError

    async def _write(self, batch: Any) -> None:
        raise NotImplementedError

    # --- the machinery ---------------------------------------------------------------------
    def _queued(self) -> None:
        """Something was queued: the writer wakes up (cheap; the consumer calls it)."""
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=self.what.replace(" ", "-"))

    async def _run(self) -> None:
        waiting = False
        while True:
            if not self._has_pending():
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                if self.linger > 0:
                    await asyncio.sleep(self.linger)
                continue
            batch = self._take()
            try:
                await self._write(batch)
            except Exception as exc:
                if not storage_away(exc):
                    logger.exception(f"{self.what} write failed", batch=len(batch))
                    continue  # a bug, not an outage: never retried for ever
                if not waiting:
                    logger.warning(f"{self.what} waits for storage",
                                   error=f"{type(exc).__name__}: {exc}")
                    waiting = True
                self._put_back(batch)
                await asyncio.sleep(self.retry_pause)
                continue
            if waiting:
                logger.info(f"{self.what} resumed after storage came back")
                waiting = False

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until what was published so far is in Redis (read your own writes)."""
        if self._task is None or self._task.done():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            pass  # Redis away: read what is there

    async def close(self, timeout: float = 2.0) -> None:
        await self.flush(timeout)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
