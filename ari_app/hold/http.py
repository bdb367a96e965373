"""REST for the hold rule: put a call on hold with a reason, take it off hold.

    POST   /api/calls/{call_id}/hold   {"reason": "lookup", "expected_minutes": 2}
    DELETE /api/calls/{call_id}/hold
"""

from __future__ import annotations

import time

from aiohttp import web

from ari_app.calls.control import apply, call_id_of, reason_of
from ari_app.http import InvalidRequest, field, for_operators, read_json
from ari_app.inbound import machine as m
from ari_app.keys import policy_key

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/api/calls/{call_id}/hold")
@for_operators
async def put_on_hold(request: web.Request) -> web.Response:
    call_id_of(request)
    body = await read_json(request)
    reason = reason_of(body, request.app[policy_key].hold.reasons)
    minutes = field(body, "expected_minutes", int, "a whole number from 1 to 30")
    if minutes is not None and not 1 <= minutes <= 30:
        raise InvalidRequest('"expected_minutes" must be a whole number from 1 to 30',
                             "expected_minutes")
    return await apply(request, m.PutOnHold(time.time(), reason, minutes, "rest"))


@routes.delete("/api/calls/{call_id}/hold")
@for_operators
async def take_off_hold(request: web.Request) -> web.Response:
    return await apply(request, m.TakeOffHold(time.time(), "rest"))
