"""The app's own HTTP surface: health and live calls (capability routes join later).

Handlers stay thin; domain errors carry a status and an error_id and one middleware turns them
into JSON answers.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from ari_app.keys import events_key, inbound_key, store_key

__all__ = ["ApiError", "error_middleware", "routes"]

logger = structlog.get_logger()
routes = web.RouteTableDef()


class ApiError(Exception):
    status = 400
    error_id = "bad-request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error_id": exc.error_id, "message": exc.message},
                                 status=exc.status)


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
