"""The REST API described: an OpenAPI 3.1 document of every route, served at
`GET /api/openapi.json` (public: it holds no data). A unit test keeps it true: every route the
app registers is in it, and every path in it is a route.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ari_app.http import public
from ari_app.keys import policy_key
from ari_app.policy import Policy

__all__ = ["document", "routes"]

routes = web.RouteTableDef()

ERROR = {"type": "object", "required": ["error_id", "message"], "properties": {
    "error_id": {"type": "string", "examples": ["no-such-call"]},
    "message": {"type": "string"},
    "field": {"type": "string", "description": "the request's field at fault (422)"}}}
OBJECT = {"type": "object"}
TEXT = {"type": "string"}


def _error(status: int, *ids: str) -> tuple[str, dict]:
    return str(status), {"description": " | ".join(ids), "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"},
                             "example": {"error_id": ids[0], "message": "..."}}}}


STORAGE = _error(503, "storage-unavailable")
AUTH = _error(401, "unauthorized", "session-expired")
BAD = _error(422, "invalid-request")
# what read_json answers for any body (ari_app/http.py), on every operation that takes one
BODY_ERRORS = (_error(400, "invalid-json"), _error(408, "request-timeout"),
               _error(413, "request-too-large"))
# what every call-control route may answer besides its own (calls/control.py): no such call,
# another operator's (a session's), a state it cannot change, the call driven by another
# instance, Asterisk refusing, the call's steps busy (Retry-After)
CALL_ERRORS = (_error(404, "no-such-call"), _error(403, "not-your-call"),
               _error(409, "wrong-call-state", "call-on-another-instance"),
               _error(502, "call-control-failed"), _error(503, "call-busy"))


def _ok(status: int, what: str, schema: dict | None = None, example: Any = None,
        kind: str = "application/json") -> tuple[str, dict]:
    content: dict = {"schema": schema or OBJECT}
    if example is not None:
        content["example"] = example
    return str(status), {"description": what, "content": {kind: content}}


def _op(summary: str, *responses: tuple[str, dict], body: dict | None = None,
        params: tuple[tuple, ...] = (), secured: bool = True) -> dict:
    """One operation: `params` are (name, in, description) and, where a value is not any
    text, its schema; two errors of one status are one answer naming both error ids."""
    answers: dict = {}
    for status, answer in responses + (BODY_ERRORS if body is not None else ()):
        if status in answers:
            answer = {**answers[status], "description": answers[status]["description"] + " | "
                      + answer["description"]}
        answers[status] = answer
    op: dict = {"summary": summary, "responses": answers}
    if not secured:
        op["security"] = []
    if params:
        op["parameters"] = [{"name": n, "in": where, "required": where == "path",
                             "description": d, "schema": schema[0] if schema else TEXT}
                            for n, where, d, *schema in params]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body}}}
    return op


def _body(**fields: tuple) -> dict:
    """A JSON object: name -> (type, description) and, where it says more, the rest of the
    field's schema (an enum of the policy's keys, a range); none required unless marked '!'."""
    required = [n for n, (t, *_) in fields.items() if t.endswith("!")]
    return {"type": "object", "required": required, "properties": {
        n: {"type": t.rstrip("!"), "description": d, **(more[0] if more else {})}
        for n, (t, d, *more) in fields.items()}}


def _one_of(values: Any) -> dict:
    """An enum of the policy's keys (hold reasons, ...): schema-valid is then acceptable; none
    without a policy (the unit tests' document)."""
    return {"enum": list(values)} if values is not None else {}


def _both(answer: tuple[str, dict], other: tuple[str, dict]) -> tuple[str, dict]:
    """One status answered in two media types (JSON, or CSV when asked)."""
    status, one = answer
    return status, {**one, "content": {**one["content"], **other[1]["content"]}}


SOME = {"minLength": 1}  # an empty one is never a name, an id or a code


_FILE_KINDS = {"html": ("the page", "text/html"), "js": ("JavaScript", "text/javascript"),
               "css": ("CSS", "text/css")}


def _file(summary: str, path: str) -> dict:
    """A public file a browser loads (a page, its script or style sheet)."""
    what, kind = _FILE_KINDS[path.rsplit(".", 1)[-1] if "." in path else "html"]
    return {"get": _op(summary, _ok(200, what, TEXT, kind=kind), secured=False)}


CALL = (("call_id", "path", "the call's id (the caller's channel id)"),)
VOICEMAIL = (("voicemail_id", "path", "the voice message's id"),)
NOT_YOURS = _error(403, "not-your-voicemail")  # an operator's session: another's message
COMPLAINT = (("complaint_id", "path", "the complaint's id"),)
FORBIDDEN = _error(403, "forbidden")  # an operator's session on a supervisors' route


def document(policy: Policy | None = None) -> dict:
    """The API as this app serves it; with its `policy`, the values the policy decides (hold
    and transfer reasons, pause reasons) are enums, so that schema-valid input is accepted."""
    hold_reasons = list(policy.hold.reasons) if policy else None
    transfer_reasons = list(policy.transfer.reasons) if policy else None
    pause_reasons = list(policy.operators.pause_reasons) if policy else None
    operators = ([name for e in policy.operators.endpoints for name in (e, e.split("/", 1)[-1])]
                 if policy else None)
    paths: dict[str, dict] = {
        "/healthz": {"get": _op(
            "Whether every part works (Redis, ARI, the events WebSocket, background tasks)",
            _ok(200, "healthy", example={"redis": "ok", "ari": "ok"}),
            _ok(503, "not healthy: `problems` names each part"), secured=False)},
        "/metrics": {"get": _op("Prometheus metrics", _ok(200, "the text format",
                                                           TEXT, kind="text/plain"),
                                secured=False)},
        "/callback": {"get": _op("The customers' callback page (HTML)",
                                 _ok(200, "the page", TEXT, kind="text/html"), secured=False)},
        "/console": _file("The operator console (HTML; signs in through /api/session)",
                          "/console"),
        "/console/console.js": _file("The console's script", "/console/console.js"),
        "/console/console.css": _file("The console's style", "/console/console.css"),
        "/api/console": {"get": _op(
            "The signed-in operator's console: their state, their calls (the customer's card, "
            "the hold's timers), callbacks due, voice messages",
            _ok(200, "the view"), _error(403, "not-your-console"),
            _error(404, "no-such-operator"), BAD, AUTH, STORAGE,
            params=(("operator", "query", "admins and supervisors: whose console"),))},
        "/api/openapi.json": {"get": _op("This document", _ok(200, "OpenAPI 3.1"),
                                         secured=False)},
        "/api/calls": {"get": _op("The calls in progress", _ok(200, "the calls", example={
            "calls": [{"call_id": "1796298214.23", "status": "queued", "caller": "+12125550100",
                       "operator": None, "started_at": 1796298214.2}]}), AUTH, STORAGE)},
        "/api/calls/{call_id}/hold": {
            "post": _op("Put the caller on hold (the reason is said to them)",
                        _ok(202, "on hold"), *CALL_ERRORS, BAD, AUTH, STORAGE, params=CALL,
                        body=_body(reason=("string", "a key of the policy's hold reasons",
                                           _one_of(hold_reasons)),
                                   expected_minutes=("integer", "1-30, said to the caller",
                                                     {"minimum": 1, "maximum": 30}))),
            "delete": _op("Take the caller off hold", _ok(202, "resuming"), *CALL_ERRORS,
                          AUTH, STORAGE, params=CALL)},
        "/api/calls/{call_id}/transfer": {
            "post": _op("Transfer the caller (announced or attended)", _ok(202, "started"),
                        *CALL_ERRORS, BAD, _error(404, "no-such-transfer-target"),
                        _error(409, "transfer-target-not-available"), AUTH, STORAGE,
                        params=CALL, body=_body(
                            target=("string!", "a directory entry's id, code or number", SOME),
                            mode=("string", '"announced" or "attended"',
                                  {"enum": ["announced", "attended"]}),
                            reason=("string", "a key of the policy's reasons",
                                    _one_of(transfer_reasons)))),
            "delete": _op("Cancel the transfer", _ok(202, "cancelled"), *CALL_ERRORS, AUTH,
                          STORAGE, params=CALL)},
        "/api/calls/{call_id}/transfer/complete": {"post": _op(
            "Complete an attended transfer", _ok(202, "completing"), *CALL_ERRORS, AUTH,
            STORAGE, params=CALL)},
        "/api/calls/{call_id}/escalate": {"post": _op(
            "A supervisor for the caller (or their complaint recorded)", _ok(202, "started"),
            *CALL_ERRORS, AUTH, STORAGE, params=CALL)},
        "/api/calls/{call_id}/warn": {"post": _op(
            "Warn an abusive caller: the first time a polite warning both hear, the second "
            "time a polite goodbye, then the call ends (the operator goes to wrap-up)",
            _ok(202, "warning (the prompt plays)", example={"call_id": "1796298214.23",
                                                            "status": "warning"}),
            *CALL_ERRORS, AUTH, STORAGE, params=CALL)},
        "/api/callbacks": {"post": _op(
            "Ask to be called back (the web page; CSRF token from its cookie)",
            _ok(200, "joined the number's open request (merged)"),
            _ok(201, "accepted, with the promised window", example={
                "id": "5f0c...", "status": "pending", "number": "+12125550100",
                "window": {"earliest": 1795528800.0, "latest": 1795530600.0,
                           "time_zone": "America/New_York"}, "merged": False}),
            _error(403, "csrf-token-missing-or-wrong"), BAD,
            _error(422, "invalid-number", "refused-number", "no-callback-window"),
            _error(429, "too-many-requests"), STORAGE,
            body=_body(number=("string!", "the number to call back"),
                       name=("string", "who asks"), topic=("string", "what about"),
                       time_zone=("string", "IANA zone, else from the number"),
                       preferred_time=("string", "ISO time, the earliest wanted")),
            secured=False)},
        "/api/callbacks/{request_id}": {"get": _op(
            "A callback request's status (its id is the secret)", _ok(200, "the request"),
            _error(404, "no-such-callback-request"), STORAGE,
            params=(("request_id", "path", "the id the POST returned"),), secured=False)},
        "/api/customers/{number}": {"get": _op(
            "A customer's card: name, calls, callback requests, messages",
            _ok(200, "the card"), _error(404, "no-such-customer"), AUTH, STORAGE,
            params=(("number", "path", "E.164"),))},
        "/api/voicemails": {"get": _op(
            "Voice messages (an operator's session: only theirs)", _ok(200, "the messages"),
            _error(422, "invalid-request"), AUTH, STORAGE,
            params=(("for", "query", "an operator endpoint or a directory id"),
                    ("heard", "query", "true or false (any case); empty: either",
                     {**TEXT, "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])?$"})))},
        "/api/voicemails/{voicemail_id}": {
            "get": _op("One voice message", _ok(200, "the message"),
                       _error(404, "no-such-voicemail"), NOT_YOURS, AUTH, STORAGE,
                       params=VOICEMAIL),
            "delete": _op("Delete the message and its recording", _ok(200, "deleted"),
                          _error(404, "no-such-voicemail"), AUTH, STORAGE, params=VOICEMAIL)},
        "/api/voicemails/{voicemail_id}/audio": {"get": _op(
            "The recording (WAV)", _ok(200, "audio", {"type": "string", "format": "binary"},
                                       kind="audio/wav"),
            _error(404, "no-such-voicemail"), _error(410, "voicemail-recording-gone"),
            NOT_YOURS, AUTH, STORAGE, params=VOICEMAIL)},
        "/api/voicemails/{voicemail_id}/heard": {"post": _op(
            "Mark the message heard", _ok(200, "the message"),
            _error(404, "no-such-voicemail"), NOT_YOURS, AUTH, STORAGE, params=VOICEMAIL)},
        "/api/complaints": {"get": _op(
            "Complaints left when no supervisor could take the caller, newest first "
            "(supervisors; an operator's session: 403)", _ok(200, "the complaints"),
            _error(422, "invalid-request"), FORBIDDEN, AUTH, STORAGE,
            params=(("status", "query", "open or closed; empty: both",
                     {**TEXT, "pattern": "^(open|closed)?$"}),))},
        "/api/complaints/{complaint_id}": {"get": _op(
            "One complaint", _ok(200, "the complaint"), _error(404, "no-such-complaint"),
            FORBIDDEN, AUTH, STORAGE, params=COMPLAINT)},
        "/api/complaints/{complaint_id}/audio": {"get": _op(
            "What the caller said (WAV)", _ok(200, "audio", {"type": "string",
                                                             "format": "binary"},
                                               kind="audio/wav"),
            _error(404, "no-such-complaint", "complaint-not-recorded"),
            _error(410, "complaint-recording-gone"), FORBIDDEN, AUTH, STORAGE,
            params=COMPLAINT)},
        "/api/complaints/{complaint_id}/close": {"post": _op(
            "Handled: off the open list, with who, when and what was done",
            _ok(200, "the complaint, closed"), _error(404, "no-such-complaint"),
            _error(409, "complaint-closed"), _error(422, "invalid-request"), FORBIDDEN, AUTH,
            STORAGE, params=COMPLAINT,
            body=_body(resolution=("string", "what was done (at most 500 characters)",
                                   {"maxLength": 500})))},
        "/api/events": {"get": _op(
            "The live call events (server-sent events, one JSON event each)",
            _ok(200, "the stream", TEXT, kind="text/event-stream"), AUTH)},
        "/api/operators": {"get": _op(
            "The operators: state, reason, since, phone registered, in a call, free",
            _ok(200, "the operators"), AUTH, STORAGE)},
        "/api/operators/{operator}/{action}": {"post": _op(
            "Log an operator in or out, pause (with a reason) or unpause",
            _ok(200, "the operator after it"), _error(404, "no-such-operator"),
            _error(409, "wrong-operator-state"), BAD, AUTH, STORAGE,
            params=(("operator", "path", "the endpoint (PJSIP/operator1) or its resource"),
                    ("action", "path", "login | logout | pause | unpause",
                     {"enum": ["login", "logout", "pause", "unpause"]})),
            body=_body(reason=("string", "pause only: one of the policy's pause_reasons",
                               _one_of(pause_reasons))))},
        "/api/reports/compliance": {"get": _op(
            "The compliance report per operator for a UTC day: figures and a 0-100 score "
            "(supervisors and admins)",
            _both(_ok(200, "every operator's figures (JSON), or with format=csv one row each",
                      example={"day": "2026-12-03", "score_formula": "score = 100 − ...",
                               "operators": [{"operator": "PJSIP/operator1", "calls": 6,
                                              "score": 45}]}),
                  _ok(200, "", TEXT, kind="text/csv")),
            _error(422, "invalid-request"), _error(403, "forbidden"), AUTH, STORAGE,
            params=(("day", "query", "YYYY-MM-DD (UTC); today when left out or empty",
                     {**TEXT, "anyOf": [{"format": "date"}, {"maxLength": 0}]}),
                    ("operator", "query", "one operator (PJSIP/operator1 or operator1); "
                     "every one when left out or empty",
                     {**TEXT, **_one_of(operators and ["", *operators])}),
                    ("format", "query", "json (default, also when empty) or csv",
                     {"enum": ["", "json", "csv"]})))},
        "/reports": _file("The compliance report page (HTML; signs in through the API)",
                          "/reports"),
        "/api/session": {
            "post": _op("Sign in (staff: the console, the dashboard); sets the session cookie",
                        _ok(200, "the session", example={
                            "user": "operator1", "role": "operator",
                            "operator": "PJSIP/operator1", "csrf": "q8Z...", "started": 1.0}),
                        _error(401, "wrong-credentials"),
                        _error(429, "too-many-sign-in-attempts"),
                        _error(503, "sign-in-not-configured"), BAD, STORAGE, secured=False,
                        body=_body(user=("string!", "the staff file's user name", SOME),
                                   password=("string!", "their password", SOME))),
            "get": _op("The signed-in session (who, role, their CSRF token)",
                       _ok(200, "the session"), _error(401, "not-signed-in", "session-expired"),
                       STORAGE, secured=False),
            "delete": _op("Sign out", _ok(200, "signed out", example={"signed_out": True}),
                          STORAGE, secured=False)},
        "/static/staff.js": _file(
            "The staff pages' shared script (sign-in, API calls with CSRF, live events)",
            "/static/staff.js"),
        "/api/queues": {"get": _op(
            "The queues: who waits (place, wait, kind), the longest wait, their operators",
            _ok(200, "the queues"), AUTH, STORAGE)},
        "/dashboard": _file("The supervisor dashboard (HTML; signs in through the API)",
                            "/dashboard"),
        "/dashboard/dashboard.js": _file("The dashboard's script", "/dashboard/dashboard.js"),
        "/dashboard/dashboard.css": _file("The dashboard's style", "/dashboard/dashboard.css"),
        "/api/dashboard": {"get": _op(
            "The supervisor dashboard's snapshot: queues (waiting, longest wait, estimate, "
            "today's figures), operators with their current holds, open callbacks late first, "
            "open complaints, today's figures per UTC hour",
            _ok(200, "the snapshot", example={
                "now": 1796298214.2, "queues": [{"name": "sales", "waiting": [],
                                                 "longest_wait": 0.0}],
                "operators": [{"endpoint": "PJSIP/operator1", "state": "logged_in",
                               "holds": []}],
                "callbacks": [], "complaints": [],
                "today": [{"hour": "2026-12-03T14", "calls": 3, "answered": 2}]}),
            AUTH, _error(403, "forbidden"), STORAGE)},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ari-etiquette", "version": "1",
                 "description": "Call-center etiquette on Asterisk: calls, holds, transfers, "
                                "queues, operators, callbacks, voice messages. Every error is "
                                "JSON with `error_id` and `message`."},
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "ETIQUETTE_API_TOKEN: the admin's tools, everything"},
                "session": {"type": "apiKey", "in": "cookie", "name": "etq_session",
                            "description": "a signed-in supervisor (everything) or operator "
                                           "(only the routes for operators, on their own calls "
                                           "and state: 403 `forbidden` / `not-your-call` "
                                           "otherwise); every change also needs the header "
                                           "`X-CSRF-Token` (403 `csrf-token-missing`)"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


@routes.get("/api/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[policy_key]))
