"""The customer who answers a callback hears who calls and why, in words they recognise: the
wait they gave up, the person they could not reach, the complaint they left, or their request
from the web page."""

import asyncio

import pytest

from ari_app.callback.numbers import NumberRules
from ari_app.callback.service import CallbackRequest
from ari_app.prompts.catalog import load_catalog
from dialer_fakes import DialerFakes, dialer

US = NumberRules(allowed_countries=("US",))


@pytest.mark.parametrize("source, why", [
    ("web", "callback-about-request"),
    ("hold-fallback", "callback-about-wait"),
    ("queue", "callback-about-wait"),
    ("transfer-fallback", "callback-about-transfer"),
    ("supervisor", "callback-about-complaint"),
])
def test_given_a_request_from_where_it_was_made_when_dialled_then_the_customer_hears_why(
        source, why):
    fakes = DialerFakes(CallbackRequest(number="+12125550100", source=source), US)
    assert asyncio.run(dialer(fakes).dial_due()) == 1
    [(machine, _)] = fakes.started
    assert machine.reason_prompt == why
    assert load_catalog().text(why, "ru") and load_catalog().text(why, "en")
