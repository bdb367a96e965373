"""Staff sign-in against the real app and Redis: a wrong password, a session and its CSRF
token, what an operator may reach, sign-out and an expired session, each with a clear answer."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ari_app.http import COOKIE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Browser:
    """One staff member's HTTP client with its cookie jar, as a page would be."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          timeout=aiohttp.ClientTimeout(total=15))
        self.csrf: str | None = None

    async def call(self, method: str, path: str, json=None, *, csrf: bool = True):
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        async with self.http.request(method, self.base_url + path, json=json,
                                     headers=headers) as resp:
            return resp.status, await resp.json(), resp

    async def sign_in(self, user: str, password: str | None = None):
        status, body, resp = await self.call("POST", "/api/session",
                                             {"user": user, "password": password or "pw-" + user})
        if status == 200:
            self.csrf = body["csrf"]
        return status, body, resp

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def staff(app_runner):
    await app_runner.start()
    opened: list[Browser] = []

    def open_browser() -> Browser:
        opened.append(Browser(app_runner.base_url))
        return opened[-1]

    yield open_browser
    for browser in opened:
        await browser.close()


async def test_given_wrong_password_when_signing_in_then_clear_401_and_no_cookie(staff):
    anna = staff()
    status, body, resp = await anna.sign_in("operator1", "not-the-password")
    assert (status, body["error_id"]) == (401, "wrong-credentials")
    assert body["message"] == "wrong user name or password"
    assert COOKIE not in resp.cookies
    status, body, _ = await anna.sign_in("nobody", "whatever-it-is")
    assert (status, body["error_id"]) == (401, "wrong-credentials")  # same answer: no hint
    status, body, _ = await anna.call("GET", "/api/session")
    assert (status, body["error_id"]) == (401, "not-signed-in")


async def test_given_operator_session_then_only_own_routes_and_csrf_needed(staff, redis):
    anna = staff()
    status, body, resp = await anna.sign_in("operator1")
    assert status == 200, body
    assert body["role"] == "operator" and body["operator"] == "PJSIP/operator1"
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    # Redis holds a digest of the token, never the token itself
    assert not await redis.keys(f"*{cookie.value}*")
    status, me, _ = await anna.call("GET", "/api/session")
    assert (status, me["user"], me["csrf"]) == (200, "operator1", body["csrf"])

    status, body, _ = await anna.call("GET", "/api/calls")  # everybody's calls: not theirs
    assert (status, body["error_id"]) == (403, "forbidden")
    status, body, _ = await anna.call("POST", "/api/operators/operator2/login")
    assert (status, body["error_id"]) == (403, "forbidden")
    status, body, _ = await anna.call("POST", "/api/operators/operator1/login", csrf=False)
    assert (status, body["error_id"]) == (403, "csrf-token-missing")
    anna.csrf = "forged"
    status, body, _ = await anna.call("POST", "/api/operators/operator1/login")
    assert (status, body["error_id"]) == (403, "csrf-token-wrong")
    anna.csrf = me["csrf"]
    status, body, _ = await anna.call("POST", "/api/operators/operator1/pause",
                                      {"reason": "break"})
    assert status == 200, body
    status, body, _ = await anna.call("POST", "/api/operators/PJSIP/operator1/unpause")
    assert status == 200, body


async def test_given_supervisor_session_then_whole_api(staff):
    boss = staff()
    status, body, _ = await boss.sign_in("supervisor1")
    assert (status, body["role"], body["operator"]) == (200, "supervisor", None)
    status, body, _ = await boss.call("GET", "/api/calls")
    assert status == 200 and body == {"calls": []}
    status, body, _ = await boss.call("POST", "/api/operators/operator2/login")
    assert status == 200, body


async def test_given_sign_out_then_old_cookie_is_an_expired_session(staff, app_runner):
    anna = staff()
    _, _, resp = await anna.sign_in("operator1")
    token = resp.cookies[COOKIE].value
    status, body, _ = await anna.call("DELETE", "/api/session")
    assert (status, body) == (200, {"signed_out": True})
    async with aiohttp.ClientSession(cookies={COOKIE: token}) as stale:
        async with stale.get(app_runner.base_url + "/api/session") as resp:
            assert resp.status == 401
            assert (await resp.json())["error_id"] == "session-expired"
        async with stale.get(app_runner.base_url + "/api/events") as resp:
            body = await resp.json()
            assert (resp.status, body["error_id"]) == (401, "session-expired")
            assert "sign in again" in body["message"]


async def test_given_idle_session_past_its_time_then_expired_message(settings, app_runner,
                                                                     redis):
    settings.session_idle = 1
    await app_runner.start()
    anna = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        async with anna.post(app_runner.base_url + "/api/session",
                             json={"user": "operator2", "password": "pw-operator2"}) as resp:
            assert resp.status == 200

        async def gone() -> None:  # every request renews it: watch Redis end it instead
            while await redis.keys("etq:session:*"):
                await asyncio.sleep(0.1)

        await asyncio.wait_for(gone(), 10)
        async with anna.get(app_runner.base_url + "/api/session") as resp:
            body = await resp.json()
        assert (resp.status, body["error_id"]) == (401, "session-expired")
        assert body["message"] == ("your session has expired or was signed out; please sign "
                                   "in again")
    finally:
        await anna.close()


async def test_given_many_wrong_passwords_then_sign_in_waits(staff, redis):
    guesser = staff()
    for _ in range(10):
        status, _, _ = await guesser.sign_in("operator2", "guess-guess")
        assert status == 401
    status, body, resp = await guesser.sign_in("operator2")  # even the right one, for now
    assert (status, body["error_id"]) == (429, "too-many-sign-in-attempts")
    assert resp.headers["Retry-After"] == "300"
    await redis.delete(*await redis.keys("etq:sign-in-failures:*"))


async def test_given_operator_events_stream_then_only_their_calls(staff, app_runner):
    anna = staff()
    await anna.sign_in("operator1")
    async with anna.http.get(app_runner.base_url + "/api/events?named=0") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert await resp.content.readline() == b": connected\n"
