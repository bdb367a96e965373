"""REST for the queues (operators' tools and supervisors; bearer token).

    GET /api/queues    every queue: who waits (position, wait, kind), the longest wait, and
                       the operators who serve it with their states
"""

from __future__ import annotations

from aiohttp import web

from ari_app.queue.keys import queues_key

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/queues")
async def listing(request: web.Request) -> web.Response:
    desk = request.app.get(queues_key)
    return web.json_response({"queues": await desk.listing() if desk is not None else []})
