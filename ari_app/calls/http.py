"""The call events' routes: `GET /api/events` (the live stream, bearer token like all of
`/api/`) and `GET /metrics` (Prometheus text format; aggregates only, no token, like
`/healthz`)."""

from __future__ import annotations

from aiohttp import web

from ari_app.calls.metrics import CONTENT_TYPE
from ari_app.http import for_operators, principal_of
from ari_app.keys import live_events_key, metrics_key

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/events")
@for_operators  # theirs only
async def call_events(request: web.Request) -> web.StreamResponse:
    """`?named=0`: every event as a plain `message` (a browser's one handler for all)."""
    principal = principal_of(request)
    return await request.app[live_events_key].serve(
        request, operator=principal.operator if principal.is_operator else None,
        named=request.query.get("named", "1") != "0")


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[metrics_key].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
