"""REST for the complaints callers left when no supervisor could take them (supervisors and
the admin's token; an operator's session is refused: complaints are often about them).

    GET  /api/complaints?status=open|closed    newest first
    GET  /api/complaints/{id}
    GET  /api/complaints/{id}/audio            what the caller said: the WAV, from Asterisk
    POST /api/complaints/{id}/close            {"resolution": "called back, refund agreed"}

The caller was promised it would be passed on: a supervisor listens, calls back (the
promised callback is its own request, `callback_id`), and closes it with what was done; the
dashboard lists the open ones.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict

from aiohttp import web

from ari_app.calls.recording import stored_recording
from ari_app.escalation.keys import complaints_key
from ari_app.escalation.service import ComplaintClosed
from ari_app.http import (ApiError, InvalidRequest, field, principal_of, query, read_json,
                          shown)
from ari_app.keys import ari_key, ari_nodes_key

__all__ = ["routes"]

routes = web.RouteTableDef()
COMPLAINT_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as Complaint makes them
MAX_RESOLUTION = 500


class NoSuchComplaint(ApiError):
    status = 404
    error_id = "no-such-complaint"


class NothingRecorded(ApiError):
    status = 404
    error_id = "complaint-not-recorded"


class RecordingGone(ApiError):
    status = 410
    error_id = "complaint-recording-gone"


class AlreadyClosed(ApiError):
    status = 409
    error_id = "complaint-closed"


async def _found(request: web.Request):
    complaint_id = request.match_info["complaint_id"]
    # a malformed id is as unknown as a missing one (and never reaches another Redis key)
    complaint = (await request.app[complaints_key].get(complaint_id)
                 if COMPLAINT_ID.fullmatch(complaint_id) else None)
    if complaint is None:
        raise NoSuchComplaint(f"no complaint {shown(complaint_id)}")
    return complaint


@routes.get("/api/complaints")
async def listing(request: web.Request) -> web.Response:
    status = query(request, "status") or None
    if status is not None and status not in ("open", "closed"):
        raise InvalidRequest(f'"status" must be open or closed, not {shown(status)}', "status")
    found = await request.app[complaints_key].listing(status)
    return web.json_response({"complaints": [asdict(c) for c in found]})


@routes.get("/api/complaints/{complaint_id}")
async def one(request: web.Request) -> web.Response:
    return web.json_response(asdict(await _found(request)))


@routes.get("/api/complaints/{complaint_id}/audio")
async def audio(request: web.Request) -> web.Response:
    complaint = await _found(request)
    if not complaint.recording:
        raise NothingRecorded(f"the caller of complaint {complaint.id} said nothing")
    nodes = list(request.app.get(ari_nodes_key, {}).values()) or [request.app[ari_key]]
    data = await stored_recording(nodes, complaint.recording)
    if data is None:
        raise RecordingGone(f"Asterisk no longer has recording {complaint.recording}")
    return web.Response(body=data, content_type="audio/wav", headers={
        "Content-Disposition": f'attachment; filename="complaint-{complaint.id}.wav"'})


@routes.post("/api/complaints/{complaint_id}/close")
async def close(request: web.Request) -> web.Response:
    body = await read_json(request)
    complaint = await _found(request)
    resolution = field(body, "resolution", str, "a text") or ""
    if len(resolution) > MAX_RESOLUTION:
        raise InvalidRequest(f'"resolution" is at most {MAX_RESOLUTION} characters',
                             "resolution")
    try:
        closed = await request.app[complaints_key].close(
            complaint.id, by=principal_of(request).user, resolution=resolution.strip(),
            now=time.time())
    except ComplaintClosed as exc:
        raise AlreadyClosed(str(exc)) from None
    if closed is None:  # gone meanwhile
        raise NoSuchComplaint(f"no complaint {complaint.id}")
    return web.json_response(asdict(closed))
