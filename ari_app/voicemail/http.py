"""REST for voice messages (operators' tools; bearer token, staff sessions).

An operator's session may list, play and mark heard the messages for what they answer for
(operators/scope.py: themselves, the directory entries that ring their phone, their queues'
departments), and no other (403 `not-your-voicemail`); deleting is for admins and supervisors.

    GET    /api/voicemails?for=<operator or directory id>&heard=false
    GET    /api/voicemails/{id}
    GET    /api/voicemails/{id}/audio        the WAV, from Asterisk's stored recordings
    POST   /api/voicemails/{id}/heard
    DELETE /api/voicemails/{id}               the record and the recording
"""

from __future__ import annotations

import re
from dataclasses import asdict

from aiohttp import web

from ari_app.ari import AriNotFound
from ari_app.ari import operations as ops
from ari_app.calls.recording import stored_recording
from ari_app.http import ApiError, InvalidRequest, for_operators, principal_of, query, shown
from ari_app.keys import ari_key, ari_nodes_key, policy_key
from ari_app.operators.scope import Scope
from ari_app.voicemail.keys import voicemails_key

__all__ = ["routes"]

routes = web.RouteTableDef()
VOICEMAIL_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as Voicemail makes them
MAX_FOR = 128


class NoSuchVoicemail(ApiError):
    status = 404
    error_id = "no-such-voicemail"


class RecordingGone(ApiError):
    status = 410
    error_id = "voicemail-recording-gone"


class NotYourVoicemail(ApiError):
    status = 403
    error_id = "not-your-voicemail"


def _scope(request: web.Request) -> Scope | None:
    """An operator's session: what they answer for; None for admins and supervisors."""
    who = principal_of(request)
    if who.role != "operator":
        return None
    return Scope(request.app[policy_key], who.operator or "")


async def _found(request: web.Request):
    voicemail_id = request.match_info["voicemail_id"]
    # a malformed id is as unknown as a missing one (and never reaches another Redis key)
    voicemail = (await request.app[voicemails_key].get(voicemail_id)
                 if VOICEMAIL_ID.fullmatch(voicemail_id) else None)
    if voicemail is None:
        raise NoSuchVoicemail(f"no voicemail {shown(voicemail_id)}")
    scope = _scope(request)
    if scope is not None and not scope.covers(voicemail.for_whom):
        raise NotYourVoicemail(f"voicemail {voicemail.id} is for {voicemail.for_whom}, "
                               "not for you")
    return voicemail


@routes.get("/api/voicemails")
@for_operators
async def listing(request: web.Request) -> web.Response:
    heard = query(request, "heard") or None  # empty (a form's blank filter): no filter
    if heard is not None and heard.lower() not in ("true", "false"):
        raise InvalidRequest(f'"heard" must be true or false, not {shown(heard)}', "heard")
    for_whom = query(request, "for") or None
    if for_whom is not None and len(for_whom) > MAX_FOR:
        raise InvalidRequest(f'"for" must be an operator\'s endpoint or a directory id '
                             f"(at most {MAX_FOR} characters)", "for")
    found = await request.app[voicemails_key].listing(
        for_whom, None if heard is None else heard.lower() == "true")
    scope = _scope(request)
    if scope is not None:  # an operator: theirs only, whatever "for" asked
        found = [v for v in found if scope.covers(v.for_whom)]
    return web.json_response({"voicemails": [asdict(v) for v in found]})


@routes.get("/api/voicemails/{voicemail_id}")
@for_operators
async def one(request: web.Request) -> web.Response:
    return web.json_response(asdict(await _found(request)))


@routes.get("/api/voicemails/{voicemail_id}/audio")
@for_operators
async def audio(request: web.Request) -> web.Response:
    voicemail = await _found(request)
    data = await stored_recording(_nodes(request), voicemail.recording)
    if data is None:
        raise RecordingGone(f"Asterisk no longer has recording {voicemail.recording}")
    return web.Response(body=data, content_type="audio/wav", headers={
        "Content-Disposition": f'attachment; filename="voicemail-{voicemail.id}.wav"'})


@routes.post("/api/voicemails/{voicemail_id}/heard")
@for_operators
async def heard(request: web.Request) -> web.Response:
    found = await _found(request)
    voicemail = await request.app[voicemails_key].mark_heard(found.id)
    if voicemail is None:  # deleted meanwhile
        raise NoSuchVoicemail(f"no voicemail {found.id}")
    return web.json_response(asdict(voicemail))


@routes.delete("/api/voicemails/{voicemail_id}")
async def delete(request: web.Request) -> web.Response:
    voicemail = await _found(request)
    for ari in _nodes(request):
        try:
            await ari.call(ops.DELETE_STORED_RECORDING, recordingName=voicemail.recording)
            break
        except AriNotFound:
            continue  # on another node, or already gone: the record goes all the same
    await request.app[voicemails_key].delete(voicemail.id)
    return web.json_response({"deleted": voicemail.id})


def _nodes(request: web.Request) -> list:
    """Every node's ARI this instance serves, its own first (one without settings `nodes`)."""
    return list(request.app.get(ari_nodes_key, {}).values()) or [request.app[ari_key]]
