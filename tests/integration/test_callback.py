"""Callbacks against the real Redis and Asterisk: the web API's promise and its refusals, the
dialer ringing a free operator and then the customer (a simulated phone that answers and
presses 1), quiet hours, retries until the final failure, two dialers sharing the work, and
requests that outlive the app."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from ari_app.ari import operations as ops
from ari_app.callback.dialer import CallbackDialer
from ari_app.callback.keys import callback_calls_key, callbacks_key
from ari_app.callback.service import CallbackRequest, CallbackRequests
from ari_app.customers.service import HISTORY_KEPT, Customers
from ari_app.inbound.keys import inbound_key
from ari_app.operators.service import OperatorService
from ari_app.policy import load_policy

from conftest import API_TOKEN, _merge_toml
from harness import (DEAD_AIR_WINDOWS, AppProcess, assert_music, longest_silence,
                     record_heard_since, until)
from test_first_call import talk_bridge_with
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration
CUSTOMER = "+12125550100"          # New York
PHONE = CUSTOMER.lstrip("+")        # what the simulated phone is called when dialled
OPEN_ALL_WEEK = "".join(f'{day} = "00:00-23:59"\n' for day in
                        ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))


def quiet_hours_away_from_now(zone: str = "America/New_York", inside: bool = False) -> str:
    """Quiet hours that do (inside) or do not cover this moment in the customer's zone."""
    local = datetime.now(ZoneInfo(zone))
    start = local - timedelta(hours=1) if inside else local + timedelta(hours=6)
    end = start + timedelta(hours=3)
    return f'[quiet_hours]\nstart = "{start:%H:%M}"\nend = "{end:%H:%M}"\n'


SHRUNK_TIMES = "ring_timeout = 4\nanswer_timeout = 3\nretry_backoff = 1\nmax_attempts = 2\n"
SHIPPED_TIMES = "ring_timeout = 25\nanswer_timeout = 8\nretry_backoff = 300\nmax_attempts = 3\n"


def callback_policy(settings, *, inside_quiet: bool = False, extra: str = "",
                    times: str = SHRUNK_TIMES) -> None:
    """Rewrite the test policy before the app starts: open all week, quiet hours around now or
    away from it, customers dialled as simulated phones."""
    text = "[business_hours]\ntime_zone = \"UTC\"\n" + OPEN_ALL_WEEK
    text += quiet_hours_away_from_now(inside=inside_quiet)
    text += '[callback]\ndial = "Local/{number}@sandbox-phones"\n' + times + extra
    settings.policy_file.write_text(_merge_toml(settings.policy_file.read_text(), text))  # by key


async def page_session(base_url: str) -> tuple[aiohttp.ClientSession, str]:
    """A browser-like session: GET the page, keep its cookie, read its CSRF token."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1
    async with session.get(base_url + "/callback") as resp:
        html = await resp.text()
    token = html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return session, token


async def post_form(session, base_url: str, token: str | None, body: dict):
    headers = {"X-CSRF-Token": token} if token else {}
    async with session.post(base_url + "/api/callbacks", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def callback_put_through(observer, ari, phones, *, prefix: str = "",
                               timeout: float = 20) -> str:
    """A callback attempt as the people on it live it: the operator's phone answers first, the
    customer hears who calls and presses 1, and the two talk. The attempt's call id."""
    operator = await observer.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                                       and e["channel"]["id"].endswith("~op")
                                       and e["channel"]["id"].startswith(prefix)
                                       and e["channel"]["state"] == "Up", timeout=timeout,
                                       what="the operator answered the callback")
    call = operator["channel"]["id"].split("~")[0]
    await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                            and e["playback"]["target_uri"] == f"channel:{call}~cust",
                            timeout=20, what="the customer hears who calls")
    await ari.call(ops.SEND_DTMF, channelId=phones.answered[PHONE], dtmf="1")
    await talk_bridge_with(ari, f"{call}~op", f"{call}~cust", timeout=15)
    return call


async def callback_due(app_runner, settings):
    """The app started with the callback policy and a request due now: the app and the
    request's id."""
    callback_policy(settings)
    app = await app_runner.start()
    accepted = await app[callbacks_key].accept(CallbackRequest(
        number=CUSTOMER, source="web", name="Ann Lee", earliest_at=time.time() - 1))
    return app, accepted.request.id


async def callback_talking(app_runner, settings, parties, ari) -> tuple[str, str]:
    """The app started with the callback policy, a request due now, and its attempt put
    through: operator and customer talking. The request's id and the attempt's call id."""
    _, phones, observer = parties
    _, request_id = await callback_due(app_runner, settings)
    return request_id, await callback_put_through(observer, ari, phones, timeout=30)


def callback_request(redis, request_id: str, met):
    """For `until`: the request's stored record once `met(record)` holds, else None."""
    async def read() -> dict | None:
        record = json.loads(await redis.get(KEYS.record("callback", request_id)))
        return record if met(record) else None
    return read


def callback_done(redis, request_id: str):
    """For `until`: the request's record once it is closed as done, else None."""
    return callback_request(redis, request_id, lambda r: r["status"] == "done")


def callback_let_go(redis, request_id: str, call: str, operator: str = "PJSIP/operator1"):
    """For `until`: true once the attempt's last step is through (it saves the request as done
    first): the operator free, the request unlocked, the attempt's snapshot gone."""
    async def let_go() -> bool:
        return not any([await redis.exists(KEYS.operator(operator)),
                        await redis.exists(KEYS.callback_lock(request_id)),
                        await redis.exists(KEYS.snapshot("callback-call", call))])
    return let_go


async def test_given_web_form_when_posted_then_window_promised_merged_on_repeat_and_status_readable(
        app_runner, settings, redis):
    callback_policy(settings)
    await app_runner.start()
    session, token = await page_session(app_runner.base_url)
    try:
        status, body = await post_form(session, app_runner.base_url, None, {"number": CUSTOMER})
        assert (status, body["error_id"]) == (403, "csrf-token-missing-or-wrong")

        status, body = await post_form(session, app_runner.base_url, token, {
            "number": "+1 212 555 0100", "name": "Анна Ли", "topic": "my invoice"})
        assert status == 201, body
        window = body["window"]
        assert body["number"] == CUSTOMER and body["status"] == "pending"
        assert time.time() - 5 <= window["earliest"] < window["latest"]
        assert window["latest"] - window["earliest"] == 30 * 60
        assert window["time_zone"] == "America/New_York"
        stored = json.loads(await redis.get(KEYS.record("callback", body['id'])))
        assert (stored["name"], stored["topic"], stored["source"]) == ("Анна Ли", "my invoice", "web")

        # the same number again: merged into the open request, never dialled twice; the second
        # requester gets an id of their own (the first one's is the secret of their request)
        status, again = await post_form(session, app_runner.base_url, token,
                                        {"number": CUSTOMER, "topic": "also my contract (договор)"})
        assert (status, again["merged"]) == (200, True) and again["id"] != body["id"]
        assert await redis.zcard(KEYS.record_index("callback")) == 1
        merged = json.loads(await redis.get(KEYS.record("callback", body['id'])))
        # re-encoded by the merge's script, text in any script kept as sent
        assert (merged["name"], [h.get("topic") for h in merged["history"]]) == (
            "Анна Ли", ["my invoice", "also my contract (договор)"])

        async with session.get(f"{app_runner.base_url}/api/callbacks/{body['id']}") as resp:
            assert resp.status == 200 and (await resp.json())["window"] == window
        async with session.get(f"{app_runner.base_url}/api/callbacks/{again['id']}") as resp:
            followed = await resp.json()
            assert resp.status == 200 and followed["window"] == window
            assert followed["id"] == again["id"], "the request's own id is not shown"
        async with session.get(f"{app_runner.base_url}/api/callbacks/open:{CUSTOMER}") as resp:
            assert resp.status == 404, "only request ids are looked up"
        status, card = await app_runner.api("GET", f"/api/customers/{CUSTOMER}")
        assert (status, card["name"], card["callback_requests"]) == (200, "Анна Ли", 2)
        status, _ = await app_runner.api("GET", f"/api/customers/{CUSTOMER}", token=None)
        assert status == 401, "customers' cards are for operators only"
    finally:
        await session.close()


@pytest.mark.parametrize("number,field,error_id", [
    ("", "number", "invalid-request"),
    ("call me", "number", "invalid-number"),
    ("+1 212 555", "number", "invalid-number"),
    ("911", "number", "refused-number"),
    ("+1 900 555 0100", "number", "refused-number"),
    ("+881 6 1234 5678", "number", "refused-number"),   # satellite (Iridium)
    ("+882 34 5678 9012", "number", "refused-number"),
    ("+870 772 345 678", "number", "refused-number"),   # Inmarsat
    ("+252 61 234 5678", "number", "refused-number"),   # Somalia
    ("+675 7012 3456", "number", "refused-number"),     # Papua New Guinea
    ("+1 809 234 5678", "number", "refused-number"),    # one-ring scams: Dominican Republic
    ("+1 876 234 5678", "number", "refused-number"),    # Jamaica
    ("+44 20 7946 0958", "number", "refused-number"),   # not an allowed country
])
async def test_given_bad_number_when_posted_then_422_names_the_field_and_nothing_stored(
        app_runner, settings, redis, number, field, error_id):
    await app_runner.start()
    session, token = await page_session(app_runner.base_url)
    try:
        status, body = await post_form(session, app_runner.base_url, token, {"number": number})
        assert (status, body["field"], body["error_id"]) == (422, field, error_id), body
        assert body["message"]
        assert await redis.zcard(KEYS.record_index("callback")) == 0
    finally:
        await session.close()


@pytest.mark.dialer
@pytest.mark.parametrize("operators_busy", [False, True], ids=["operators-free", "operators-busy"])
async def test_given_stored_request_for_a_refused_number_when_dialer_runs_then_failed_never_dialled(
        app_runner, settings, redis, parties, operators_busy):
    """Defence in depth: a request stored without the check (before it existed, or by hand)
    is closed by the dialer before an operator is kept for it: nobody is rung, no operator is
    kept, and it does not wait for a free operator to be refused."""
    callers, phones, observer = parties
    callback_policy(settings)
    operators = [KEYS.operator("PJSIP/operator1"), KEYS.operator("PJSIP/operator2")]
    if operators_busy:  # both reserved by other calls: nobody is free for it
        for key in operators:
            await redis.set(key, "another-call")
    app = await app_runner.start()
    bad = CallbackRequest(number="+19005550100", source="web", earliest_at=time.time() - 1)
    bad.next_attempt_at = bad.earliest_at
    await app[callbacks_key].save(bad)  # written as a stored request, not through accept()
    stored = await until(callback_request(redis, bad.id, lambda r: r["status"] == "failed"),
                         10, "the request closed as failed")
    assert stored["status"] == "failed" and "premium-rate" in stored["outcome"], stored
    assert stored["attempts"] == 0 and await redis.zcard(KEYS.record_index("callback")) == 0
    # a fixed wait on purpose: another dialer round (one a second) must not dial it either;
    # there is no event for "nothing happened"
    await asyncio.sleep(1.5)
    created = [e["channel"]["id"] for e in observer.of_type("ChannelCreated")]
    assert not [c for c in created if c.startswith("cb-")], "nothing may be dialled"
    held = [await redis.get(key) for key in operators]
    assert held == ([b"another-call"] * 2 if operators_busy else [None, None]), held
    for key in operators:
        await redis.delete(key)


@pytest.mark.policy("[callback]\nrequests_per_ip_per_hour = 2\n")
async def test_given_rate_limit_when_exceeded_then_429_with_retry_after(app_runner, redis):
    await app_runner.start()
    session, token = await page_session(app_runner.base_url)
    try:
        for i in range(2):
            status, _ = await post_form(session, app_runner.base_url, token,
                                        {"number": f"+1212555010{i}"})
            assert status == 201
        async with session.post(app_runner.base_url + "/api/callbacks",
                                json={"number": "+12125550109"},
                                headers={"X-CSRF-Token": token}) as resp:
            assert resp.status == 429 and "Retry-After" in resp.headers
            assert (await resp.json())["error_id"] == "too-many-requests"
    finally:
        await session.close()


@pytest.mark.policy("[callback]\nrequests_per_ip_per_hour = 3\nrequests_per_number_per_day = 2\n")
async def test_given_limits_when_bad_input_and_repeats_come_then_each_counted_and_429_names_which(
        app_runner, redis):
    await app_runner.start()
    session, token = await page_session(app_runner.base_url)
    try:
        answers = []
        for number in ("911", "+12125550100", "+12125550101", "+12125550102"):
            status, body = await post_form(session, app_runner.base_url, token, {"number": number})
            answers.append((status, body.get("error_id"), body.get("message", "")))
    finally:
        await session.close()
    # a refused number counts for its sender as much as an accepted one
    assert [a[:2] for a in answers] == [(422, "refused-number"), (201, None), (201, None),
                                        (429, "too-many-requests")]
    assert "from here" in answers[-1][2]

    # the number's own limit (a server: its own per-address limit): the second one merges
    statuses = [(await app_runner.api("POST", "/api/callbacks", {"number": "+12125550103"}))
                for _ in range(3)]
    assert [s for s, _ in statuses] == [201, 200, 429]
    assert "for this number" in statuses[-1][1]["message"]
    assert await redis.zcard(KEYS.record_index("callback")) == 3  # 100, 101, 103

    # each counter ends with its window: its ttl is set by the count that creates it, by the
    # bad input's count and by the form's script alike
    counters = [key async for key in redis.scan_iter(match=KEYS.rate("*", "*"))]
    windows = {key: 86400 if b":number:" in key else 3600 for key in counters}
    ttls = {key: await redis.ttl(key) for key in counters}
    assert len(counters) == 6, counters  # this address, the server's, 100 to 103
    assert all(0 < ttls[key] <= windows[key] for key in counters), ttls


@pytest.mark.policy("[callback]\nrequests_per_number_per_day = 5\n")
async def test_given_20_requests_for_one_number_at_once_when_posted_then_one_callback_five_counted(
        app_runner, redis):
    """The rate counters, the merge and the creation are one script, and concurrent requests
    share round trips (storage/batch.py): 20 at once still make one callback, the number's
    limit lets exactly 5 in, and nothing of the 15 refused is stored."""
    await app_runner.start()

    answers = await asyncio.gather(*(app_runner.api("POST", "/api/callbacks", {
        "number": CUSTOMER, "name": "Ann Lee", "topic": f"try {i}"}) for i in range(20)))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 4 + [201] + [429] * 15
    created = next(body for status, body in answers if status == 201)
    assert all("for this number" in body["message"] for status, body in answers if status == 429)
    assert await redis.zrange(KEYS.record_index("callback"), 0, -1) == [created["id"].encode()]
    record = json.loads(await redis.get(KEYS.record("callback", created["id"])))
    assert len(record["history"]) == 5  # the first and the 4 merged into it
    for status, body in answers:
        if status == 200:
            follow_status, followed = await app_runner.api("GET", f"/api/callbacks/{body['id']}")
            assert (follow_status, followed["id"], followed["window"]) == (
                200, body["id"], created["window"])
    status, card = await app_runner.api("GET", f"/api/customers/{CUSTOMER}")
    assert (status, card["name"], card["callback_requests"]) == (200, "Ann Lee", 5)


@pytest.mark.dialer
async def test_given_due_request_when_dialer_runs_then_operator_first_customer_presses_1_and_connected(
        app_runner, settings, redis, parties, ari):
    callers, phones, observer = parties
    app, request_id = await callback_due(app_runner, settings)

    # agent-first: the operator's phone answers before the customer's rings
    operator = await observer.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                                       and e["channel"]["id"].endswith("~op")
                                       and e["channel"]["state"] == "Up", timeout=15,
                                       what="operator answered")
    call = operator["channel"]["id"].split("~")[0]
    customer = await observer.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                                       and e["channel"]["id"] == f"{call}~cust"
                                       and e["channel"]["state"] == "Up", timeout=15,
                                       what="customer answered")
    assert customer["_t"] > operator["_t"]
    intro = await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                    and e["playback"]["target_uri"] == f"channel:{call}~cust",
                                    what="the customer hears who calls")
    assert intro["playback"]["media_uri"] == "sound:etiquette/callback-intro"
    await ari.call(ops.SEND_DTMF, channelId=phones.answered[PHONE], dtmf="1")
    await talk_bridge_with(ari, f"{call}~op", f"{call}~cust", timeout=15)
    await ari.hangup(phones.answered[PHONE])  # the conversation ends
    done = await until(callback_done(redis, request_id), 10, "the callback closed as done")
    assert (done["status"], done["outcome"], done["attempts"]) == ("done", "connected", 1)
    assert not await redis.exists(KEYS.callback_open(CUSTOMER))
    await app[callback_calls_key].lanes.join()


@pytest.mark.dialer
async def test_given_customer_first_when_customer_presses_1_then_music_while_the_operator_rings(
        app_runner, settings, redis, parties, ari, spool):
    """Customer-first: after "Connecting you to an operator" the customer hears music, not
    silence, while the operator's phone rings (here 9 s), then talks with the operator."""
    callers, phones, observer = parties
    callback_policy(settings, extra='dialing = "customer-first"\n')
    settings.policy_file.write_text(_merge_toml(settings.policy_file.read_text(),
                                                "[operators]\nring_timeout = 15\n"))
    app = await app_runner.start()
    accepted = await app[callbacks_key].accept(CallbackRequest(
        number=CUSTOMER, source="web", name="Ann Lee", earliest_at=time.time() - 1))

    intro = await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                    and e["playback"]["target_uri"].endswith("~cust"),
                                    timeout=20, what="the customer hears who calls")
    assert intro["playback"]["media_uri"] == "sound:etiquette/callback-intro"
    leg = intro["playback"]["target_uri"].split(":", 1)[1]
    call = leg.split("~")[0]
    phones.answer_delay = 9.0  # the operator takes a while to pick up
    # heard from the introduction on: the key stops it, "connecting you", then the music
    recording = asyncio.Event()
    heard = asyncio.create_task(record_heard_since(observer, leg, 7, spool, spy="out",
                                                   recording=recording))
    await recording.wait()
    await ari.call(ops.SEND_DTMF, channelId=phones.answered[PHONE], dtmf="1")
    connecting = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished"
        and e["playback"]["target_uri"] == f"channel:{leg}"
        and e["playback"]["media_uri"] == "sound:etiquette/callback-connecting",
        timeout=15, what="told they are being connected")

    async def talking() -> bool:
        return any(b["id"] == f"{call}~talk" for b in await ari.bridges())
    assert not await talking()
    levels, started = await heard
    assert not await talking(), "the operator answered before the wait was heard"
    ended = int((connecting["_t"] - started) * 10)  # the window "connecting" ended in
    assert ended + 15 < len(levels), f"too little heard after the prompt: {levels}"
    assert_music(levels[ended + 5:], "the customer while the operator's phone rings")
    # no dead air from the key on: prompt -> prompt -> music (the snoop's first 0.5 s aside)
    silent = longest_silence(levels[5:])
    assert silent <= DEAD_AIR_WINDOWS, f"{silent * 100} ms of dead air: {levels}"

    await talk_bridge_with(ari, f"{call}~op", leg, timeout=15)
    await ari.hangup(phones.answered[PHONE])  # the conversation ends
    done = await until(callback_done(redis, accepted.request.id), 10,
                       "the callback closed as done")
    assert (done["status"], done["outcome"]) == ("done", "connected"), done
    await app[callback_calls_key].lanes.join()


@pytest.mark.dialer
async def test_given_quiet_hours_in_customer_zone_when_due_then_not_dialled_and_moved_to_their_end(
        app_runner, settings, redis, ari):
    callback_policy(settings, inside_quiet=True)
    app = await app_runner.start()
    accepted = await app[callbacks_key].accept(CallbackRequest(
        number=CUSTOMER, source="web", earliest_at=time.time() - 1))
    request = await until(  # the dialer's round looks at it and leaves it waiting
        callback_request(redis, accepted.request.id,
                         lambda r: any(h["event"] == "waiting" for h in r["history"])),
        5, "the request left waiting")
    assert request["history"][-1]["why"] == "quiet or closed hours"
    assert request["attempts"] == 0 and request["status"] == "pending"
    assert request["next_attempt_at"] > time.time() + 3600, "waits for the end of quiet hours"
    local = datetime.fromtimestamp(request["next_attempt_at"], ZoneInfo("America/New_York"))
    policy = load_policy(settings.policy_file, test_time_ranges=True)
    assert local.time() >= policy.quiet_hours.end or local.time() < policy.quiet_hours.start
    assert not [c for c in await ari.channels() if c["id"].startswith("cb-")]


@pytest.mark.dialer
async def test_given_customer_busy_when_every_attempt_fails_then_retried_then_closed_as_failed(
        app_runner, settings, redis, parties):
    callers, phones, observer = parties
    phones.mode[PHONE] = "busy"
    callback_policy(settings)
    app = await app_runner.start()
    accepted = await app[callbacks_key].accept(CallbackRequest(
        number=CUSTOMER, source="web", earliest_at=time.time() - 1))
    request = await until(
        callback_request(redis, accepted.request.id, lambda r: r["status"] == "failed"),
        30, "the request closed as failed")
    assert request["status"] == "failed" and request["attempts"] == 2
    assert request["outcome"].startswith("busy after 2 attempts"), request["outcome"]
    attempts = [h for h in request["history"] if h["event"] == "attempt ended"]
    assert [a["outcome"] for a in attempts] == ["busy", "busy"]
    await app[callback_calls_key].lanes.join()


async def first_attempt(app_runner, settings, parties) -> tuple[object, str, dict, dict]:
    """At the shipped times: a request due now, its attempt's operator answered and the
    customer's phone dialled. The app, the request's id, the attempt's call id, and the first
    event of the customer's leg (when it was dialled)."""
    callers, phones, observer = parties
    callback_policy(settings, times=SHIPPED_TIMES)
    app = await app_runner.start()
    accepted = await app[callbacks_key].accept(CallbackRequest(
        number=CUSTOMER, source="web", earliest_at=time.time() - 1))
    operator = await observer.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                                       and e["channel"]["id"].endswith("~op")
                                       and e["channel"]["state"] == "Up", timeout=15,
                                       what="operator answered")
    call = operator["channel"]["id"].split("~")[0]
    rung = await observer.wait_for(lambda e: e.get("channel", {}).get("id") == f"{call}~cust",
                                   timeout=15, what="the customer's phone dialled")
    return app, accepted.request.id, call, rung


async def attempt_ended(redis, request_id: str) -> tuple[dict, dict]:
    """The request once its first attempt ended, and that attempt's history entry."""
    request = await until(callback_request(
        redis, request_id, lambda r: r["status"] == "pending"
        and any(h["event"] == "attempt ended" for h in r["history"])),
        60, "the first attempt ended")
    return request, next(h for h in request["history"] if h["event"] == "attempt ended")


@pytest.mark.dialer
async def test_given_shipped_times_when_the_customer_never_answers_then_25_s_of_ringing_and_again_5_minutes_later(
        app_runner, settings, redis, parties):
    """The shipped times as they are: the customer's phone rings 25 s (ring_timeout), the
    attempt ends as not answered, and the next is due retry_backoff (300 s) later, one of
    three (max_attempts)."""
    callers, phones, observer = parties
    phones.mode[PHONE] = "ignore"
    app, request_id, call, rung = await first_attempt(app_runner, settings, parties)
    gone = await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                                   and e["channel"]["id"] == f"{call}~cust", timeout=40,
                                   what="the customer's phone stopped ringing")
    assert 24.5 < gone["_t"] - rung["_t"] < 27.5, gone["_t"] - rung["_t"]
    request, ended = await attempt_ended(redis, request_id)
    assert ended["outcome"] == "no-answer", ended
    assert (request["status"], request["attempts"]) == ("pending", 1)
    assert 299.0 < request["next_attempt_at"] - ended["t"] < 301.0, request
    await app[callback_calls_key].lanes.join()


@pytest.mark.dialer
async def test_given_shipped_times_when_the_customer_answers_and_presses_no_key_then_menu_again_at_4_s_and_not_reached_5_s_later(
        app_runner, settings, redis, parties):
    """The shipped times as they are: no key after the introduction, the menu is said once
    more 4 s after it ended, then 5 s (answer_timeout is 8, but silence never lasts more than
    5 s) and the attempt ends as not reached (a machine?): again 300 s later."""
    callers, phones, observer = parties
    app, request_id, call, rung = await first_attempt(app_runner, settings, parties)
    intro = await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                    and e["playback"]["target_uri"] == f"channel:{call}~cust",
                                    timeout=30, what="the introduction said")
    again = await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                    and e["_t"] > intro["_t"]
                                    and e["playback"]["target_uri"] == f"channel:{call}~cust",
                                    timeout=10, what="the menu again")
    assert 3.5 < again["_t"] - intro["_t"] < 4.8, again["_t"] - intro["_t"]
    assert again["playback"]["media_uri"] == "sound:etiquette/callback-menu"
    again_end = await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                        and e["playback"]["id"] == again["playback"]["id"],
                                        timeout=15, what="the menu's end")
    request, ended = await attempt_ended(redis, request_id)
    assert ended["outcome"] == "not-reached", ended
    assert 4.5 < ended["t"] - again_end["_t"] < 6.0, ended["t"] - again_end["_t"]
    assert 299.0 < request["next_attempt_at"] - ended["t"] < 301.0, request
    await app[callback_calls_key].lanes.join()


@pytest.mark.timeout(240)
async def test_given_two_dialers_when_they_run_together_then_no_request_is_dialled_twice(
        settings, redis, parties, ari, tmp_path):
    """Two real app processes (`ari-etiquette run`, each its own Stasis app and HTTP port, both
    dialling) share one Redis and the real Asterisk: 30 due requests, each dialled exactly
    once. The customers' phones are busy and one attempt is allowed, so a request dialled
    twice would show as a second customer leg, or as attempts == 2."""
    callers, phones, observer = parties
    numbers = [f"+1212555{i:04d}" for i in range(30)]
    for number in numbers:
        phones.mode[number.lstrip("+")] = "busy"
    callback_policy(settings, extra='dialing = "customer-first"\n')
    desks = ", ".join(f'"Local/desk{i}@sandbox-phones"' for i in range(30))  # one per request
    settings.policy_file.write_text(_merge_toml(settings.policy_file.read_text(), (
        f"[callback]\nmax_attempts = 1\n[operators]\nendpoints = [{desks}]\n")))
    requests = CallbackRequests(redis, load_policy(settings.policy_file, test_time_ranges=True),
                                keys=KEYS)
    ids = [(await requests.accept(CallbackRequest(number=number, source="web",
                                                  earliest_at=time.time() - 1))).request.id
           for number in numbers]

    dialers = [AppProcess(settings, tmp_path, f"etiquette-dialer-{i}", API_TOKEN,
                          ETIQUETTE_CALLBACK_DIALER="true") for i in range(2)]
    try:
        await asyncio.gather(*(d.start() for d in dialers))
        deadline = time.monotonic() + 120
        while True:  # polling Redis until every request is closed, or the deadline
            stored = [json.loads(await redis.get(KEYS.record("callback", i))) for i in ids]
            if all(r["status"] == "failed" for r in stored) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await _no_channels_left(ari, 15)
    finally:
        codes = await asyncio.gather(*(d.stop() for d in dialers))
    assert [r["status"] for r in stored] == ["failed"] * 30, [r["status"] for r in stored]
    assert [r["attempts"] for r in stored] == [1] * 30, "each request dialled exactly once"
    assert all(r["outcome"].startswith("busy") for r in stored), [r["outcome"] for r in stored]
    legs = [e["channel"]["id"] for e in observer.of_type("ChannelCreated")
            if e["channel"]["id"].endswith("~cust")]
    assert len(legs) == 30 and {leg.split("~")[0][3:-1] for leg in legs} == {
        i[:16] for i in ids}, legs  # cb-<id[:16]><attempt>~cust: one leg per request
    assert codes == [0, 0], codes
    for dialer in dialers:
        assert dialer.error_lines() == [], (dialer.name, dialer.error_lines())
    assert not await ari.channels() and not await ari.bridges()
    assert not [k async for k in redis.scan_iter(KEYS.operator("*"))], "an operator kept"
    assert not [k async for k in redis.scan_iter(KEYS.callback_lock("*"))], "a request kept locked"
    await redis.flushdb()


async def _no_channels_left(ari, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await ari.channels() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # polling Asterisk until the deadline


async def test_given_pending_requests_when_app_restarts_then_every_one_is_kept(
        app_runner, settings, redis):
    callback_policy(settings)
    app = await app_runner.start()
    ids = [(await app[callbacks_key].accept(CallbackRequest(number=f"+1212555{i:04d}",
                                                            source="web"))).request.id
           for i in range(5)]
    await app_runner.stop()
    app = await app_runner.start()
    for request_id in ids:
        status, body = await app_runner.api("GET", f"/api/callbacks/{request_id}")
        assert (status, body["status"]) == (200, "pending")
    assert await redis.zcard(KEYS.record_index("callback")) == 5


async def test_given_customer_calls_in_twice_when_operator_opens_the_card_then_both_calls_and_requests_shown(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    for _ in range(2):
        ours, call_id = await callers.dial_local("100", number=CUSTOMER, name="Ann Lee")
        await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
        await callers.hang_up(ours)
        await observer.wait_for(lambda e, c=call_id: e.get("type") == "ChannelDestroyed"
                                and e["channel"]["id"] == f"{c}~op1", what="call over")
    await app[inbound_key].lanes.join()
    status, card = await app_runner.api("GET", f"/api/customers/{CUSTOMER.lstrip('+')}")
    assert status == 200 and card["name"] == "Ann Lee"
    assert [e["event"] for e in card["history"]] == ["called in", "called in"]


async def test_given_window_already_past_when_dialled_then_promise_missed_is_on_the_record(
        settings, redis):
    callback_policy(settings)
    policy = load_policy(settings.policy_file, test_time_ranges=True)
    customers = Customers(redis, keys=KEYS)
    requests = CallbackRequests(redis, policy, keys=KEYS, customers=customers)
    now = time.time()
    late = (await requests.accept(CallbackRequest(number=CUSTOMER, source="web",
                                                  earliest_at=now - 1800,
                                                  latest_at=now - 600))).request

    class CountingCalls:
        async def start(self, machine, event) -> None:
            pass

    dialer = CallbackDialer(redis, requests,
                            OperatorService(None, redis, ["Local/op@x"], keys=KEYS),
                            customers, policy, calls=CountingCalls())
    assert await dialer.dial_due() == 1
    stored = await requests.get(late.id)
    missed = [h for h in stored.history if h["event"] == "promise missed"]
    assert len(missed) == 1 and missed[0]["late_by"] >= 600
    card = await customers.card(CUSTOMER)
    assert "callback promise missed" in [e["event"] for e in card["history"]]
    await redis.flushdb()


async def test_given_a_card_noted_past_its_cap_then_first_contact_kept_name_the_latest_and_the_last_entries_only(
        redis):
    """The card's first contact is its first entry's time and stays; the name is the last one
    given; the history keeps its last HISTORY_KEPT entries (trimmed only once over the cap);
    a card whose hash was cleared, not its history, shows its first kept entry's time."""
    customers = Customers(redis, keys=KEYS)
    await customers.note(CUSTOMER, "called in")
    first = await customers.card(CUSTOMER)
    await asyncio.gather(*(customers.note(CUSTOMER, "callback requested", name=f"Ann {i}",
                                          request=str(i)) for i in range(HISTORY_KEPT + 4)))
    card = await customers.card(CUSTOMER)
    assert first["first_seen"] == card["first_seen"] and first["name"] == ""
    assert card["name"] == f"Ann {HISTORY_KEPT + 3}"
    kept = await redis.lrange(KEYS.customer_history(CUSTOMER), 0, -1)
    assert [json.loads(e)["request"] for e in kept] == [
        str(i) for i in range(4, HISTORY_KEPT + 4)]
    await redis.delete(KEYS.customer(CUSTOMER))  # the card's hash cleared, not its history
    await customers.note(CUSTOMER, "called in", name="Ann Lee")
    again = await customers.card(CUSTOMER)
    assert (again["name"], again["first_seen"]) == ("Ann Lee", json.loads(kept[1])["t"])
    await redis.flushdb()
