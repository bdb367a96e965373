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

from ari_app.hold.http import InvalidRequest, apply, read_json
from ari_app.http import ApiError
from ari_app.inbound import machine as m
from ari_app.inbound.stasis import ToRule
from ari_app.keys import directory_key, policy_key, store_key
from ari_app.transfer import machine as t

__all__ = ["routes"]

routes = web.RouteTableDef()


class NoSuchTarget(ApiError):
    status = 404
    error_id = "no-such-transfer-target"


class TargetNotAvailable(ApiError):
    status = 409
    error_id = "transfer-target-not-available"


@routes.post("/api/calls/{call_id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    body = await read_json(request)
    policy, directory = request.app[policy_key], request.app[directory_key]
    wanted = body.get("target")
    if not isinstance(wanted, str) or not wanted:
        raise InvalidRequest('"target" must name a directory entry (its id, code or number)')
    entry = directory.find(wanted)
    if entry is None:
        known = ", ".join(e.id for e in policy.directory) or "none"
        raise NoSuchTarget(f"no directory entry {wanted!r} (known: {known})")
    mode = body.get("mode", policy.transfer.mode)
    if mode not in ("announced", "attended"):
        raise InvalidRequest('"mode" must be "announced" or "attended"')
    reason = body.get("reason")
    reasons = policy.transfer.reasons
    if reason is not None and reason not in reasons:
        raise InvalidRequest(f"unknown reason {reason!r}; the policy knows {sorted(reasons)}")
    call = await request.app[store_key].load(request.match_info["call_id"])
    why = directory.unavailable(entry, call.language if call else policy.default_language)
    if why:
        raise TargetNotAvailable(why)
    return await apply(request, m.TransferCall(time.time(), directory.target(entry), mode, reason,
                                               reasons.get(reason or ""), "rest"))


@routes.post("/api/calls/{call_id}/transfer/complete")
async def complete(request: web.Request) -> web.Response:
    return await apply(request, ToRule(t.CompleteRequested(time.time(), "rest")))


@routes.delete("/api/calls/{call_id}/transfer")
async def cancel(request: web.Request) -> web.Response:
    return await apply(request, ToRule(t.CancelRequested(time.time(), "rest")))


@routes.post("/api/calls/{call_id}/escalate")
async def escalate(request: web.Request) -> web.Response:
    return await apply(request, m.EscalationRequested(time.time(), "rest"))

