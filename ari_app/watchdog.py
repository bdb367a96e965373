"""Long-lived tasks (the ARI events reader, the callback dialer) that must never die silently.

A task that raises is logged with its traceback, started again after a capped backoff, and
its last error is kept for /healthz: an app whose reader died used to stay deaf for good
with no log line. Cancelling the watched task (app shutdown) stops it for good.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog

__all__ = ["Watched", "Watchdog"]

logger = structlog.get_logger()


class Watched:
    """One long-lived coroutine, run again whenever it ends or fails."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]],
                 backoff: tuple[float, float] = (0.5, 15.0)) -> None:
        self.name, self._run, self._backoff = name, run, backoff
        self.restarts = 0
        self.last_error: BaseException | None = None
        self.failed_at: float | None = None
        self.failed = asyncio.Event()  # set at each failure (startup waits on it)
        self.task: asyncio.Task | None = None

    def start(self) -> asyncio.Task:
        self.task = asyncio.get_running_loop().create_task(self._keep_alive(), name=self.name)
        return self.task

    async def _keep_alive(self) -> None:
        delay = self._backoff[0]
        while True:
            started = time.monotonic()
            try:
                await self._run()
                logger.error("background task ended; starting it again", task=self.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error, self.failed_at = exc, time.time()
                self.failed.set()
                logger.exception("background task died; starting it again", task=self.name,
                                 retry_in=round(delay, 2))
            if time.monotonic() - started > 60:
                delay = self._backoff[0]  # it ran well for a while: this is a new failure
            self.restarts += 1
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff[1])

    def status(self) -> dict:
        running = self.task is not None and not self.task.done()
        return {"running": running, "restarts": self.restarts,
                "last_error": (f"{type(self.last_error).__name__}: {self.last_error}"
                               if self.last_error is not None else None)}


class Watchdog:
    """Every watched task of the app, started together and stopped together."""

    def __init__(self) -> None:
        self.watched: dict[str, Watched] = {}

    def watch(self, name: str, run: Callable[[], Awaitable[None]], **kwargs) -> Watched:
        watched = self.watched[name] = Watched(name, run, **kwargs)
        watched.start()
        return watched

    def status(self) -> dict[str, dict]:
        return {name: w.status() for name, w in self.watched.items()}

    async def stop(self) -> None:
        tasks = [w.task for w in self.watched.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
