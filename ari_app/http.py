"""The app's own HTTP surface: health and live calls (capability routes join later).

Handlers stay thin; domain errors carry a status and an error_id and one middleware turns them
into JSON answers.
"""

from __future__ import annotations

import hmac

import structlog
from aiohttp import web

from ari_app.keys import events_key, inbound_key, settings_key, store_key

__all__ = ["ApiError", "auth_middleware", "error_middleware", "routes"]

logger = structlog.get_logger()
routes = web.RouteTableDef()


class ApiError(Exception):
    status = 400
    error_id = "bad-request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error_id": self.error_id, "message": self.message}


def public(handler):
    """A route anybody may call (the customers' web page): no bearer token needed."""
    handler.public = True
    return handler


def has_bearer(request: web.Request) -> bool:
    token = request.app[settings_key].api_token
    if token is None:
        return False
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token.get_secret_value()}".encode())


class Unauthorized(ApiError):
    status = 401
    error_id = "unauthorized"


class ApiDisabled(ApiError):
    status = 503
    error_id = "api-token-not-configured"


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """The API needs `Authorization: Bearer <ETIQUETTE_API_TOKEN>` (calls and customers' cards
    are not for everybody), but for the routes marked @public."""
    if request.path.startswith("/api/") and not getattr(handler, "public", False):
        if request.app[settings_key].api_token is None:
            raise ApiDisabled("set ETIQUETTE_API_TOKEN to use the call-control API")
        if not has_bearer(request):
            raise Unauthorized("missing or wrong bearer token")
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status,
                                 headers=getattr(exc, "headers", None))


@routes.get("/healthz")
async def health(request: web.Request) -> web.Response:
    events = request.app[events_key]
    inbound = request.app[inbound_key]
    ok = events.connected.is_set()
    return web.json_response({"ari_events": "connected" if ok else "reconnecting",
                              "active_call_lanes": len(inbound.lanes)},
                             status=200 if ok else 503)


@routes.get("/api/calls")
async def list_calls(request: web.Request) -> web.Response:
    store = request.app[store_key]
    calls = []
    for call_id in await store.live_calls():
        machine = await store.load(call_id)
        if machine is not None:
            calls.append(machine.to_public_dict())
    return web.json_response({"calls": calls})
