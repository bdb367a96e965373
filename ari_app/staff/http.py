"""Signing in and out, and the browser script every staff page shares.

    POST   /api/session   {"user", "password"} -> the session (and its cookie)
    GET    /api/session   the session: who, role, operator, CSRF token
    DELETE /api/session   sign out
    GET    /static/staff.js
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ari_app.http import (
    COOKIE, ApiError, InvalidRequest, SessionExpired, browser_files, field, public,
    read_json,
)
from ari_app.keys import settings_key
from ari_app.staff.keys import accounts_key, staff_sessions_key
from ari_app.staff.sessions import FAILURE_WINDOW, MAX_FAILURES

__all__ = ["routes"]

routes = web.RouteTableDef()


class SignInDisabled(ApiError):
    status = 503
    error_id = "sign-in-not-configured"


class NotSignedIn(ApiError):
    status = 401
    error_id = "not-signed-in"


class WrongCredentials(ApiError):
    status = 401
    error_id = "wrong-credentials"


class TooManyAttempts(ApiError):
    status = 429
    error_id = "too-many-sign-in-attempts"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(FAILURE_WINDOW)}


def _parts(request: web.Request):
    accounts, sessions = request.app.get(accounts_key), request.app.get(staff_sessions_key)
    if accounts is None or sessions is None:
        raise SignInDisabled("staff sign-in is not set up: the admin sets ETIQUETTE_STAFF_FILE "
                             "(see `ari-etiquette staff --help`)")
    return accounts, sessions


@routes.post("/api/session")
@public  # it is the sign-in itself
async def sign_in(request: web.Request) -> web.Response:
    accounts, sessions = _parts(request)
    body = await read_json(request)
    user = field(body, "user", str, "a text")
    password = field(body, "password", str, "a text")
    if not user:
        raise InvalidRequest('"user" is required', "user")
    if not password:
        raise InvalidRequest('"password" is required', "password")
    user = user.strip().lower()[:64]
    if await sessions.failures(user) >= MAX_FAILURES:
        raise TooManyAttempts(f"too many wrong passwords for {user!r}; try again in "
                              f"{FAILURE_WINDOW // 60} minutes")
    # scrypt takes ~50 ms of CPU: off the event loop, calls go on meanwhile
    account = await asyncio.get_running_loop().run_in_executor(
        None, accounts.check, user, password[:1024])
    if account is None:
        await sessions.failed(user)
        raise WrongCredentials("wrong user name or password")
    token, session = await sessions.start(account.user, account.role, account.endpoint)
    response = web.json_response(session.public())
    settings = request.app[settings_key]
    secure = settings.cookie_secure if settings.cookie_secure is not None else request.secure
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure,
                        path="/", max_age=settings.session_longest)
    return response


@routes.get("/api/session")
@public  # answers "not signed in" itself, with the reason
async def current(request: web.Request) -> web.Response:
    _, sessions = _parts(request)
    token = request.cookies.get(COOKIE)
    if token is None:
        raise NotSignedIn("not signed in")
    session = await sessions.find(token)
    if session is None:
        raise SessionExpired("your session has expired or was signed out; please sign in again")
    return web.json_response(session.public())


@routes.delete("/api/session")
@public
async def sign_out(request: web.Request) -> web.Response:
    _, sessions = _parts(request)
    token = request.cookies.get(COOKIE)
    if token is not None:
        await sessions.end(token)
    response = web.json_response({"signed_out": True})
    response.del_cookie(COOKIE, path="/")
    return response


browser_files(routes, "ari_app.staff", {"/static/staff.js": "staff.js"})
