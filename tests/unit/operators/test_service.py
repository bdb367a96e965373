"""Reserving an operator, against a real redis-server of the test's own. Local endpoints: only
our own reservation says whether they are busy, so no Asterisk is needed here."""

from __future__ import annotations

from ari_app.operators.service import OperatorService
from ari_app.storage import Keyspace

KEYS = Keyspace()
FIRST, SECOND = "Local/201@operators", "Local/202@operators"


async def test_given_a_call_reserved_an_operator_when_it_asks_again_then_the_same_one(redis):
    """A call's step tried again after storage failed part way asks again: it gets the operator
    its first try reserved, not a second one beside it (the first would stay reserved for
    hours by a call that moved on)."""
    service = OperatorService(None, redis, [FIRST, SECOND], keys=KEYS, reservation_ttl=600)
    assert await service.reserve_free("call-1") == FIRST
    assert await service.reserve_free("call-1") == FIRST
    assert await redis.get(KEYS.operator(FIRST)) == b"call-1"
    assert 0 < await redis.ttl(KEYS.operator(FIRST)) <= 600
    assert not await redis.exists(KEYS.operator(SECOND))


async def test_given_another_call_holds_an_operator_when_reserving_then_the_next_free_one(redis):
    service = OperatorService(None, redis, [FIRST, SECOND], keys=KEYS)
    assert await service.reserve_free("call-1") == FIRST
    assert await service.reserve_free("call-2") == SECOND
    assert await service.reserve_free("call-3") is None
    assert await redis.get(KEYS.operator(FIRST)) == b"call-1"
