"""The live stream of call events (server-sent events), a consumer of call events: the
operator console and the supervisor dashboard follow calls with it.

Each client has its own bounded queue: a client that does not keep up is dropped (its stream
ends; it may reconnect), never slowing a call. `close()` ends every stream, so a shutdown is
not held up by open connections.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from aiohttp import web

from ari_app.calls.events import CallEvent

__all__ = ["LiveEvents", "sse_frame"]

logger = structlog.get_logger()

_CLOSED = object()


def sse_frame(event: CallEvent) -> bytes:
    """`event: hold:check_in_played` then `data: {json}`, and the blank line."""
    data = json.dumps(event.to_dict(), separators=(",", ":"), default=str)
    return f"event: {event.name}\ndata: {data}\n\n".encode()


class LiveEvents:
    def __init__(self, *, queue_size: int = 1000, keep_alive: float = 15.0) -> None:
        self.queue_size, self.keep_alive = queue_size, keep_alive
        self._clients: set[asyncio.Queue] = set()
        self.dropped = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def on_event(self, event: CallEvent) -> None:
        if not self._clients:
            return
        frame = sse_frame(event)
        for queue in list(self._clients):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # too slow: dropped, never waited for
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue) -> None:
        self._clients.discard(queue)
        self.dropped += 1
        logger.warning("event stream client dropped", why="not keeping up",
                       queued=queue.qsize())
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_CLOSED)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /api/events: the stream until the client leaves, falls behind or we shut down."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_size)
        self._clients.add(queue)
        try:
            await response.prepare(request)
            await response.write(b": connected\n\n")
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while True:
                try:  # wake up now and then: a client that left is noticed within a second
                    frame = await asyncio.wait_for(queue.get(), min(1.0, self.keep_alive))
                except asyncio.TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break
                    if loop.time() - quiet_since < self.keep_alive:
                        continue
                    frame = b": keep-alive\n\n"
                if frame is _CLOSED:
                    break
                await response.write(frame)
                quiet_since = loop.time()
        except ConnectionResetError:
            pass  # the client left
        finally:
            self._clients.discard(queue)
        return response

    async def close(self) -> None:
        """End every open stream (app shutdown)."""
        for queue in list(self._clients):
            self._clients.discard(queue)
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)
