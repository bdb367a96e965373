"""REST for the hold rule: put a call on hold with a reason, take it off hold.

    POST   /api/calls/{call_id}/hold   {"reason": "lookup", "expected_minutes": 2}
    DELETE /api/calls/{call_id}/hold
"""

from __future__ import annotations

import time

from aiohttp import web

from ari_app.http import ApiError
from ari_app.inbound import machine as m
from ari_app.keys import inbound_key, policy_key

__all__ = ["routes"]

routes = web.RouteTableDef()


class NoSuchCall(ApiError):
    status = 404
    error_id = "no-such-call"


class WrongCallState(ApiError):
    status = 409
    error_id = "wrong-call-state"


class CallControlFailed(ApiError):
    status = 500
    error_id = "call-control-failed"


class InvalidRequest(ApiError):
    status = 422
    error_id = "invalid-request"


async def read_json(request: web.Request) -> dict:
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError as exc:
        raise InvalidRequest("the body must be JSON") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


async def apply(request: web.Request, event: object) -> web.Response:
    call_id = request.match_info["call_id"]
    try:
        state = await request.app[inbound_key].request(call_id, event)
    except LookupError as exc:
        raise NoSuchCall(f"no live call {call_id}") from exc
    except m.InvalidTransition as exc:
        raise WrongCallState(str(exc)) from exc
    except Exception as exc:
        raise CallControlFailed(f"the call could not be changed: {exc}") from exc
    return web.json_response({"call_id": call_id, "status": state}, status=202)


@routes.post("/api/calls/{call_id}/hold")
async def put_on_hold(request: web.Request) -> web.Response:
    body = await read_json(request)
    reasons = request.app[policy_key].hold.reasons
    reason = body.get("reason")
    if reason is not None and reason not in reasons:
        raise InvalidRequest(f"unknown reason {reason!r}; the policy knows {sorted(reasons)}")
    minutes = body.get("expected_minutes")
    if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool)
                                or not 1 <= minutes <= 30):
        raise InvalidRequest("expected_minutes must be a whole number from 1 to 30")
    return await apply(request, m.PutOnHold(time.time(), reason, minutes, "rest"))


@routes.delete("/api/calls/{call_id}/hold")
async def take_off_hold(request: web.Request) -> web.Response:
    return await apply(request, m.TakeOffHold(time.time(), "rest"))
