"""ARI REST over one pooled aiohttp session.

Why our own: the public Python ARI clients either do not import on Python 3, are synchronous,
run handlers inside the socket reader, or cap the pool at a handful of connections. This one is
a table of operations (operations.py) and one `call()`; errors keep Asterisk's own message.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
import structlog
from yarl import URL

from ari_app.ari import operations as ops
from ari_app.ari.operations import Op

__all__ = [
    "AriClient", "AriError", "AriNotFound", "AriConflict", "AriUnauthorized", "AriUnavailable",
    "json_text", "tolerated", "unless_gone",
]


class AriError(Exception):
    """Asterisk refused a request; `message` is Asterisk's own explanation."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {message}")
        self.status, self.method, self.path, self.message = status, method, path, message


class AriNotFound(AriError):
    """The channel, bridge or playback is gone: a normal outcome in telephony."""


class AriConflict(AriError):
    """The resource is in the wrong state (e.g. channel not in Stasis, bridge full)."""


class AriUnauthorized(AriError):
    pass


class AriUnavailable(AriError):
    """No answer from Asterisk's HTTP server at all (down, wrong port, timeout)."""


logger = structlog.get_logger()

_BY_STATUS = {404: AriNotFound, 409: AriConflict, 422: AriConflict, 401: AriUnauthorized}


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class AriClient:
    """Thin REST client: `call(op, **params)` plus named helpers the adapters read well with."""

    def __init__(self, base_url: str, user: str, password: str, *,
                 pool_size: int = 64, request_timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + "/ari"
        # credentials go in a header on every request and on the WebSocket, never in a URL
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.request_timeout = request_timeout
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Sized for bursts (a 300-call burst must not queue behind a 3-connection pool) but
            # under Asterisk's HTTP sessionlimit; idle connections are dropped before Asterisk's
            # own 15 s keep-alive ends, so a reused connection is not one Asterisk just closed.
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size,
                                             keepalive_timeout=10)
            # ARI sets no cookies: a jar would be consulted on every request for nothing
            self._session = aiohttp.ClientSession(headers=self._headers, connector=connector,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  json_serialize=json_text)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, op: Op, *, request_timeout: float | None = None, **params: Any) -> Any:
        path = op.path
        for name in op.path_params:
            if name not in params:
                raise TypeError(f"{op.method} {op.path}: missing {name}")
            path = path.replace("{" + name + "}", quote(str(params.pop(name)), safe=""))
        raw = params.pop(op.raw_body, None) if op.raw_body else None
        unknown = set(params) - set(op.query) - set(op.body)
        if unknown:
            raise TypeError(f"{op.method} {op.path}: unknown parameter(s) {sorted(unknown)}")
        query = {k: _wire(v) for k, v in params.items() if k in op.query and v is not None}
        body = raw if raw is not None else (
            {k: v for k, v in params.items() if k in op.body and v is not None} or None)
        limit = (aiohttp.ClientTimeout(total=request_timeout) if request_timeout
                 else self._timeout)
        # the URL encoded here once (yarl would parse and re-quote it on every request)
        url = URL(self.api + path + ("?" + urlencode(query, quote_via=quote) if query else ""),
                  encoded=True)
        # A pooled connection Asterisk closed meanwhile fails before any answer: safe to repeat
        # for reads and deletes (idempotent), never for a POST such as an originate.
        attempts = 2 if op.method in ("GET", "DELETE") else 1
        for attempt in range(attempts):
            try:
                async with self.session.request(op.method, url, json=body,
                                                timeout=limit) as resp:
                    if resp.status >= 400:
                        raise _error(resp.status, op.method, path, await resp.text())
                    if op.binary:
                        return await resp.read()
                    if resp.status == 204 or resp.content_length == 0:
                        return None
                    return await resp.json(content_type=None, loads=orjson.loads)
            except aiohttp.ServerDisconnectedError as exc:
                if attempt + 1 < attempts:
                    continue
                raise AriUnavailable(0, op.method, path, f"Asterisk at {self.base_url} closed "
                                     f"the connection: {exc}") from exc
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                raise AriUnavailable(0, op.method, path,
                                     f"Asterisk not answering at {self.base_url}: "
                                     f"{type(exc).__name__} {exc}".strip()) from exc

    # --- named helpers (one line each; the table above is the contract) -----------------------
    async def ping(self) -> dict:
        return await self.call(ops.PING)

    async def answer(self, channel_id: str) -> None:
        await self.call(ops.ANSWER, channelId=channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.call(ops.HANGUP, channelId=channel_id, reason=reason)

    async def play(self, channel_id: str, media: str | list[str], playback_id: str,
                   lang: str | None = None) -> dict:
        return await self.call(ops.PLAY, channelId=channel_id, media=media,
                               playbackId=playback_id, lang=lang)

    async def stop_playback(self, playback_id: str) -> None:
        await self.call(ops.STOP_PLAYBACK, playbackId=playback_id)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.call(ops.START_MOH, channelId=channel_id, mohClass=moh_class)

    async def stop_moh(self, channel_id: str) -> None:
        await self.call(ops.STOP_MOH, channelId=channel_id)

    async def originate(self, endpoint: str, *, app: str, app_args: str = "",
                        channel_id: str | None = None, other_channel_id: str | None = None,
                        caller_id: str | None = None, timeout: int | None = None,
                        formats: str | None = "ulaw", originator: str | None = None,
                        variables: dict[str, str] | None = None) -> dict:
        """Place a call into Stasis. `formats` defaults to ulaw: without it Asterisk transcodes
        music on hold for every Local channel (about 13x the CPU measured here)."""
        return await self.call(ops.ORIGINATE, endpoint=endpoint, app=app, appArgs=app_args,
                               channelId=channel_id, otherChannelId=other_channel_id,
                               callerId=caller_id, timeout=timeout, formats=formats,
                               originator=originator, variables=variables)

    async def create_bridge(self, bridge_id: str, kind: str = "mixing", name: str = "") -> dict:
        return await self.call(ops.CREATE_BRIDGE, bridgeId=bridge_id, type=kind, name=name or None)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.call(ops.DESTROY_BRIDGE, bridgeId=bridge_id)

    async def add_to_bridge(self, bridge_id: str, channel_id: str, role: str | None = None) -> None:
        await self.call(ops.ADD_TO_BRIDGE, bridgeId=bridge_id, channel=channel_id, role=role)

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self.call(ops.START_BRIDGE_MOH, bridgeId=bridge_id, mohClass=moh_class)

    async def channels(self) -> list[dict]:
        return await self.call(ops.CHANNELS)

    async def bridges(self) -> list[dict]:
        return await self.call(ops.BRIDGES)

    async def endpoint(self, tech: str, resource: str) -> dict:
        return await self.call(ops.ENDPOINT, tech=tech, resource=resource)


@contextmanager
def tolerated(action: str) -> Iterator[None]:
    """Carry out a call's action where failure is part of telephony: a channel already gone
    is normal, one leaving the app is refused (409), anything else is logged, never raised
    into the call's lane."""
    try:
        yield
    except AriNotFound as exc:
        logger.info("resource already gone", action=action, error=exc.message)
    except AriConflict as exc:
        logger.warning("ari action refused", action=action, error=exc.message)
    except AriUnavailable as exc:  # Asterisk down or not answering: not our bug; when it
        # went away, the events' reconnect resyncs the call with what Asterisk still has
        logger.warning("ari action lost: Asterisk not answering", action=action,
                       error=exc.message)
    except AriError as exc:
        if "not found" in exc.message.lower():  # addChannel to a bridge answers 400 for a
            logger.info("resource already gone", action=action, error=exc.message)  # gone one
            return
        logger.error("ari action failed", action=action, error=str(exc))


async def unless_gone(coro, *, also: tuple[int, ...] = ()) -> None:
    """Await an ARI action whose target may already be gone (a hang-up, a bridge to destroy):
    that is the outcome wanted, not an error. `also`: other statuses that say the same (a
    channel taken out of a bridge it is not in answers 422)."""
    try:
        await coro
    except AriNotFound:
        pass
    except AriError as exc:
        if exc.status not in also:
            raise


def json_text(data: Any) -> str:
    """JSON by orjson, as text (aiohttp's client `json_serialize`, its server's `dumps`): at
    thousands of requests a second json.dumps showed."""
    return orjson.dumps(data).decode()


def _error(status: int, method: str, path: str, text: str) -> AriError:
    try:
        message = json.loads(text).get("message") or text
    except (ValueError, AttributeError):
        message = text.strip() or "(no message)"
    return _BY_STATUS.get(status, AriError)(status, method, path, message)
