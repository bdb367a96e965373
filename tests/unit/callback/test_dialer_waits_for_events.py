"""The dialer starts no attempt while the app's events socket is down.

After an Asterisk restart the HTTP side answers before the app's events socket is back: an
operator rung then enters an app nobody listens to, Asterisk hangs the leg up, and no event ever
tells the attempt (the CI run of ec3a996 kept its operator, lock and snapshot). Until `ready()`
the request stays due, unlocked, with no operator kept; the round reports Asterisk away.
"""

import asyncio
from types import SimpleNamespace

import pytest

from ari_app.ari import AriUnavailable
from ari_app.callback.dialer import RING_MARGIN, CallbackDialer
from ari_app.callback.numbers import NumberRules
from ari_app.callback.service import CallbackRequest
from ari_app.policy import Policy

POLICY = Policy(company="X")


class Fakes:
    """One request due now, a free operator, and a lock that is really taken and given back."""

    def __init__(self) -> None:
        self.stored = CallbackRequest(number="+12125550100", source="web")
        self.locks: dict[str, str] = {}
        self.reserved: list[str] = []
        self.started: list[object] = []
        self.requests = SimpleNamespace(
            rules=NumberRules(allowed_countries=("US",)), index_key="callbacks",
            keys=SimpleNamespace(callback_lock=lambda request_id: f"lock:{request_id}"),
            due=self._due, get=self._get, save=self._save)
        self.operators = SimpleNamespace(reserve_free=self._reserve)
        self.redis = SimpleNamespace(set=self._set, eval=self._eval)
        self.customers = SimpleNamespace(note=self._nothing)
        self.calls = SimpleNamespace(start=self._start)

    async def _due(self, now, limit):
        return [self.stored.id]

    async def _get(self, request_id):
        return self.stored

    async def _save(self, request):
        self.stored = request

    async def _set(self, key, value, nx=False, ex=None):
        if nx and key in self.locks:
            return False
        self.locks[key] = value
        return True

    async def _eval(self, script, numkeys, key, owner):  # the dialer's unlock
        if self.locks.get(key) == owner:
            del self.locks[key]
            return 1
        return 0

    async def _reserve(self, owner):
        self.reserved.append(owner)
        return "PJSIP/op1"

    async def _nothing(self, *args, **kwargs):
        return None

    async def _start(self, machine, started):
        self.started.append(machine)


class AlwaysOpen(CallbackDialer):
    async def _may_ring(self, request, now):
        return True


def dialer(fakes: Fakes, connected: list[bool]) -> CallbackDialer:
    return AlwaysOpen(fakes.redis, fakes.requests, fakes.operators, fakes.customers, POLICY,
                      clock=lambda: 1_000_000.0, calls=fakes.calls,
                      ready=lambda: connected[0])


def test_given_events_not_connected_when_a_callback_is_due_then_nobody_rung_and_it_stays_due():
    fakes, connected = Fakes(), [False]

    with pytest.raises(AriUnavailable, match="events are not connected"):
        asyncio.run(dialer(fakes, connected).dial_due())

    assert fakes.started == [] and fakes.reserved == []
    assert fakes.locks == {}  # due again at once, by this instance or another
    assert fakes.stored.status == "pending" and fakes.stored.attempts == 0


def test_given_events_back_when_the_next_round_runs_then_the_callback_is_dialled():
    fakes, connected = Fakes(), [False]
    calls = dialer(fakes, connected)
    with pytest.raises(AriUnavailable):
        asyncio.run(calls.dial_due())

    connected[0] = True

    assert asyncio.run(calls.dial_due()) == 1
    [machine] = fakes.started
    assert machine.operator == "PJSIP/op1" and fakes.stored.status == "dialing"
    # its legs are guarded: ring timeout and a margin, then lost if Asterisk said nothing
    assert machine.operator_ring_guard == POLICY.operators.ring_timeout + RING_MARGIN
    assert machine.customer_ring_guard == POLICY.callback.ring_timeout + RING_MARGIN
