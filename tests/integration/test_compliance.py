"""The compliance report against a scripted day of real calls on the sandbox Asterisk (the
policy's times shrunk: a check-in every 2 s, the way out after 15 s): operator2 is on a break,
so every caller reaches operator1, and operator2's desk is the "billing" transfer target.

    call A: two holds (the second without a reason): a flagged call
    call B: a hold that reaches the way out; nobody chooses: a callback promised
    call C: an announced transfer the target accepts
    call D: an attended transfer to a busy target: failed, the caller brought back

The report's JSON and CSV figures are checked against that day."""

from __future__ import annotations

import csv
import io
import json
import time

import aiohttp
import pytest

from ari_app.ari import operations as ops
from ari_app.callback.keys import callback_calls_key
from ari_app.inbound.keys import inbound_key
from ari_app.storage import Keyspace

from conftest import API_TOKEN
from test_callback import CUSTOMER, PHONE, callback_policy
from test_hold import connected_call, wait_prompt
from test_transfer import continue_transfer, press, target_answers
from test_first_call import talk_bridge_with

pytestmark = pytest.mark.integration
KEYS = Keyspace()  # the app's own key names
OP1, OP2 = "PJSIP/operator1", "PJSIP/operator2"
# the way out after 15 s: a check-in comes between the hold's intro and it (after the
# intro of about 5 s plus the 2 s interval)
DAY_POLICY = "[operators]\nwrap_up = 0\n[hold]\nfallback_after = 15\n"


async def get(app_runner, query: str, token: str | None = API_TOKEN):
    """(status, content type, body text) of the report's route."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        async with session.get(app_runner.base_url + "/api/reports/compliance" + query,
                               headers=headers) as resp:
            return resp.status, resp.content_type, await resp.text()


async def call_ended(callers, ours: str, timeout: float = 40.0) -> None:
    await callers.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                           and e["channel"]["id"] == ours, timeout=timeout,
                           what=f"{ours} hung up")


async def hold_and_resume(app_runner, observer, ari, call_id: str, body: dict) -> None:
    """On hold, one check-in heard to its end, then back with the operator."""
    since = time.time()
    status, _ = await app_runner.api("POST", f"/api/calls/{call_id}/hold", body)
    assert status == 202
    await wait_prompt(observer, call_id, "checkin-1", "PlaybackStarted", after=since, timeout=20)
    status, _ = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
    assert status == 202
    await wait_prompt(observer, call_id, "hold-resume-thanks", after=since)
    await talk_bridge_with(ari, call_id, f"{call_id}~op1")


@pytest.mark.timeout(240)
@pytest.mark.policy(DAY_POLICY)
async def test_given_a_scripted_day_of_calls_when_reported_then_json_and_csv_figures_match(
        app, app_runner, parties, ari, redis):
    callers, phones, observer = parties
    status, _ = await app_runner.api("POST", "/api/operators/operator2/pause",
                                     {"reason": "break"})
    assert status == 200
    day = time.strftime("%Y-%m-%d", time.gmtime())

    # A: two holds in one call, the second without a reason
    ours, a = await connected_call(callers, ari)
    await hold_and_resume(app_runner, observer, ari, a, {"reason": "lookup"})
    await hold_and_resume(app_runner, observer, ari, a, {})
    await callers.hang_up(ours)
    await call_ended(callers, ours)

    # B: a hold that reaches the way out; no key: a callback to the caller's own number
    ours, b = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{b}/hold", {"reason": "lookup"})
    await wait_prompt(observer, b, "callback-confirmed", timeout=75)
    await call_ended(callers, ours)

    # C: an announced transfer to billing (operator2's desk), accepted there
    ours, c = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{c}/transfer", {"target": "billing"})
    await continue_transfer(ari, observer, ours, c)
    leg = await target_answers(phones, observer, c)
    await wait_prompt(observer, leg, "transfer-intro-to-target", "PlaybackStarted")
    await press(ari, phones.answered["operator2"], "1")
    await talk_bridge_with(ari, c, leg, timeout=20)
    await callers.hang_up(ours)
    await call_ended(callers, ours)

    # D: an attended transfer to a busy desk: failed, back with the operator
    phones.mode["operator2"] = "busy"
    ours, d = await connected_call(callers, ari)
    await app_runner.api("POST", f"/api/calls/{d}/transfer",
                         {"target": "billing", "mode": "attended"})
    await continue_transfer(ari, observer, ours, d)
    await wait_prompt(observer, d, "transfer-back-to-operator", timeout=40)
    await talk_bridge_with(ari, d, f"{d}~op1")
    await callers.hang_up(ours)
    await call_ended(callers, ours)
    await app[inbound_key].lanes.join()


    # what the callers noticed: the check-ins they heard, the callback they were promised
    check_ins = [e for e in observer.of_type("PlaybackStarted")
                 if e["playback"]["id"].split("~")[-1].startswith("checkin-")
                 and e["playback"]["target_uri"] in {f"channel:{x}" for x in (a, b, c, d)}]
    status, _, text = await get(app_runner, f"?day={day}")
    assert status == 200
    report = json.loads(text)
    assert report["day"] == day and [r["operator"] for r in report["operators"]] == [
        OP1, OP2]
    one, two = report["operators"]
    assert one["calls"] == 4
    holds = one["holds"]
    assert (holds["total"], holds["per_call"], holds["calls_with_more_than_one"],
            holds["without_reason"], holds["reached_way_out"]) == (3, 0.75, [a], 1, 1)
    assert len(holds["lengths"]) == 3 and all(n > 0 for n in holds["lengths"])
    assert holds["longest"] == max(holds["lengths"]) >= 15  # B waited for its way out
    assert one["check_ins"] == {"played": len(check_ins), "on_time": len(check_ins), "late": 0}
    assert len(check_ins) >= 3  # one in each of A's holds, at least one in B's
    assert one["transfers"] == {"total": 2, "announced": 1, "attended": 1, "connected": 1,
                                "failed": 1, "failed_brought_back": 1,
                                "failed_not_brought_back": 0}
    [promise] = one["callback_promises"]["promises"]
    status, record = await app_runner.api("GET", f"/api/callbacks/{promise['request']}")
    assert status == 200 and record["number"] == "+12125550123"
    assert (promise["call_id"], promise["outcome"], promise["window_end"]) == (
        b, "pending", record["window"]["latest"])
    assert (one["callback_promises"]["kept"], one["callback_promises"]["missed"],
            one["callback_promises"]["pending"]) == (0, 0, 1)
    assert (one["escalations"]["total"], one["warnings"]["total"],
            one["survey"]["answered"]) == (0, 0, 0)
    # 100 − 10 (A's second hold) − 5 (without a reason) − 10 (B reached the way out)
    assert one["score"] == 75 and one["score_formula"] == report["score_formula"]
    # operator2 took call C once it was transferred: a call, nothing to fault
    assert (two["calls"], two["holds"]["total"], two["transfers"]["total"], two["score"]) == (
        1, 0, 0, 100)

    # the same figures as CSV, a row per operator; one operator alone
    status, kind, text = await get(app_runner, f"?day={day}&format=csv")
    assert (status, kind) == (200, "text/csv")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert [row[0] for row in rows] == [OP1, OP2]
    cells = dict(zip(header, rows[0]))
    assert (cells["score"], cells["calls"], cells["holds"], cells["holds_per_call"],
            cells["calls_with_more_than_one_hold"], cells["holds_reached_way_out"],
            cells["check_ins_on_time"], cells["transfers_announced"],
            cells["transfers_attended"], cells["failed_transfers_brought_back"],
            cells["callback_promises_pending"]) == (
        "75", "4", "3", "0.75", "1", "1", str(len(check_ins)), "1", "1", "1", "1")
    status, _, text = await get(app_runner, f"?day={day}&operator=operator2")
    assert status == 200 and [r["operator"] for r in json.loads(text)["operators"]] == [OP2]


async def test_given_bad_query_when_report_asked_then_422_naming_the_field_and_no_token_401(
        app, app_runner):
    for query, name in (("?day=2026-13-01", "day"), ("?day=yesterday", "day"),
                        ("?format=xml", "format"), ("?operator=operator9", "operator")):
        status, kind, text = await get(app_runner, query)
        body = json.loads(text)
        assert (status, body["error_id"], body["field"]) == (422, "invalid-request", name), query
        assert name in body["message"]
    status, _, text = await get(app_runner, "", token=None)
    assert status == 401
    # a day long gone: every operator, nothing to judge
    status, _, text = await get(app_runner, "?day=2020-01-01&operator=PJSIP/operator1")
    [one] = json.loads(text)["operators"]
    assert (status, one["calls"], one["score"]) == (200, 0, None)


@pytest.mark.dialer
@pytest.mark.policy("[operators]\nwrap_up = 0\n")
async def test_given_a_promise_on_hold_when_the_dialer_reaches_the_customer_in_its_window_then_kept(
        app_runner, settings, parties, ari, redis):
    """The promise is in operator1's day; its outcome in the request's own timeline (the
    attempt's steps, operator2 calling back): joined by the request id."""
    callers, phones, observer = parties
    callback_policy(settings)  # open all week; the customer is a simulated phone
    app = await app_runner.start()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    ours, call_id = await callers.dial_local("100", number=CUSTOMER)
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=20)
    operator = json.loads(await redis.get(KEYS.call(call_id)))["operator"]
    await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
    # no key at the way out: a callback to the caller's own number, then goodbye
    await wait_prompt(observer, call_id, "callback-confirmed", timeout=40)
    await call_ended(callers, ours)

    # the dialer: the free operator's phone first, then the customer, who presses 1
    customer = await observer.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                                       and e["channel"]["id"].endswith("~cust")
                                       and e["channel"]["state"] == "Up", timeout=30,
                                       what="customer answered the callback")
    attempt = customer["channel"]["id"].split("~")[0]
    await observer.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                            and e["playback"]["target_uri"] == f"channel:{attempt}~cust",
                            what="the customer hears who calls")
    await ari.call(ops.SEND_DTMF, channelId=phones.answered[PHONE], dtmf="1")
    await talk_bridge_with(ari, f"{attempt}~op", f"{attempt}~cust", timeout=15)
    await ari.hangup(phones.answered[PHONE])
    await app[callback_calls_key].lanes.join()  # the attempt is over: the request done

    status, _, text = await get(app_runner, f"?day={day}&operator={operator}")
    assert status == 200
    [one] = json.loads(text)["operators"]
    promises = one["callback_promises"]
    assert (promises["total"], promises["kept"], promises["missed"], promises["pending"]) == (
        1, 1, 0, 0), promises
    [promise] = promises["promises"]
    assert promise["call_id"] == call_id and promise["outcome"] == "kept"
    assert promise["promised_at"] < promise["reached_at"] <= promise["window_end"]
    assert one["calls"] == 1 and one["holds"]["reached_way_out"] == 1
