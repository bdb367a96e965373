"""The ARI events WebSocket: connect, read, and come back after a drop.

The reader never runs call logic: each event is handed to `on_event`, which only enqueues it
(see lanes.py), so a slow call cannot stall the socket or other calls. After every (re)connect
`on_connected` runs before any event is read, so stored calls are reconciled with the channels
that still exist before new events are applied to them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
import structlog

from ari_app.ari.client import AriClient, AriError, AriUnauthorized, AriUnavailable

__all__ = ["EventStream"]

logger = structlog.get_logger()


class EventStream:
    def __init__(self, ari: AriClient, app: str, on_event: Callable[[dict], None], *,
                 on_connected: Callable[[], Awaitable[None]] | None = None,
                 subscribe_all: bool = False, heartbeat: float = 10.0,
                 connect_timeout: float = 5.0, backoff: tuple[float, float] = (0.2, 10.0),
                 outage: Callable[[BaseException], bool] | None = None) -> None:
        """`outage(exc)`: True when a failed resync (on_connected) is something away that comes
        back (storage), logged as a warning; anything else is a bug, logged with its traceback.
        Asterisk not answering (AriUnavailable) is always an outage."""
        self.ari, self.app, self.on_event = ari, app, on_event
        self.on_connected = on_connected
        self.outage = outage
        self.subscribe_all = subscribe_all
        self.heartbeat, self.connect_timeout = heartbeat, connect_timeout
        self.backoff = backoff
        self.connected = asyncio.Event()
        self.connects = 0  # how many times a socket was established (reconnects = connects - 1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_error: str | None = None  # why it is not connected (for /healthz)

    async def connect_once(self) -> aiohttp.ClientWebSocketResponse:
        """Open the socket; credentials travel in the Authorization header, never the URL."""
        url = self.ari.api.replace("http", "ws", 1) + "/events"
        params = {"app": self.app, "subscribeAll": "true" if self.subscribe_all else "false"}
        try:
            return await asyncio.wait_for(
                self.ari.session.ws_connect(url, params=params, heartbeat=self.heartbeat,
                                            autoping=True, max_msg_size=16 * 1024 * 1024),
                self.connect_timeout)
        except asyncio.TimeoutError as exc:
            raise AriUnavailable(0, "GET", "/events",
                                 f"ARI events WebSocket not answering at {url} within "
                                 f"{self.connect_timeout:.0f} s") from exc
        except aiohttp.WSServerHandshakeError as exc:
            cls = AriUnauthorized if exc.status == 401 else AriError
            raise cls(exc.status, "GET", "/events", exc.message or "WebSocket refused") from exc
        except aiohttp.ClientConnectionError as exc:
            raise AriUnavailable(0, "GET", "/events",
                                 f"Asterisk not answering at {url}: {exc}") from exc

    async def run(self) -> None:
        """Read forever, reconnecting with capped, jittered backoff. Cancel to stop."""
        delay = self.backoff[0]
        while True:
            try:
                ws = await self.connect_once()
            except AriUnauthorized:
                raise  # a wrong password does not get better by retrying
            except AriError as exc:
                self.last_error = exc.message
                logger.warning("ari events connect failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff[1])
                continue
            self.connects += 1
            logger.info("ari events connected", app=self.app, connects=self.connects)
            self._ws = ws
            try:
                if self.on_connected is not None:
                    await self.on_connected()
            except asyncio.CancelledError:
                await ws.close()
                self._ws = None
                raise
            except Exception as exc:
                # Redis away, or Asterisk still booting: the reader must not die of it.
                # Close and come back: events read before the resync would be misapplied.
                self.last_error = f"resync after connect failed: {type(exc).__name__}: {exc}"
                if isinstance(exc, AriUnavailable) or (self.outage and self.outage(exc)):
                    logger.warning("ari events resync failed; reconnecting", app=self.app,
                                   error=self.last_error, retry_in=round(delay, 2))
                else:
                    logger.exception("ari events resync failed; reconnecting", app=self.app,
                                     retry_in=round(delay, 2))
                self._ws = None
                await ws.close()
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]
            self.last_error = None
            try:
                self.connected.set()
                await self._read(ws)
            except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as exc:
                logger.warning("ari events socket failed", app=self.app, error=str(exc))
            finally:
                self.connected.clear()
                self._ws = None
                await ws.close()
            logger.warning("ari events socket closed; reconnecting", app=self.app)

    async def drop(self) -> None:
        """Close the current socket as a network failure would; run() reconnects and resyncs."""
        if self._ws is not None:
            await self._ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    event = orjson.loads(msg.data)
                except ValueError:
                    logger.error("ari event is not JSON", data=msg.data[:200])
                    continue
                try:
                    self.on_event(event)
                except Exception:  # the reader must survive any dispatch bug
                    logger.exception("ari event dispatch failed", type=event.get("type"))
            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE,
                              aiohttp.WSMsgType.CLOSED):
                break
