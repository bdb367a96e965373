"""Call ownership against a real redis-server of its own (started per test on a free port, AOF
on so a restart keeps the data): first claim wins, a live lease is never taken, an expired one
is taken with a higher token, a stale owner's fenced write raises LeaseLost and writes nothing,
renewals keep leases alive and notice lost ones and survive Redis being stopped, release
leaves nothing behind, and every key of one call's scripts is in one Cluster slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from structlog.testing import capture_logs

from ari_app.calls.ownership import CallOwnership, LeaseLost
from ari_app.storage import Keyspace

KEYS = Keyspace()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


async def expired(ownership: CallOwnership, call_id: str) -> None:
    async def gone() -> bool:
        return await ownership.owner_of(call_id) is None
    await until(gone)


async def test_given_new_call_when_claimed_then_token_and_owner(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS)
    assert await a.claim("call-1") == 1
    assert a.owns("call-1") and a.token("call-1") == 1 and a.held() == {"call-1"}
    assert await a.owner_of("call-1") == "app-a"
    assert await redis.get("etq:{call-1}:owner") == b"app-a:1"
    assert 0 < await redis.pttl("etq:{call-1}:owner") <= 15000
    assert await redis.pttl("etq:{call-1}:fence") > 15000  # outlives the lease
    assert await a.may_take("call-1")


async def test_given_live_lease_when_other_claims_then_refused_and_may_not_take(redis):
    a, b = CallOwnership(redis, "app-a", keys=KEYS), CallOwnership(redis, "app-b", keys=KEYS)
    await a.claim("call-1")
    assert await b.claim("call-1") is None
    assert not b.owns("call-1") and b.token("call-1") is None
    assert not await b.may_take("call-1")
    assert await b.may_take("call-2")  # nobody holds it
    assert await a.owner_of("call-1") == "app-a"
    with pytest.raises(LeaseLost):
        await b.fenced_set("call-1", "etq:hold:{call-1}", "b's")
    assert await redis.get("etq:hold:{call-1}") is None


async def test_given_our_lease_when_claimed_again_then_new_token_fences_the_old_one(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS)
    await a.claim("call-1")
    # same id, after a restart: no wait for the ttl
    restarted = CallOwnership(redis, "app-a", keys=KEYS)
    assert await restarted.claim("call-1") == 2
    with pytest.raises(LeaseLost):
        await a.fenced_set("call-1", "etq:hold:{call-1}", "old process")
    await restarted.fenced_set("call-1", "etq:hold:{call-1}", "new process")
    assert await redis.get("etq:hold:{call-1}") == b"new process"


async def test_given_instance_id_prefix_of_another_when_claimed_then_not_mistaken(redis):
    a, longer = CallOwnership(redis, "app", keys=KEYS), CallOwnership(redis, "app:7", keys=KEYS)
    await longer.claim("call-1")  # lease "app:7:1": owner "app:7", not "app"
    assert await a.claim("call-1") is None
    assert await a.owner_of("call-1") == "app:7"


async def test_given_expired_lease_when_other_claims_then_higher_token_and_stale_write_fails(redis):
    lost: list[str] = []
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.3, on_lost=lost.append)
    b = CallOwnership(redis, "app-b", keys=KEYS, ttl=0.3)
    first = await a.claim("call-1")
    await a.fenced_set("call-1", "etq:hold:{call-1}", "a's snapshot")
    assert await b.claim("call-1") is None
    await expired(b, "call-1")

    second = await b.claim("call-1")
    assert second is not None and first is not None and second > first
    await b.fenced_set("call-1", "etq:hold:{call-1}", "b's snapshot")
    assert a.owns("call-1")  # a does not know yet
    with capture_logs() as logs, pytest.raises(LeaseLost) as raised:
        await a.fenced_set("call-1", "etq:hold:{call-1}", "stale snapshot", ex=60)
    assert raised.value.call_id == "call-1"
    assert await redis.get("etq:hold:{call-1}") == b"b's snapshot"
    assert await redis.ttl("etq:hold:{call-1}") == -1  # nothing of the stale write landed
    assert not a.owns("call-1") and lost == ["call-1"]
    assert any(e["event"] == "call lost to another instance" for e in logs)
    with pytest.raises(LeaseLost):
        await a.fenced_delete("call-1", "etq:hold:{call-1}")
    assert await redis.exists("etq:hold:{call-1}") == 1
    assert await b.owner_of("call-1") == "app-b"


async def test_given_fenced_write_when_lease_lost_then_fenced_delete_also_refused(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.3)
    b = CallOwnership(redis, "app-b", keys=KEYS, ttl=0.3)
    await a.claim("call-1")
    await a.fenced_set("call-1", "etq:hold:{call-1}", "a's")
    await expired(b, "call-1")
    await b.claim("call-1")
    with pytest.raises(LeaseLost):
        await a.fenced_delete("call-1", "etq:hold:{call-1}")
    assert await redis.get("etq:hold:{call-1}") == b"a's"
    assert await b.fenced_delete("call-1", "etq:hold:{call-1}", "etq:legs:{call-1}") == 1


async def test_given_expired_lease_nobody_claimed_when_renewed_then_ours_again(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.3)
    await a.claim("call-1")
    await expired(a, "call-1")  # e.g. Redis was away longer than the ttl
    assert await a.may_take("call-1")
    assert await a.renew_all() == set()  # the counter still at our token: nobody claimed
    assert await a.owner_of("call-1") == "app-a" and a.token("call-1") == 1
    await expired(a, "call-1")
    await a.fenced_set("call-1", "etq:hold:{call-1}", "after the outage")
    assert await redis.get("etq:{call-1}:owner") == b"app-a:1"


async def test_given_renewals_when_several_ttls_pass_then_lease_lives_and_lost_one_noticed(redis):
    lost: list[str] = []
    # a tick every 0.17 s
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.5, on_lost=lost.append)
    b = CallOwnership(redis, "app-b", keys=KEYS, ttl=0.5)
    await a.claim("call-1")
    await a.claim("call-2")
    renewing = asyncio.create_task(a.run())
    try:
        deadline = time.monotonic() + 4 * a.ttl
        while time.monotonic() < deadline:  # four ttls: b never gets in
            assert await b.claim("call-1") is None
            assert await a.owner_of("call-2") == "app-a"
            await asyncio.sleep(0.05)
        assert a.renewals >= 6 and a.failures == 0
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)

    await expired(b, "call-2")
    assert await b.claim("call-2") is not None
    with capture_logs() as logs:
        assert await a.renew_all() == {"call-2"}  # call-1 expired too, but nobody claimed it
    assert a.held() == {"call-1"} and lost == ["call-2"]
    assert [(e["event"], e["call_id"]) for e in logs if e["log_level"] == "warning"] == [
        ("call lost to another instance", "call-2")]
    assert await a.owner_of("call-1") == "app-a" and await a.owner_of("call-2") == "app-b"


async def test_given_call_over_when_released_then_nothing_left_in_redis(redis):
    a, b = CallOwnership(redis, "app-a", keys=KEYS), CallOwnership(redis, "app-b", keys=KEYS)
    await a.claim("call-1")
    await a.fenced_set("call-1", "etq:hold:{call-1}", "snapshot", ex=30)
    assert 0 < await redis.ttl("etq:hold:{call-1}") <= 30
    assert await b.release("call-1") is False  # not b's
    assert await a.owner_of("call-1") == "app-a"
    assert await a.fenced_delete("call-1", "etq:hold:{call-1}") == 1
    assert await a.release("call-1") is True
    assert not a.owns("call-1") and await a.owner_of("call-1") is None
    assert await redis.keys("*") == []
    assert await a.release("call-1") is False
    assert await b.claim("call-1") == 1  # a call id seen again starts over


async def test_given_lease_taken_when_released_then_other_lease_kept(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.3)
    b = CallOwnership(redis, "app-b", keys=KEYS, ttl=5)
    await a.claim("call-1")
    await expired(a, "call-1")
    await b.claim("call-1")
    assert await a.release("call-1") is False
    assert not a.owns("call-1")
    assert await b.owner_of("call-1") == "app-b"
    assert await redis.exists("etq:{call-1}:owner", "etq:{call-1}:fence") == 2


async def test_given_decoded_client_when_used_then_same_behaviour(server):
    client = Redis(port=server.port, decode_responses=True)
    try:
        a, b = CallOwnership(client, "app-a", keys=KEYS), CallOwnership(client, "app-b", keys=KEYS)
        assert await a.claim("call-1") == 1
        assert await a.owner_of("call-1") == "app-a" and not await b.may_take("call-1")
        assert await a.renew_all() == set()
        await a.fenced_set("call-1", "etq:hold:{call-1}", "x")
        assert await a.release("call-1")
        assert await client.keys("*") == ["etq:hold:{call-1}"]
    finally:
        await client.aclose()


@pytest.mark.timeout(30)
async def test_given_redis_stopped_when_running_then_warns_and_renewals_resume(server, redis):
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.9)  # a tick every 0.3 s
    b = CallOwnership(redis, "app-b", keys=KEYS, ttl=0.9)
    await a.claim("call-1")
    with capture_logs() as logs:
        renewing = asyncio.create_task(a.run())
        try:
            await until(lambda: _true(a.renewals >= 2))
            server.stop()
            failed = a.failures
            await until(lambda: _true(a.failures >= failed + 2), timeout=15)
            assert not renewing.done()
            server.start()  # same port, same data (AOF)
            renewed = a.renewals
            await until(lambda: _true(a.renewals >= renewed + 3), timeout=15)
            assert not renewing.done()
            assert a.owns("call-1") and await a.owner_of("call-1") == "app-a"
            assert await b.claim("call-1") is None
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
    warnings = [e for e in logs if e["event"] == "call lease renewal failed; retrying next tick"]
    assert warnings and all(e["log_level"] == "warning" for e in warnings)
    assert not any(e["log_level"] in ("error", "critical") for e in logs)


async def _true(value: bool) -> bool:
    return value


async def test_given_one_call_when_scripts_run_then_all_keys_in_one_slot(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS)
    for call_id in ("call-1", "1733139200.42", "cb-9f3a", "x{y}z"):
        keys = a._keys(call_id, f"etq:hold:{{{call_id}}}", f"etq:inbound:{{{call_id}}}")
        assert keys[:2] == [f"etq:{{{call_id}}}:owner", f"etq:{{{call_id}}}:fence"]
        assert len({key_slot(k.encode()) for k in keys}) == 1
    await a.claim("call-1")
    with pytest.raises(ValueError, match="hash tag"):
        await a.fenced_set("call-1", "etq:hold:call-1", "untagged: another slot")
    with pytest.raises(ValueError, match="hash tag"):
        await a.fenced_delete("call-1", "etq:hold:call-1")
    assert await redis.get("etq:hold:call-1") is None


async def test_given_stale_local_lease_when_claim_refused_then_dropped(redis):
    a = CallOwnership(redis, "app-a", keys=KEYS, ttl=0.3)
    b = CallOwnership(redis, "app-b", keys=KEYS, ttl=5)
    await a.claim("call-1")
    await expired(a, "call-1")
    await b.claim("call-1")
    assert a.owns("call-1")
    assert await a.claim("call-1") is None
    assert not a.owns("call-1") and not await a.may_take("call-1")


async def test_given_live_lease_of_another_when_taken_then_new_token_fences_it(redis):
    """The pool's takeover: the holder of the caller's shard takes the call whoever holds it;
    the old holder's writes land nowhere."""
    a, b = CallOwnership(redis, "app-a", keys=KEYS), CallOwnership(redis, "app-b", keys=KEYS)
    assert await a.claim("call-1") == 1
    assert await b.claim("call-1", take=True) == 2
    assert await b.owner_of("call-1") == "app-b"
    with pytest.raises(LeaseLost):
        await a.fenced_set("call-1", "etq:{call-1}:snapshot:hold", "a's")
    await b.fenced_set("call-1", "etq:{call-1}:snapshot:hold", "b's")
    assert await redis.get("etq:{call-1}:snapshot:hold") == b"b's"


async def test_given_our_own_lease_when_taken_then_token_kept(redis):
    """Taking a call already ours keeps its token: its writes in flight stay valid."""
    a = CallOwnership(redis, "app-a", keys=KEYS)
    assert await a.claim("call-1") == 1
    assert await a.claim("call-1", take=True) == 1
    await a.fenced_set("call-1", "etq:{call-1}:snapshot:hold", "still ours")


async def test_given_lease_abandoned_when_other_claims_then_taken_and_counter_kept(redis):
    a, b = CallOwnership(redis, "app-a", keys=KEYS), CallOwnership(redis, "app-b", keys=KEYS)
    await a.claim("shard-1")
    assert await a.abandon("shard-1")
    assert not a.owns("shard-1")
    assert await redis.exists("etq:{shard-1}:fence")  # known to have been held
    assert await b.claim("shard-1") == 2
    assert not await a.abandon("shard-1")  # not ours any more: nothing done
    assert await b.owner_of("shard-1") == "app-b"


async def test_given_a_call_dropped_without_redis_then_its_writes_are_refused_not_made_plainly(
        redis):
    """A process that stops hearing a call (its app name let go) keeps no lease of it, and a
    write of it still under way raises LeaseLost instead of landing unfenced."""
    a = CallOwnership(redis, "app-a", keys=KEYS)
    await a.claim("call-1")
    a.drop("call-1")
    assert not a.owns("call-1") and a.guards("call-1")
    with pytest.raises(LeaseLost):
        await a.fenced_set("call-1", "etq:{call-1}:snapshot:hold", "stale")
    assert not await redis.exists("etq:{call-1}:snapshot:hold")
    assert await a.renew_all() == set()  # nothing renewed: the lease runs out
