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


def sse_frame(event: CallEvent, named: bool = True) -> bytes:
    """`event: hold:check_in_played` then `data: {json}`, and the blank line; unnamed (a plain
    `message`, the name only in the data) for a browser that wants every event in one handler."""
    data = json.dumps(event.to_dict(), separators=(",", ":"), default=str)
    if not named:
        return f"data: {data}\n\n".encode()
    return f"event: {event.name}\ndata: {data}\n\n".encode()


class _Client:
    """One open stream: its queue, and what it asked for."""
    __slots__ = ("queue", "operator", "named")

    def __init__(self, queue: asyncio.Queue, operator: str | None, named: bool) -> None:
        self.queue, self.operator, self.named = queue, operator, named


class LiveEvents:
    def __init__(self, *, queue_size: int = 1000, keep_alive: float = 15.0) -> None:
        self.queue_size, self.keep_alive = queue_size, keep_alive
        self._clients: set[_Client] = set()
        self.dropped = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def on_event(self, event: CallEvent) -> None:
        if not self._clients:
            return
        frames: dict[bool, bytes] = {}
        for client in list(self._clients):
            if client.operator is not None and client.operator != event.operator:
                continue  # an operator sees their own calls' events only
            frame = frames.get(client.named)
            if frame is None:
                frame = frames[client.named] = sse_frame(event, client.named)
            try:
                client.queue.put_nowait(frame)
            except asyncio.QueueFull:  # too slow: dropped, never waited for
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        queue = client.queue
        self._clients.discard(client)
        self.dropped += 1
        logger.warning("event stream client dropped", why="not keeping up",
                       queued=queue.qsize())
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_CLOSED)

    async def serve(self, request: web.Request, *, operator: str | None = None,
                    named: bool = True) -> web.StreamResponse:
        """GET /api/events: the stream until the client leaves, falls behind or we shut down;
        only `operator`'s events when given."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_size)
        client = _Client(queue, operator, named)
        self._clients.add(client)
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
                frames, closed = [frame], False  # what queued meanwhile: the same write
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is _CLOSED:
                        closed = True
                        break
                    frames.append(more)
                await response.write(b"".join(frames) if len(frames) > 1 else frame)
                if closed:
                    break
                quiet_since = loop.time()
        except ConnectionResetError:
            pass  # the client left
        finally:
            self._clients.discard(client)
        return response

    async def close(self) -> None:
        """End every open stream (app shutdown)."""
        for client in list(self._clients):
            self._clients.discard(client)
            queue = client.queue
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)
