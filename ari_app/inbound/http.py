"""REST for the inbound calls themselves.

    GET /api/calls   the live calls, each as its machine's public view

Here rather than in the root web layer (ari_app/http.py): listing calls reads the inbound
call store, and the root must not depend on a capability.
"""

from __future__ import annotations

from aiohttp import web

from ari_app.inbound.keys import store_key

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/calls")
async def list_calls(request: web.Request) -> web.Response:
    store = request.app[store_key]
    calls = []
    for call_id in await store.live_calls():
        machine = await store.load(call_id)
        if machine is not None:
            calls.append(machine.to_public_dict())
    return web.json_response({"calls": calls})
