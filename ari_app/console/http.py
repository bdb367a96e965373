"""The operator console's routes.

    GET /console                 the page (public HTML; it signs in through /api/session)
    GET /console/console.js      its script, GET /console/console.css its style (public)
    GET /api/console             the signed-in operator's view (an admin or a supervisor
                                 names the operator: ?operator=operator1)
"""

from __future__ import annotations

from aiohttp import web

from ari_app.console.keys import console_key
from ari_app.http import (
    ApiError, InvalidRequest, browser_files, for_operators, principal_of, query, shown,
)
from ari_app.operators.keys import operators_key
from ari_app.operators.service import NoSuchOperator

__all__ = ["routes"]

routes = web.RouteTableDef()
browser_files(routes, "ari_app.console", {"/console": "page.html",
                                           "/console/console.js": "console.js",
                                           "/console/console.css": "console.css"})
MAX_NAME = 128


class NoSuchOperatorError(ApiError):
    status = 404
    error_id = "no-such-operator"


class NotYourConsole(ApiError):
    status = 403
    error_id = "not-your-console"


@routes.get("/api/console")
@for_operators
async def console(request: web.Request) -> web.Response:
    who = principal_of(request)
    wanted = query(request, "operator") or None
    if who.role == "operator":
        endpoint = who.operator or ""
        if wanted is not None and wanted not in (endpoint, endpoint.partition("/")[2]):
            raise NotYourConsole("an operator sees only their own console")
    else:
        if wanted is None:
            raise InvalidRequest('name the operator: "?operator=operator1"', "operator")
        try:
            if len(wanted) > MAX_NAME:
                raise NoSuchOperator(f"no operator {shown(wanted)}")
            endpoint = request.app[operators_key].member(wanted)
        except NoSuchOperator as exc:
            raise NoSuchOperatorError(str(exc)) from None
    return web.json_response(await request.app[console_key].view(endpoint))
