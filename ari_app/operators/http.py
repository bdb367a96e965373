"""REST for the operators' pool (operators' tools and supervisors; bearer token).

    GET  /api/operators                          every operator: state, reason, since, phone
    POST /api/operators/{operator}/login
    POST /api/operators/{operator}/logout
    POST /api/operators/{operator}/pause         {"reason": "break"}  (optional)
    POST /api/operators/{operator}/unpause

`{operator}` is the policy's endpoint (`PJSIP/operator1`) or just its resource (`operator1`).
"""

from __future__ import annotations

import time

from aiohttp import web

from ari_app.http import (
    ApiError, Forbidden, InvalidRequest, field, for_operators, principal_of, read_json, shown,
)
from ari_app.operators.keys import operators_key
from ari_app.operators.machine import InvalidTransition, LogIn, LogOut, Pause, Unpause
from ari_app.operators.service import NoSuchOperator, UnknownPauseReason

__all__ = ["routes"]

routes = web.RouteTableDef()
MAX_NAME = 128
SOURCE = "rest"


class NoSuchOperatorError(ApiError):
    status = 404
    error_id = "no-such-operator"


class WrongOperatorState(ApiError):
    status = 409
    error_id = "wrong-operator-state"


@routes.get("/api/operators")
async def listing(request: web.Request) -> web.Response:
    return web.json_response({"operators": await request.app[operators_key].listing()})


@routes.post(r"/api/operators/{operator:.+}/{action:login|logout|pause|unpause}")
@for_operators  # themselves only
async def change(request: web.Request) -> web.Response:
    name = request.match_info["operator"]
    principal = principal_of(request)
    if principal.is_operator and name not in (principal.operator,
                                              (principal.operator or "").split("/", 1)[-1]):
        raise Forbidden(f"you may change your own state only ({principal.operator})")
    body = await read_json(request)
    now = time.time()
    match request.match_info["action"]:
        case "login":
            event: object = LogIn(now, SOURCE)
        case "logout":
            event = LogOut(now, SOURCE)
        case "unpause":
            event = Unpause(now, SOURCE)
        case _:
            event = Pause(now, field(body, "reason", str, "a text (one of the policy's "
                                                         "operators.pause_reasons)"), SOURCE)
    try:
        if len(name) > MAX_NAME:
            raise NoSuchOperator(f"no operator {shown(name)}")
        entry = await request.app[operators_key].change(name, event)
    except NoSuchOperator as exc:
        raise NoSuchOperatorError(str(exc)) from None
    except UnknownPauseReason as exc:
        raise InvalidRequest(str(exc), "reason") from None
    except InvalidTransition as exc:
        raise WrongOperatorState(f"{name}: {exc}") from None
    return web.json_response(entry)
