"""The "call me back" page in a real browser (Debian's Chromium, driven by Playwright): the
customer submits the form and sees the promised window; a bad number gets a clear message
next to the field, and nothing is stored."""

from __future__ import annotations

import pytest

from test_callback import callback_policy
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

pytestmark = pytest.mark.integration


async def test_given_callback_page_when_customer_submits_then_promised_window_shown(
        app_runner, settings, redis, browser):
    callback_policy(settings)
    await app_runner.start()
    page = await browser.new_page(timezone_id="America/New_York", locale="en-US")
    await page.goto(app_runner.base_url + "/callback")
    assert "Example Corp" in await page.title()
    await page.fill("#name", "Ann Lee")
    await page.fill("#number", "+1 212 555 0100")
    await page.fill("#topic", "my invoice")
    await page.click("#send")
    promise = page.locator("#promise")
    await promise.wait_for(state="visible", timeout=10_000)
    text = await promise.inner_text()
    assert text.startswith("Thank you. We will call you at +12125550100 between "), text
    assert "(your time)" in text
    request_id = await promise.get_attribute("data-request-id")
    assert await redis.exists(KEYS.record("callback", request_id))
    assert await page.locator("#callback").is_hidden()
    await page.screenshot(path=str(settings.policy_file.parent / "callback-page.png"))


async def test_given_callback_page_when_number_is_bad_then_message_next_to_the_field(
        app_runner, settings, redis, browser):
    await app_runner.start()
    page = await browser.new_page()
    await page.goto(app_runner.base_url + "/callback")
    await page.fill("#number", "12345")
    await page.click("#send")
    error = page.locator("#number-error")
    await page.wait_for_function("document.getElementById('number-error').textContent.length > 0")
    assert "not" in (await error.inner_text()).lower()
    assert await page.locator("#promise").is_hidden()
    await page.fill("#number", "911")
    await page.click("#send")
    await page.wait_for_function(
        "document.getElementById('number-error').textContent.includes('emergency')")
    assert await redis.zcard(KEYS.record_index("callback")) == 0
