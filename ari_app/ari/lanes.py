"""One ordered lane per call: events and timer firings of a call run one at a time, in order,
in that call's own task, while other calls run concurrently.

A lane's task exists only while the lane has work: it drains its queue and ends, so an idle
call holds no task and nothing leaks when a call ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

__all__ = ["Lanes"]

logger = structlog.get_logger()


class Lanes:
    def __init__(self, handler: Callable[[str, Any], Awaitable[None]]) -> None:
        self._handler = handler
        self._queues: dict[str, deque] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def submit(self, key: str, item: Any) -> None:
        """Queue `item` for call `key`; never blocks (the WebSocket reader calls this)."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._drain(key, queue), name=f"lane:{key}")
        queue.append(item)

    async def _drain(self, key: str, queue: deque) -> None:
        structlog.contextvars.bind_contextvars(call_id=key)
        try:
            while queue:
                item = queue.popleft()
                try:
                    await self._handler(key, item)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("call handler failed", item=_describe(item))
        finally:
            del self._queues[key]
            del self._tasks[key]

    def __len__(self) -> int:
        return len(self._tasks)

    async def join(self) -> None:
        """Wait until every lane is drained (tests use it before checking for leaks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # a task cancelled before its first step never ran its own cleanup
        self._queues.clear()
        self._tasks.clear()


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("type"))
    return type(item).__name__
