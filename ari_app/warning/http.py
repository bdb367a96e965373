"""REST for the abusive-caller warning.

    POST /api/calls/{call_id}/warn   first a polite warning, the second time a polite goodbye
"""

from __future__ import annotations

import time

from aiohttp import web

from ari_app.calls.control import apply
from ari_app.http import for_operators
from ari_app.inbound import machine as m

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/api/calls/{call_id}/warn")
@for_operators  # their own calls only: `apply` checks (403 not-your-call)
async def warn_caller(request: web.Request) -> web.Response:
    return await apply(request, m.WarnCaller(time.time(), "rest"))
