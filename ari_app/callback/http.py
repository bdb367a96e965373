"""The "call me back" page and the callback API.

    GET  /callback                  the page (name, number, preferred time, topic)
    POST /api/callbacks             {"number": "+12125550100", "name": ..., "topic": ...,
                                     "preferred_time": ISO 8601, "time_zone": "Europe/Moscow"}
                                    -> 201 {"id", "status", "window": {"earliest", "latest"}}
    GET  /api/callbacks/{id}        its status and window
    GET  /api/customers/{number}    the customer's card (operators)

POST /api/callbacks is public (the page posts to it): a browser must send the page's CSRF
token (header X-CSRF-Token, matched against its cookie); a server may use the bearer token
instead. Bad input is a 422 naming the field; abuse is a 429; nothing invalid reaches Redis.
"""

from __future__ import annotations

import re
import secrets
from importlib import resources

from aiohttp import web

from ari_app.callback.intake import InvalidField, RateLimited, check_form
from ari_app.callback.keys import callbacks_key, rate_limits_key
from ari_app.callback.service import CallbackRequest, NoCallbackWindow
from ari_app.customers.keys import customers_key
from ari_app.http import (
    ApiError, has_bearer, json_text, public, read_json, same_secret, shown,
)
from ari_app.keys import policy_key

__all__ = ["routes"]

routes = web.RouteTableDef()
CSRF_COOKIE = "etq_csrf"
TEXT_FIELDS = ("number", "name", "topic", "preferred_time", "time_zone", "language")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")       # uuid4().hex, as CallbackRequest makes them
CUSTOMER_NUMBER = re.compile(r"\+?[0-9]{1,15}")  # E.164, the "+" optional in a path
_PAGE = resources.files("ari_app.callback").joinpath("page.html").read_text(encoding="utf-8")


class InvalidCallbackRequest(ApiError):
    status = 422

    def __init__(self, problem: InvalidField) -> None:
        super().__init__(problem.message)
        self.error_id, self.field = problem.error_id, problem.field

    def body(self) -> dict:
        return {**super().body(), "field": self.field}


class CsrfFailed(ApiError):
    status = 403
    error_id = "csrf-token-missing-or-wrong"


class TooManyRequests(ApiError):
    status = 429
    error_id = "too-many-requests"

    def __init__(self, message: str, retry_after: int = 60) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class NoSuchCustomer(ApiError):
    status = 404
    error_id = "no-such-customer"


class NoSuchRequest(ApiError):
    status = 404
    error_id = "no-such-callback-request"


class NoWindow(ApiError):
    """The customer's quiet hours (their zone, from their number or the form) never meet the
    business hours: this request cannot be served, retrying will not help. A 422, as the
    OpenAPI document says (a 503 made a customer's form a server error)."""
    status = 422
    error_id = "no-callback-window"


@routes.get("/callback")
async def page(request: web.Request) -> web.Response:
    token = secrets.token_urlsafe(24)
    html = _PAGE.replace("{{csrf}}", token).replace(
        "{{company}}", _escape(request.app[policy_key].company))
    response = web.Response(text=html, content_type="text/html")
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=3600)
    return response


@routes.post("/api/callbacks")
@public
async def create(request: web.Request) -> web.Response:
    server = has_bearer(request)
    if not server:
        sent, cookie = request.headers.get("X-CSRF-Token", ""), request.cookies.get(CSRF_COOKIE, "")
        if not sent or not cookie or not same_secret(sent, cookie):
            raise CsrfFailed("reload the page and send the form again")
    limits, sender = request.app[rate_limits_key], request.remote or "unknown"
    try:
        try:
            body = await read_json(request)
            for name in TEXT_FIELDS:
                if body.get(name) is not None and not isinstance(body[name], str):
                    raise InvalidField(name, f"{name} must be text")
            policy = request.app[policy_key]
            form = check_form(body, policy.callback, policy.languages)
        except (ApiError, InvalidField):
            await limits.check_sender(sender, server=server)  # bad input counts all the same
            raise
        accepted = await request.app[callbacks_key].accept(CallbackRequest(
            number=form.number, source="web", name=form.name, topic=form.topic,
            language=form.language, own_number=False, time_zone=form.time_zone),
            preferred=form.preferred_at, require_window=True,
            counted=limits.for_form(sender, form.number, server=server))  # one round trip
    except InvalidField as problem:
        raise InvalidCallbackRequest(problem) from None
    except RateLimited as exc:
        raise TooManyRequests(exc.message, exc.retry_after) from None
    except NoCallbackWindow as exc:
        raise NoWindow(f"{exc}; please call us instead") from None
    callback = accepted.request
    return web.json_response({**callback.to_public_dict(), "id": accepted.submission_id,
                              "merged": accepted.merged},
                             status=200 if accepted.merged else 201, dumps=json_text)


@routes.get("/api/callbacks/{request_id}")
@public  # the id is the secret: the page that made the request may follow it
async def status(request: web.Request) -> web.Response:
    request_id = request.match_info["request_id"]
    # a malformed id is as unknown as a missing one (and never reaches another Redis key)
    callback = (await request.app[callbacks_key].for_submission(request_id)
                if REQUEST_ID.fullmatch(request_id) else None)
    if callback is None:
        raise NoSuchRequest(f"no callback request {shown(request_id)}")
    return web.json_response(callback.to_public_dict())


@routes.get("/api/customers/{number}")
async def card(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    if not CUSTOMER_NUMBER.fullmatch(number):
        raise NoSuchCustomer(f"no customer card for {shown(number)}")
    found = await request.app[customers_key].card(number if number.startswith("+") else f"+{number}")
    if found is None:
        raise NoSuchCustomer(f"no customer card for {number}")
    return web.json_response(found)


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
