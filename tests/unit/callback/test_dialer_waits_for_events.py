"""The dialer starts no attempt while the app's events socket is down.

After an Asterisk restart the HTTP side answers before the app's events socket is back: an
operator rung then enters an app nobody listens to, Asterisk hangs the leg up, and no event ever
tells the attempt (the CI run of ec3a996 kept its operator, lock and snapshot). Until `ready()`
the request stays due, unlocked, with no operator kept; the round reports Asterisk away.
"""

import asyncio

import pytest

from ari_app.ari import AriUnavailable
from ari_app.callback.dialer import RING_MARGIN
from ari_app.callback.numbers import NumberRules
from ari_app.callback.service import CallbackRequest
from dialer_fakes import POLICY, DialerFakes, dialer

US = NumberRules(allowed_countries=("US",))


def fakes_and_dialer(connected: list[bool]):
    fakes = DialerFakes(CallbackRequest(number="+12125550100", source="web"), US)
    return fakes, dialer(fakes, ready=lambda: connected[0])


def test_given_events_not_connected_when_a_callback_is_due_then_nobody_rung_and_it_stays_due():
    fakes, calls = fakes_and_dialer([False])

    with pytest.raises(AriUnavailable, match="events are not connected"):
        asyncio.run(calls.dial_due())

    assert fakes.started == [] and fakes.reserved == []
    assert fakes.locks == {}  # due again at once, by this instance or another
    assert fakes.stored.status == "pending" and fakes.stored.attempts == 0


def test_given_events_back_when_the_next_round_runs_then_the_callback_is_dialled():
    connected = [False]
    fakes, calls = fakes_and_dialer(connected)
    with pytest.raises(AriUnavailable):
        asyncio.run(calls.dial_due())

    connected[0] = True

    assert asyncio.run(calls.dial_due()) == 1
    [(machine, _)] = fakes.started
    assert machine.operator == "PJSIP/op1" and fakes.stored.status == "dialing"
    # its legs are guarded: ring timeout and a margin, then lost if Asterisk said nothing
    assert machine.operator_ring_guard == POLICY.operators.ring_timeout + RING_MARGIN
    assert machine.customer_ring_guard == POLICY.callback.ring_timeout + RING_MARGIN
