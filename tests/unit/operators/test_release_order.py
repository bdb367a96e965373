"""Giving an operator back after a call, against a real redis-server of the test's own: their
wrap-up is on record before their reservation goes, so there is no moment in which they list
as free without it (a call offered then would skip their wrap-up; a CI run of test_warning
read the listing in that moment)."""

from __future__ import annotations

import pytest

from ari_app.calls.events import CallEvents, RuleEvents
from ari_app.operators.machine import CallEnded, LogIn
from ari_app.operators.service import (AFTER_CALL, UNUSED, OperatorPool, OperatorService,
                                       PoolSettings)
from ari_app.operators.store import OperatorStore
from ari_app.storage import Keyspace

KEYS = Keyspace()
OPERATOR = "PJSIP/op1"
NOW = 1_000_000.0


class WatchedPool(OperatorPool):
    """Notes who holds the operator's reservation when their call's end reaches the pool."""

    reserved_at_call_end: list[bytes | None]

    async def change(self, endpoint, event):
        if isinstance(event, CallEnded):
            self.reserved_at_call_end.append(await self.store.redis.get(KEYS.operator(endpoint)))
        return await super().change(endpoint, event)


@pytest.fixture
async def operators(redis):
    pool = WatchedPool(OperatorStore(redis, keys=KEYS, login_required=True),
                       PoolSettings(members=(OPERATOR,), wrap_up=30.0),
                       RuleEvents(CallEvents(clock=lambda: NOW), "operators", {}),
                       clock=lambda: NOW)
    pool.reserved_at_call_end = []
    await pool.change(OPERATOR, LogIn(NOW - 600))
    service = OperatorService(None, redis, [OPERATOR], keys=KEYS, pool=pool)
    await redis.set(KEYS.operator(OPERATOR), "call-1")  # reserved for call-1, as reserve_free does
    return service, pool


async def test_given_a_call_ended_when_operator_released_then_wrap_up_before_reservation_goes(
        operators, redis):
    service, pool = operators

    await service.release(OPERATOR, "call-1", after=AFTER_CALL)

    assert pool.reserved_at_call_end == [b"call-1"], "the wrap-up must start while still reserved"
    assert not await redis.exists(KEYS.operator(OPERATOR))
    [machine] = await pool.machines([OPERATOR])
    assert machine.call_ended_at == NOW
    assert await pool.in_line([OPERATOR]) == [], "in wrap-up: not offered a call"


async def test_given_another_call_holds_them_when_released_then_reservation_kept(
        operators, redis):
    """A late release (the reservation went to another call since) frees nobody."""
    service, _ = operators
    await redis.set(KEYS.operator(OPERATOR), "call-2")

    await service.release(OPERATOR, "call-1", after=UNUSED)

    assert await redis.get(KEYS.operator(OPERATOR)) == b"call-2"
