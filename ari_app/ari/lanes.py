"""One ordered lane per call: events and timer firings of a call run one at a time, in order,
in that call's own task, while other calls run concurrently.

A lane's task exists only while the lane has work: it drains its queue and ends, so an idle
call holds no task and nothing leaks when a call ends.

An item that fails with one of `retry_on` (storage away: Redis restarting or stopped) is not
dropped: the lane keeps it at its head and tries it again with a capped backoff, so the call's
events are applied in order once storage is back, and a check-in that was due plays late
instead of never. Meanwhile `stalled(key)` tells why, so a request can be refused at once, and
`while_stalled(key, item)` is offered the waiting items at every retry (what must not wait for
storage, such as music after a prompt; it must be idempotent).
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
    def __init__(self, handler: Callable[[str, Any], Awaitable[None]], *,
                 retry_on: tuple[type[Exception], ...] = (),
                 retry_backoff: tuple[float, float] = (0.25, 4.0),
                 refuse_while_stalled: Callable[[Any, Exception], bool] | None = None,
                 while_stalled: Callable[[str, Any], Awaitable[None]] | None = None) -> None:
        """`refuse_while_stalled(item, why)`: offered every item queued behind a stalled head
        (and submitted while it stalls); True means it was answered now and is dropped (an
        API request must not wait for storage behind the call's events)."""
        self._handler = handler
        self._retry_on, self._backoff = retry_on, retry_backoff
        self._refuse = refuse_while_stalled
        self._while_stalled = while_stalled
        self._queues: dict[str, deque] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._stalled: dict[str, Exception] = {}

    def submit(self, key: str, item: Any) -> None:
        """Queue `item` for call `key`; never blocks (the WebSocket reader calls this)."""
        stalled = self._stalled.get(key)
        if stalled is not None and self._refuse is not None and self._refuse(item, stalled):
            return
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._drain(key, queue), name=f"lane:{key}")
        queue.append(item)

    async def _drain(self, key: str, queue: deque) -> None:
        structlog.contextvars.bind_contextvars(call_id=key)
        delay = self._backoff[0]
        try:
            while queue:
                item = queue[0]
                try:
                    await self._handler(key, item)
                except asyncio.CancelledError:
                    raise
                except self._retry_on as exc:
                    if key not in self._stalled:
                        logger.warning("call waits for storage", item=_describe(item),
                                       error=str(exc) or type(exc).__name__)
                    self._stalled[key] = exc
                    if self._refuse is not None:
                        waiting = [queue.popleft()]
                        waiting += [i for i in queue if not self._refuse(i, exc)]
                        queue.clear()
                        queue.extend(waiting)
                    if self._while_stalled is not None:
                        for waiting_item in list(queue):
                            await self._while_stalled(key, waiting_item)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue  # the same item again: nothing of the call is skipped
                except Exception:
                    logger.exception("call handler failed", item=_describe(item))
                if self._stalled.pop(key, None) is not None:
                    logger.info("call resumed after storage came back", item=_describe(item))
                    delay = self._backoff[0]
                queue.popleft()
        finally:
            del self._queues[key]
            del self._tasks[key]
            self._stalled.pop(key, None)

    def busy(self, key: str) -> bool:
        """Whether call `key` has items queued or being handled."""
        return key in self._tasks

    def stalled(self, key: str) -> Exception | None:
        """Why call `key`'s lane is waiting (storage away), or None when it is not."""
        return self._stalled.get(key)

    @property
    def stalled_count(self) -> int:
        """How many calls wait for storage now."""
        return len(self._stalled)

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
        self._stalled.clear()


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("type"))
    return type(item).__name__
