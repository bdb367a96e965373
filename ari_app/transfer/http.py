"""REST for transfers and supervisor escalation.

    POST   /api/calls/{call_id}/transfer            {"target": "billing", "mode": "announced",
                                                     "reason": "question"}
    POST   /api/calls/{call_id}/transfer/complete   attended: the operator hands the caller over
    DELETE /api/calls/{call_id}/transfer            cancel: the caller comes back
    POST   /api/calls/{call_id}/escalate            the caller wants a supervisor
"""

from __future__ import annotations

import time

from aiohttp import web

from ari_app.calls.control import apply, call_id_of, check_own_call, reason_of
from ari_app.calls.vocabulary import ToRule
from ari_app.http import ApiError, InvalidRequest, field, for_operators, read_json, shown
from ari_app.inbound import machine as m
from ari_app.inbound.keys import store_key
from ari_app.keys import policy_key
from ari_app.transfer import machine as t
from ari_app.transfer.keys import directory_key

__all__ = ["routes"]

routes = web.RouteTableDef()


class NoSuchTarget(ApiError):
    status = 404
    error_id = "no-such-transfer-target"


class TargetNotAvailable(ApiError):
    status = 409
    error_id = "transfer-target-not-available"


@routes.post("/api/calls/{call_id}/transfer")
@for_operators
async def transfer(request: web.Request) -> web.Response:
    call_id = call_id_of(request)
    await check_own_call(request, call_id)
    body = await read_json(request)
    policy, directory = request.app[policy_key], request.app[directory_key]
    wanted = field(body, "target", str, "a directory entry's id, code or number")
    if not wanted or not wanted.strip():
        raise InvalidRequest('"target" must name a directory entry (its id, code or number)',
                             "target")
    entry = directory.find(wanted)
    if entry is None:
        known = ", ".join(e.id for e in policy.directory) or "none"
        raise NoSuchTarget(f"no directory entry {shown(wanted)} (known: {known})")
    mode = field(body, "mode", str, '"announced" or "attended"')
    if mode is None:
        mode = policy.transfer.mode
    if mode not in ("announced", "attended"):
        raise InvalidRequest('"mode" must be "announced" or "attended"', "mode")
    reasons = policy.transfer.reasons
    reason = reason_of(body, reasons)
    call = await request.app[store_key].load(call_id)
    why = directory.unavailable(entry, call.language if call else policy.default_language)
    if why:
        raise TargetNotAvailable(why)
    return await apply(request, m.TransferCall(time.time(), directory.target(entry), mode, reason,
                                               reasons.get(reason or ""), "rest"))


@routes.post("/api/calls/{call_id}/transfer/complete")
@for_operators
async def complete(request: web.Request) -> web.Response:
    return await apply(request, ToRule("transfer", t.CompleteRequested(time.time(), "rest")))


@routes.delete("/api/calls/{call_id}/transfer")
@for_operators
async def cancel(request: web.Request) -> web.Response:
    return await apply(request, ToRule("transfer", t.CancelRequested(time.time(), "rest")))


@routes.post("/api/calls/{call_id}/escalate")
@for_operators
async def escalate(request: web.Request) -> web.Response:
    return await apply(request, m.EscalationRequested(time.time(), "rest"))

