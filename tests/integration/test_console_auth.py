"""Who may see and do what from the operator console: a wrong password and an expired session
get clear messages in the page (Debian's Chromium); an operator's session reaches only their
own calls, voice messages and console (403 otherwise), never the call list or customers'
cards."""

from __future__ import annotations

import aiohttp
import pytest

from ari_app.storage import Keyspace
from ari_app.voicemail.keys import voicemails_key
from ari_app.voicemail.service import Voicemail

from test_console import signed_in
from test_hold import connected_call

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration


class StaffClient:
    """A staff member's own HTTP client: signed in with a cookie, changes sent with the
    session's CSRF token, as the page does."""

    def __init__(self, base_url: str) -> None:
        self.base_url, self.csrf = base_url, ""
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          timeout=aiohttp.ClientTimeout(total=15))

    async def sign_in(self, user: str) -> "StaffClient":
        status, body = await self.call("POST", "/api/session",
                                       {"user": user, "password": "pw-" + user})
        assert status == 200, body
        self.csrf = body["csrf"]
        return self

    async def call(self, method: str, path: str, json=None) -> tuple[int, dict]:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf and method != "GET" else {}
        async with self.http.request(method, self.base_url + path, json=json,
                                     headers=headers) as resp:
            return resp.status, await resp.json()

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def staff(app_runner):
    clients: list[StaffClient] = []

    async def signed(user: str) -> StaffClient:
        client = StaffClient(app_runner.base_url)
        clients.append(client)
        return await client.sign_in(user)

    yield signed
    for client in clients:
        await client.close()


async def test_given_wrong_password_when_operator_signs_in_then_clear_message_and_no_console(
        app, app_runner, browser, page_shots):
    page = await page_shots.new_page(browser)
    await page.goto(app_runner.base_url + "/console")
    await page.fill("#signin-user", "operator1")
    await page.fill("#signin-password", "not-my-password")
    await page.click("#signin-button")
    await page.wait_for_function(
        "document.getElementById('signin-error').textContent.length > 0", timeout=5000)
    assert await page.inner_text("#signin-error") == ("Wrong user name or password. "
                                                      "Please try again.")
    assert await page.locator("#console").is_hidden()


async def test_given_signed_in_operator_when_session_expires_then_page_says_so_and_asks_to_sign_in(
        app, app_runner, redis, browser, page_shots):
    page = await signed_in(page_shots, browser, app_runner.base_url, "operator1")
    assert "operator1" in await page.inner_text("#who")
    for key in [k async for k in redis.scan_iter(KEYS.session("*"))]:
        await redis.delete(key)  # the session's end, as its idle time would bring it

    # the next request meets the end (the page may have noticed already: its own re-read)
    await page.evaluate("document.getElementById('pause').click()")
    await page.wait_for_function(
        "document.querySelector('#signin .why') && "
        "document.querySelector('#signin .why').textContent.includes('expired')",
        timeout=5000)
    assert await page.inner_text("#signin .why") == ("Your session has expired. "
                                                     "Please sign in again.")
    assert await page.locator("#console").is_hidden()
    # signing in again brings the console back
    await page.fill("#signin-user", "operator1")
    await page.fill("#signin-password", "pw-operator1")
    await page.click("#signin-button")
    await page.locator("#no-call").wait_for(state="visible", timeout=5000)


async def test_given_operator1s_call_when_operator2_acts_on_it_then_403_and_call_untouched(
        app, app_runner, parties, ari, staff):
    callers, phones, observer = parties
    ours, call_id = await connected_call(callers, ari)
    mine, other = await staff("operator1"), await staff("operator2")

    for method, path, body in (("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"}),
                               ("POST", f"/api/calls/{call_id}/transfer", {"target": "billing"}),
                               ("POST", f"/api/calls/{call_id}/escalate", None),
                               ("DELETE", f"/api/calls/{call_id}/hold", None)):
        status, answer = await other.call(method, path, body)
        assert (status, answer["error_id"]) == (403, "not-your-call"), (path, answer)
    # what is not theirs to read: the calls, the customers' cards, another console
    status, answer = await other.call("GET", "/api/calls")
    assert status == 403, answer
    status, answer = await other.call("GET", "/api/customers/+12125550123")
    assert status == 403, answer
    status, answer = await other.call("GET", "/api/console?operator=operator1")
    assert (status, answer["error_id"]) == (403, "not-your-console")
    status, answer = await other.call("GET", "/api/console")
    assert status == 200 and answer["calls"] == []

    # the call was not touched: still talking with operator1, who sees it and may hold it
    status, answer = await mine.call("GET", "/api/console")
    assert status == 200 and answer["calls"][0]["call_id"] == call_id
    assert answer["calls"][0]["shown_status"] == "talking"
    status, answer = await mine.call("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    assert status == 202, answer
    await callers.hang_up(ours)
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator leg gone")


async def test_given_voicemails_for_two_operators_when_each_reads_then_only_their_own(
        app, app_runner, staff):
    voicemails = app[voicemails_key]
    for_one = await voicemails.create(Voicemail("rec-1", "PJSIP/operator1", "+12125550100"))
    for_billing = await voicemails.create(Voicemail("rec-2", "billing", "+12125550101"))
    one, two = await staff("operator1"), await staff("operator2")

    status, answer = await one.call("GET", "/api/voicemails")
    assert status == 200 and [v["id"] for v in answer["voicemails"]] == [for_one.id]
    # operator2's phone is the directory's billing: its messages are theirs
    status, answer = await two.call("GET", "/api/voicemails?for=PJSIP/operator1")
    assert status == 200 and answer["voicemails"] == []
    status, answer = await two.call("GET", "/api/console")
    assert [v["id"] for v in answer["voicemails"]] == [for_billing.id]

    status, answer = await two.call("POST", f"/api/voicemails/{for_one.id}/heard")
    assert (status, answer["error_id"]) == (403, "not-your-voicemail")
    status, answer = await two.call("GET", f"/api/voicemails/{for_one.id}/audio")
    assert (status, answer["error_id"]) == (403, "not-your-voicemail")
    status, answer = await one.call("POST", f"/api/voicemails/{for_one.id}/heard")
    assert status == 200 and answer["heard"] is True
    status, answer = await one.call("DELETE", f"/api/voicemails/{for_one.id}")
    assert status == 403, answer  # deleting is for supervisors and the admin
