"""A customer who presses 2 ("another time") in a callback is told when the next call comes, and
the promise moves there: "tomorrow at about this time" only when they may be called then;
otherwise the first moment they may, told as "in our working hours". Either way the request's
window is the new time, so the call then is not a promise missed (on the card, the dashboard
and the compliance report)."""

import asyncio

from ari_app.callback import machine as k
from ari_app.callback.dialer import ABOUT_THIS_TIME
from ari_app.callback.numbers import NumberRules
from ari_app.callback.service import CallbackRequest
from ari_app.policy import Policy
from dialer_fakes import AlwaysOpen, DialerFakes

US = NumberRules(allowed_countries=("US",))
NOW = 1_000_000.0  # Monday 1970-01-12, 13:46:40 UTC; 08:46 in New York
DAY = 86400
OPEN = "00:00-23:59"


def attempt(policy: Policy) -> tuple[DialerFakes, AlwaysOpen, k.CallbackCallMachine]:
    """One request due, its attempt started; the customer, New York's, reached."""
    fakes = DialerFakes(CallbackRequest(number="+12125550100", source="web"), US)
    calls = AlwaysOpen(fakes.redis, fakes.requests, fakes.operators, fakes.customers, policy,
                       clock=lambda: NOW, calls=fakes.calls)
    assert asyncio.run(calls.dial_due()) == 1
    [(machine, _)] = fakes.started
    return fakes, calls, machine


def rescheduled(fakes: DialerFakes, calls: AlwaysOpen, machine) -> CallbackRequest:
    asyncio.run(calls.finished(machine, k.Finish("rescheduled")))
    return fakes.stored


def test_given_the_customer_may_be_called_tomorrow_when_2_then_tomorrow_and_the_window_moves():
    policy = Policy(company="X", business_hours={d: OPEN for d in (
        "mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                    quiet_hours={"start": "23:00", "end": "06:00"})
    fakes, calls, machine = attempt(policy)
    assert machine.another_time_prompt == "callback-rescheduled"

    request = rescheduled(fakes, calls, machine)

    assert (request.status, request.next_attempt_at) == ("pending", NOW + DAY)
    assert (request.earliest_at, request.latest_at) == (
        NOW + DAY, NOW + DAY + 60 * policy.callback.window_minutes)


def test_given_tomorrow_closed_when_2_then_told_working_hours_and_called_the_day_after():
    week = {d: OPEN for d in ("mon", "wed", "thu", "fri")} | {"tue": "closed"}
    policy = Policy(company="X", business_hours=week,
                    quiet_hours={"start": "23:00", "end": "06:00"})
    fakes, calls, machine = attempt(policy)
    assert machine.another_time_prompt == "callback-rescheduled-later"

    # the customer presses 2: what they hear is the prompt the dialer chose
    machine.handle(k.OperatorAnswered(NOW + 2))
    machine.handle(k.CustomerAnswered(NOW + 5))
    machine.handle(k.PromptFinished(NOW + 10, "callback-intro", party=k.CUSTOMER))
    said = [a for a in machine.handle(k.DigitPressed(NOW + 11, k.CUSTOMER, "2"))
            if isinstance(a, k.Play)]
    assert said[0].prompt == "callback-rescheduled-later"

    request = rescheduled(fakes, calls, machine)
    wednesday = NOW + 2 * DAY - (13 * 3600 + 46 * 60 + 40)  # Wednesday 00:00 UTC
    assert request.next_attempt_at == request.earliest_at == wednesday
    assert request.latest_at == wednesday + 60 * policy.callback.window_minutes


def test_given_the_customers_night_tomorrow_at_this_time_when_2_then_about_this_time_within_the_hour():
    # quiet till 09:00 in New York: 14 minutes after "this time" tomorrow is still about it
    policy = Policy(company="X", business_hours={d: OPEN for d in (
        "mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    fakes, calls, machine = attempt(policy)
    assert machine.another_time_prompt == "callback-rescheduled"

    request = rescheduled(fakes, calls, machine)
    assert 0 < request.next_attempt_at - (NOW + DAY) < ABOUT_THIS_TIME
