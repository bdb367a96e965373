"""The app's own HTTP surface: health, and what every route shares.

Handlers stay thin; domain errors carry a status and an error_id and one middleware turns them
into JSON answers, as it does aiohttp's own (no such route, wrong method, body too large), an
unreachable Redis (503) and anything unexpected (500, logged once): no input gets a 5xx, and
every error is JSON `{"error_id", "message"}`. Bodies are bounded in size (`MAX_BODY`, set on
the application) and in read time (`BODY_TIMEOUT`), and parsed by `read_json` only.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Mapping
from importlib import resources
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog
from aiohttp import web

from ari_app.ari.client import json_text  # our answers as ARI's requests: by orjson
from ari_app.keys import (
    calls_key, events_key, redis_key, sessions_key, settings_key, watchdog_key,
)
from ari_app.storage import STORAGE_ERRORS, storage_away as storage_failure

__all__ = ["ApiError", "BODY_TIMEOUT", "COOKIE", "browser_files", "Forbidden", "InvalidRequest", "MAX_BODY",
           "MAX_JSON_DEPTH", "Principal", "SessionFinder", "StorageUnavailable",
           "auth_middleware", "error_middleware", "field", "for_operators", "health_line",
           "health_report", "json_text", "principal_of",
           "public", "read_json", "routes", "same_secret", "storage_failure"]

MAX_BODY = 64 * 1024        # bytes; aiohttp's client_max_size (build_app)
BODY_TIMEOUT = 5.0          # seconds to receive a whole body once its headers are in
MAX_JSON_DEPTH = 8          # nesting of objects and arrays; our bodies are flat

logger = structlog.get_logger()
routes = web.RouteTableDef()


class ApiError(Exception):
    status = 400
    error_id = "bad-request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error_id": self.error_id, "message": self.message}


class InvalidRequest(ApiError):
    """A body, query or path value of the wrong type or shape; `field` names it."""
    status = 422
    error_id = "invalid-request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def body(self) -> dict:
        answer = super().body()
        if self.field is not None:
            answer["field"] = self.field
        return answer


class InvalidJson(ApiError):
    status = 400
    error_id = "invalid-json"


class RequestTooLarge(ApiError):
    status = 413
    error_id = "request-too-large"


class RequestTimeout(ApiError):
    status = 408
    error_id = "request-timeout"


class NoSuchRoute(ApiError):
    status = 404
    error_id = "no-such-route"


class MethodNotAllowed(ApiError):
    status = 405
    error_id = "method-not-allowed"


class StorageUnavailable(ApiError):
    status = 503
    error_id = "storage-unavailable"

    def __init__(self, message: str = "storage (Redis) not reachable; nothing was changed, "
                                      "please retry") -> None:
        super().__init__(message)
        self.headers = {"Retry-After": "5"}


class InternalError(ApiError):
    status = 500
    error_id = "internal-error"


def field(body: dict, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    """body[name] when it is absent, null or of `kind` (never a bool for int), else a 422
    naming the field: `field(body, "reason", str, "a text")`. For int, a whole float (5.0)
    is that int: JSON has one number type, and JSON Schema's integer includes it."""
    value = body.get(name)
    if value is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, float) and int in kinds and float not in kinds and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,))):
        raise InvalidRequest(f'"{name}" must be {what}', name)
    return value


def query(request: web.Request, name: str, default: str = "") -> str:
    """One query parameter's value; given twice it is a 422 naming it (which of the two was
    meant is not ours to guess)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise InvalidRequest(f'"{name}" is given {len(values)} times; give it once', name)
    return values[0] if values else default


def shown(value: object, limit: int = 40) -> str:
    """A client's value quoted in a message, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


async def read_json(request: web.Request) -> dict:
    """The body as a JSON object ({} when there is none), read within BODY_TIMEOUT and
    MAX_BODY bytes: 408, 413, 400 `invalid-json` (not JSON, an unknown charset, nested deeper
    than MAX_JSON_DEPTH) or 422 `invalid-request` (JSON but not an object)."""
    if not request.can_read_body:
        return {}
    try:
        if request.content.is_eof():  # all in with the headers: nothing to wait for
            raw = await request.read()
        else:
            async with asyncio.timeout(BODY_TIMEOUT):  # no task per body, as wait_for makes
                raw = await request.read()
    except asyncio.TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {BODY_TIMEOUT:g} s") from None
    except web.HTTPRequestEntityTooLarge:
        raise RequestTooLarge(f"the body is larger than {MAX_BODY} bytes") from None
    if not raw.strip():
        return {}
    try:
        text = raw.decode(request.charset or "utf-8")
    except LookupError:
        raise InvalidJson(f"unknown charset {shown(request.charset)}; send UTF-8") from None
    except UnicodeError:  # UnicodeDecodeError, and the bare UnicodeError of charset=punycode
        charset = request.charset or "utf-8"  # or charset=undefined (a 500 before)
        raise InvalidJson(f"the body is not valid {shown(charset)} text; send UTF-8") from None
    try:
        body = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidJson(f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH})") from None
    except ValueError as exc:  # JSONDecodeError, NaN, an integer of 4300+ digits
        raise InvalidJson(f"the body must be JSON: {exc}") from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise InvalidJson(f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH})")
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _depth(value: object) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            todo.extend((item, level + 1) for item in value)
    return deepest


_KINDS = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def browser_files(routes: web.RouteTableDef, package: str, files: Mapping[str, str]) -> None:
    """Serve a capability's page, script and style sheet (shipped in its package) at the
    given paths, e.g. {"/console": "page.html", "/console/console.js": "console.js"}: public
    (a page holds no data; it signs in and asks the API), read once, sent with no-cache."""
    folder = resources.files(package)
    for path, name in files.items():
        body = folder.joinpath(name).read_bytes()
        kind = _KINDS[name[name.rindex("."):]]

        async def serve(request: web.Request, body: bytes = body, kind: str = kind
                        ) -> web.Response:
            return web.Response(body=body, content_type=kind, charset="utf-8",
                                headers={"Cache-Control": "no-cache"})

        routes.get(path)(serve)


def same_secret(sent: str, expected: str) -> bool:
    """Compare a header's value with a secret in constant time, whatever bytes were sent
    (aiohttp hands non-UTF-8 header bytes over as surrogates)."""
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


COOKIE = "etq_session"  # the staff session's cookie (HttpOnly, SameSite=Strict)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: the bearer token (the admin's tools), or a signed-in supervisor or
    operator (the dashboard, the console); an operator's `operator` is their endpoint."""
    user: str
    role: Literal["admin", "supervisor", "operator"]
    operator: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


ADMIN = Principal("api-token", "admin")
PRINCIPAL = web.RequestKey("principal", Principal)  # who sent the request (auth_middleware)


class SessionFinder(Protocol):
    """What the root needs of the staff sessions (staff/sessions.py): a cookie's session."""

    async def find(self, token: str) -> Any | None: ...  # .user .role .operator .csrf


def public(handler):
    """A route anybody may call (the customers' web page): no bearer token needed."""
    handler.public = True
    return handler


def for_operators(handler):
    """A route a signed-in operator may call too; the handler keeps them to what is theirs
    (`principal_of(request).operator`). Others are for supervisors and the admin's token."""
    handler.for_operators = True
    return handler


def principal_of(request: web.Request) -> Principal:
    """Who sent the request (set by `auth_middleware`; the admin for a route it did not check,
    which is only ever a public one)."""
    return request.get(PRINCIPAL, ADMIN)


def has_bearer(request: web.Request) -> bool:
    token = request.app[settings_key].api_token
    if token is None:
        return False
    sent = request.headers.get("Authorization", "")
    return same_secret(sent, f"Bearer {token.get_secret_value()}")


class Unauthorized(ApiError):
    status = 401
    error_id = "unauthorized"


class SessionExpired(ApiError):
    status = 401
    error_id = "session-expired"


class Forbidden(ApiError):
    status = 403
    error_id = "forbidden"


class CsrfMissing(ApiError):
    status = 403
    error_id = "csrf-token-missing"


class CsrfWrong(ApiError):
    status = 403
    error_id = "csrf-token-wrong"


class ApiDisabled(ApiError):
    status = 503
    error_id = "api-token-not-configured"


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """The API needs `Authorization: Bearer <ETIQUETTE_API_TOKEN>` or a staff session's cookie
    (calls and customers' cards are not for everybody), but for the routes marked @public. A
    session's changes need its CSRF token (`X-CSRF-Token`), and an operator's session reaches
    only the routes marked @for_operators."""
    if request.path.startswith("/api/") and not getattr(handler, "public", False):
        request[PRINCIPAL] = principal = await authenticate(request)
        if principal.is_operator and not getattr(handler, "for_operators", False):
            raise Forbidden("operators may not use this route; the console shows what is "
                            "theirs (GET /api/console)")
    return await handler(request)


async def authenticate(request: web.Request) -> Principal:
    settings = request.app[settings_key]
    sessions = request.app.get(sessions_key)
    if "Authorization" in request.headers or (COOKIE not in request.cookies and sessions is None):
        if settings.api_token is None:
            raise ApiDisabled("set ETIQUETTE_API_TOKEN to use the call-control API")
        if not has_bearer(request):
            raise Unauthorized("missing or wrong bearer token")
        return ADMIN
    token = request.cookies.get(COOKIE)
    if token is None or sessions is None:
        raise Unauthorized("sign in first (POST /api/session), or send the bearer token")
    session = await sessions.find(token)
    if session is None:
        raise SessionExpired("your session has expired or was signed out; please sign in again")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token")
        if not sent:
            raise CsrfMissing("a change made with a session needs its X-CSRF-Token header "
                              "(GET /api/session gives it)")
        if not same_secret(sent, session.csrf):
            raise CsrfWrong("the X-CSRF-Token header does not match this session's")
    return Principal(session.user, session.role, session.operator)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every error as JSON `{"error_id", "message"}`: ours, aiohttp's (re-rendered; redirects
    and 2xx pass through), Redis unreachable (503) and anything else (500, logged here once
    with its traceback, never sent)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _answer(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _answer(_from_aiohttp(exc), exc.headers)
    except Exception as exc:
        if storage_failure(exc):
            logger.warning("storage unavailable", method=request.method, path=request.path,
                           error=f"{type(exc).__name__}: {exc}")
            return _answer(StorageUnavailable())
        logger.exception("unexpected error in a request", method=request.method,
                         path=request.path)
        return _answer(InternalError("unexpected error; it was logged"))


def _answer(exc: ApiError, headers=None) -> web.Response:
    kept = {k: v for k, v in (headers or {}).items()
            if k.lower() not in ("content-type", "content-length")}
    kept.update(getattr(exc, "headers", None) or {})
    return web.json_response(exc.body(), status=exc.status, headers=kept)


def _from_aiohttp(exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return NoSuchRoute("no such route")
    if exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return MethodNotAllowed(f"method not allowed here (allowed: {allowed or 'none'})")
    if exc.status == 413:
        return RequestTooLarge(f"the body is larger than {MAX_BODY} bytes")
    error = ApiError(exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}"
                     else exc.reason)
    error.status = exc.status
    error.error_id = "-".join(exc.reason.lower().replace("'", "").split()) or "http-error"
    return error


@routes.get("/healthz")
async def health(request: web.Request) -> web.Response:
    """200 when every part works; 503 naming each part that does not (for a load balancer,
    and for the admin reading it)."""
    report = await health_report(request.app)
    return web.json_response(report, status=503 if report["problems"] else 200)


async def health_report(app: web.Application) -> dict:
    """What /healthz answers (and systemd's status line says): each part's state, and the
    problems by name, none when all is well."""
    events, calls = app[events_key], app[calls_key]
    problems: list[str] = []
    if not events.connected.is_set():
        problems.append("ari events: " + (events.last_error or "reconnecting"))
    try:
        await app[redis_key].ping()
        redis = "ok"
    except STORAGE_ERRORS as exc:
        redis = f"unavailable: {exc or type(exc).__name__}"
        problems.append(f"redis: {redis}")
    tasks = app[watchdog_key].status()
    problems += [f"{name}: not running" for name, task in tasks.items() if not task["running"]]
    return {
        "status": "degraded" if problems else "ok", "problems": problems,
        "ari_events": "connected" if events.connected.is_set() else "reconnecting",
        "redis": redis, "tasks": tasks, "active_call_lanes": len(calls.lanes),
        "calls_waiting_for_storage": calls.lanes.stalled_count,
        "asyncio_tasks": len(asyncio.all_tasks()),  # grows with calls, never without (a leak)
        **({"pool": events.status()} if hasattr(events, "status") else {}),
    }


def health_line(report: dict) -> str:
    """The report in one line, for `systemctl status`."""
    if report["problems"]:
        return "degraded: " + "; ".join(report["problems"])
    return (f"serving: ARI events connected, Redis ok, {report['active_call_lanes']} calls "
            "in hand")
