"""REST for voice messages (operators' tools; bearer token).

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
from ari_app.http import ApiError, InvalidRequest, shown
from ari_app.keys import ari_key
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


async def _found(request: web.Request):
    voicemail_id = request.match_info["voicemail_id"]
    # a malformed id is as unknown as a missing one (and never reaches another Redis key)
    voicemail = (await request.app[voicemails_key].get(voicemail_id)
                 if VOICEMAIL_ID.fullmatch(voicemail_id) else None)
    if voicemail is None:
        raise NoSuchVoicemail(f"no voicemail {shown(voicemail_id)}")
    return voicemail


@routes.get("/api/voicemails")
async def listing(request: web.Request) -> web.Response:
    heard = request.query.get("heard") or None  # empty (a form's blank filter): no filter
    if heard is not None and heard.lower() not in ("true", "false"):
        raise InvalidRequest(f'"heard" must be true or false, not {shown(heard)}', "heard")
    for_whom = request.query.get("for") or None
    if for_whom is not None and len(for_whom) > MAX_FOR:
        raise InvalidRequest(f'"for" must be an operator\'s endpoint or a directory id '
                             f"(at most {MAX_FOR} characters)", "for")
    found = await request.app[voicemails_key].listing(
        for_whom, None if heard is None else heard.lower() == "true")
    return web.json_response({"voicemails": [asdict(v) for v in found]})


@routes.get("/api/voicemails/{voicemail_id}")
async def one(request: web.Request) -> web.Response:
    return web.json_response(asdict(await _found(request)))


@routes.get("/api/voicemails/{voicemail_id}/audio")
async def audio(request: web.Request) -> web.Response:
    voicemail = await _found(request)
    try:
        data = await request.app[ari_key].call(ops.STORED_RECORDING_FILE,
                                               recordingName=voicemail.recording)
    except AriNotFound as exc:
        raise RecordingGone(f"Asterisk no longer has recording {voicemail.recording}") from exc
    return web.Response(body=data, content_type="audio/wav", headers={
        "Content-Disposition": f'attachment; filename="voicemail-{voicemail.id}.wav"'})


@routes.post("/api/voicemails/{voicemail_id}/heard")
async def heard(request: web.Request) -> web.Response:
    found = await _found(request)
    voicemail = await request.app[voicemails_key].mark_heard(found.id)
    if voicemail is None:  # deleted meanwhile
        raise NoSuchVoicemail(f"no voicemail {found.id}")
    return web.json_response(asdict(voicemail))


@routes.delete("/api/voicemails/{voicemail_id}")
async def delete(request: web.Request) -> web.Response:
    voicemail = await _found(request)
    try:
        await request.app[ari_key].call(ops.DELETE_STORED_RECORDING,
                                        recordingName=voicemail.recording)
    except AriNotFound:
        pass  # already gone from Asterisk: the record goes all the same
    await request.app[voicemails_key].delete(voicemail.id)
    return web.json_response({"deleted": voicemail.id})
