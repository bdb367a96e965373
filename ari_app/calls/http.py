"""The call events' routes: `GET /api/events` (the live stream, bearer token like all of
`/api/`) and `GET /metrics` (Prometheus text format; aggregates only, no token, like
`/healthz`)."""

from __future__ import annotations

from aiohttp import web

from ari_app.calls.metrics import CONTENT_TYPE
from ari_app.keys import live_events_key, metrics_key

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/events")
async def call_events(request: web.Request) -> web.StreamResponse:
    return await request.app[live_events_key].serve(request)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[metrics_key].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
