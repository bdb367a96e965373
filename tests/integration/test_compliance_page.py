"""The compliance report's page in a real browser (Debian's Chromium, driven by Playwright): a
supervisor signs in and sees, for a day with a real call put on hold twice, the table per
operator (the call flagged), the chart of scores and holds per call, the formula, and a CSV
link that answers; an operator signing in is told the page is not for them (and the API
answers them 403)."""

from __future__ import annotations

import time

import pytest

from test_compliance import DAY_POLICY, hold_and_resume
from test_hold import connected_call

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
OP1 = "PJSIP/operator1"


async def sign_in(page, user: str) -> None:
    await page.locator("#signin-user").wait_for(timeout=10_000)
    await page.fill("#signin-user", user)
    await page.fill("#signin-password", "pw-" + user)
    await page.click("#signin-button")


@pytest.mark.policy(DAY_POLICY)
async def test_given_a_day_with_a_call_held_twice_when_supervisor_signs_in_then_table_chart_and_formula(
        app, app_runner, parties, ari, browser, page_shots):
    callers, phones, observer = parties
    status, _ = await app_runner.api("POST", "/api/operators/operator2/pause",
                                     {"reason": "break"})
    assert status == 200
    ours, call_id = await connected_call(callers, ari)
    await hold_and_resume(app_runner, observer, ari, call_id, {"reason": "lookup"})
    await hold_and_resume(app_runner, observer, ari, call_id, {})
    await callers.hang_up(ours)
    day = time.strftime("%Y-%m-%d", time.gmtime())

    page = await page_shots.new_page(browser)
    await page.goto(app_runner.base_url + "/reports")
    assert await page.title() == "Compliance report"
    assert await page.locator("#report").is_hidden()  # nothing before signing in
    await sign_in(page, "supervisor1")

    row = page.locator('#table tbody tr[data-operator="PJSIP/operator1"]')
    await row.wait_for(timeout=10_000)
    assert await page.locator("#day").input_value() == day
    assert await page.locator("#who").inner_text() == "Signed in as supervisor1"
    cells = await row.locator("td").all_inner_texts()
    # operator, score, calls, holds, holds per call, calls with more than one hold, without
    # a reason: 100 − 10 (the second hold) − 5 (without a reason)
    assert cells[:7] == [OP1, "85", "1", "2", "2", "1", "1"], cells
    assert await row.get_attribute("class") == "flagged"
    assert await page.locator('#table tbody tr[data-operator="PJSIP/operator2"]').count() == 1

    # the chart: drawn by the page itself, a score bar and a holds-per-call bar per operator
    score = page.locator('#chart rect[data-operator="PJSIP/operator1"][data-kind="score"]')
    holds = page.locator(
        '#chart rect[data-operator="PJSIP/operator1"][data-kind="holds-per-call"]')
    assert (await score.get_attribute("data-value"), await holds.get_attribute("data-value")) \
        == ("85", "2")
    assert float(await score.get_attribute("height")) > 0
    assert await page.locator("#chart rect").count() == 4
    formula = await page.locator("#formula").inner_text()
    assert formula.startswith("score = 100 − 10 × holds beyond the policy's per-call limit"), formula

    # the CSV link, with the session's cookie, as the supervisor downloads it
    href = await page.locator("#csv").get_attribute("href")
    assert href == f"/api/reports/compliance?day={day}&format=csv"
    answer = await page.context.request.get(app_runner.base_url + href)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
    lines = (await answer.text()).splitlines()
    assert lines[0].startswith("operator,day,score,calls,holds,")
    assert lines[1].startswith(f"{OP1},{day},85,1,2,2.0,1,1,")

    # another day: the page asks again; nothing that day, no score
    await page.fill("#day", "2020-01-01")
    await page.locator("#day").dispatch_event("change")
    await page.wait_for_function(
        "document.getElementById('report').dataset.day === '2020-01-01'")
    cells = await row.locator("td").all_inner_texts()
    assert cells[:4] == [OP1, "–", "0", "0"], cells


async def test_given_an_operator_when_signing_in_on_the_report_page_then_told_it_is_for_supervisors(
        app, app_runner, browser, page_shots):
    page = await page_shots.new_page(browser)
    await page.goto(app_runner.base_url + "/reports")
    await sign_in(page, "operator1")
    await page.wait_for_function(
        "document.querySelector('#signin .why').textContent.includes('supervisor')")
    assert await page.locator("#report").is_hidden()
    # nor is the API: with the operator's own session, 403
    answer = await page.context.request.get(app_runner.base_url + "/api/reports/compliance")
    assert answer.status == 403 and (await answer.json())["error_id"] == "forbidden"
