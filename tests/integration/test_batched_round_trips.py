"""Batched (storage/batch.py) against the sandbox's Redis: concurrent requests share round
trips, each gets its own replies and its own errors, a script Redis lost is loaded again,
and Redis away fails every waiting request with a storage error, never hangs."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from ari_app.sandbox.ports import free_port
from ari_app.storage import storage_away
from ari_app.storage.batch import Batched

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_given_200_concurrent_requests_when_sent_then_few_round_trips_each_its_replies(redis):
    batch = Batched(redis)

    replies = await asyncio.gather(*(batch.send(("INCRBY", f"t:{i}", i), ("GET", f"t:{i}"))
                                     for i in range(200)))

    assert replies == [[i, str(i).encode()] for i in range(200)]
    assert batch.round_trips <= 10  # 200 requests, 400 commands


async def test_given_a_lone_request_when_sent_then_one_round_trip_at_once(redis):
    batch = Batched(redis)

    assert await batch.send(("SET", "t:lone", "1"), ("GET", "t:lone")) == [True, b"1"]
    assert batch.round_trips == 1


async def test_given_one_wrong_command_when_sent_with_others_then_only_its_request_fails(redis):
    batch = Batched(redis)
    await redis.set("t:text", "not a number")

    results = await asyncio.gather(batch.send(("INCR", "t:a")), batch.send(("INCR", "t:text")),
                                   batch.send(("INCR", "t:b")), return_exceptions=True)

    assert results[0] == [1] and results[2] == [1]
    assert isinstance(results[1], ResponseError) and "not an integer" in str(results[1])
    assert batch.round_trips == 1


async def test_given_redis_lost_the_script_when_sent_then_loaded_again_and_run_once(redis):
    batch = Batched(redis)
    count = batch.script("return redis.call('incr', KEYS[1])")
    assert await batch.send(count.call(keys=["t:runs"])) == [1]

    await redis.script_flush()
    replies = await asyncio.gather(*(batch.send(count.call(keys=["t:runs"])) for _ in range(5)))

    assert sorted(r[0] for r in replies) == [2, 3, 4, 5, 6]
    assert int(await redis.get("t:runs")) == 6  # no script ran twice


async def test_given_redis_away_when_requests_wait_then_each_fails_with_a_storage_error():
    # no retries: redis-py's default backs off for seconds between refused connections
    away = Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5,
                 retry=Retry(NoBackoff(), 0))
    batch = Batched(away)
    try:
        results = await asyncio.wait_for(asyncio.gather(
            *(batch.send(("INCR", f"t:{i}")) for i in range(10)), return_exceptions=True), 10)
    finally:
        await away.aclose()

    assert all(isinstance(r, RedisConnectionError) and storage_away(r) for r in results)
    assert len({id(r) for r in results}) == 10  # each request its own error object
