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
from typing import Any

import structlog
from aiohttp import web

from ari_app.keys import calls_key, events_key, redis_key, settings_key, watchdog_key
from ari_app.storage import STORAGE_ERRORS, storage_away as storage_failure

__all__ = ["ApiError", "BODY_TIMEOUT", "InvalidRequest", "MAX_BODY", "MAX_JSON_DEPTH",
           "StorageUnavailable", "auth_middleware", "error_middleware", "field", "read_json",
           "routes", "same_secret", "storage_failure"]

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
    naming the field: `field(body, "reason", str, "a text")`."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,))):
        raise InvalidRequest(f'"{name}" must be {what}', name)
    return value


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
        raw = await asyncio.wait_for(request.read(), BODY_TIMEOUT)
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
    except UnicodeDecodeError:
        raise InvalidJson("the body is not valid UTF-8 text") from None
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


def same_secret(sent: str, expected: str) -> bool:
    """Compare a header's value with a secret in constant time, whatever bytes were sent
    (aiohttp hands non-UTF-8 header bytes over as surrogates)."""
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def public(handler):
    """A route anybody may call (the customers' web page): no bearer token needed."""
    handler.public = True
    return handler


def has_bearer(request: web.Request) -> bool:
    token = request.app[settings_key].api_token
    if token is None:
        return False
    sent = request.headers.get("Authorization", "")
    return same_secret(sent, f"Bearer {token.get_secret_value()}")


class Unauthorized(ApiError):
    status = 401
    error_id = "unauthorized"


class ApiDisabled(ApiError):
    status = 503
    error_id = "api-token-not-configured"


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """The API needs `Authorization: Bearer <ETIQUETTE_API_TOKEN>` (calls and customers' cards
    are not for everybody), but for the routes marked @public."""
    if request.path.startswith("/api/") and not getattr(handler, "public", False):
        if request.app[settings_key].api_token is None:
            raise ApiDisabled("set ETIQUETTE_API_TOKEN to use the call-control API")
        if not has_bearer(request):
            raise Unauthorized("missing or wrong bearer token")
    return await handler(request)


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
    events, calls = request.app[events_key], request.app[calls_key]
    problems: list[str] = []
    if not events.connected.is_set():
        problems.append("ari events: " + (events.last_error or "reconnecting"))
    try:
        await request.app[redis_key].ping()
        redis = "ok"
    except STORAGE_ERRORS as exc:
        redis = f"unavailable: {exc or type(exc).__name__}"
        problems.append(f"redis: {redis}")
    tasks = request.app[watchdog_key].status()
    problems += [f"{name}: not running" for name, task in tasks.items() if not task["running"]]
    return web.json_response({
        "status": "degraded" if problems else "ok", "problems": problems,
        "ari_events": "connected" if events.connected.is_set() else "reconnecting",
        "redis": redis, "tasks": tasks, "active_call_lanes": len(calls.lanes),
        "calls_waiting_for_storage": calls.lanes.stalled_count}, status=503 if problems else 200)
