"""The queue's shared FIFO against the sandbox's real Redis (the store alone, no call): order,
priority, positions, the kept place, and two takers at once never getting the same caller."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from ari_app.queue.store import CALLBACK, LIVE, QueueEntry, QueueStore
from ari_app.storage import Keyspace

KEYS = Keyspace()

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis) -> QueueStore:
    return QueueStore(redis, keys=KEYS)


async def test_given_callers_when_taken_then_first_come_first_served(store):
    for i, arrival in enumerate((100.0, 101.0, 102.0)):
        assert await store.enqueue("sales", QueueEntry(f"c{i}", arrival)) == i + 1

    taken = [await store.take_head("sales") for _ in range(4)]

    assert [e and e.id for e in taken] == ["c0", "c1", "c2", None]
    assert await store.length("sales") == 0


async def test_given_a_priority_when_enqueued_then_ahead_of_earlier_callers(store):
    await store.enqueue("sales", QueueEntry("early", 100.0))
    position = await store.enqueue("sales", QueueEntry("back", 200.0, CALLBACK, priority=1,
                                                       number="+12125550100"))

    assert position == 1
    assert [e.id for e in await store.waiting("sales")] == ["back", "early"]
    assert (await store.head("sales")).number == "+12125550100"


async def test_given_removals_when_positions_read_then_everyone_behind_moves_up(store):
    for i in range(5):
        await store.enqueue("sales", QueueEntry(f"c{i}", 100.0 + i))

    assert await store.remove("sales", "c1") is True
    assert await store.remove("sales", "c1") is False
    await store.take_head("sales")

    assert [await store.position("sales", f"c{i}") for i in range(5)] == [None, None, 1, 2, 3]


async def test_given_a_kept_place_when_taken_then_never_before_an_earlier_live_caller(store):
    await store.enqueue("sales", QueueEntry("first", 100.0))
    await store.enqueue("sales", QueueEntry("second", 110.0))
    await store.enqueue("sales", QueueEntry("third", 120.0))

    kept = await store.keep_place("sales", "second", "+12125550100")
    assert kept == QueueEntry("second", 110.0, CALLBACK, 0, "+12125550100")
    # a callback request kept at its own (later) arrival waits behind everyone earlier
    await store.enqueue("sales", QueueEntry("cb-late", 115.0, CALLBACK, number="+12125550101"))

    order = [(e.id, e.kind) for e in await store.waiting("sales")]
    assert order == [("first", LIVE), ("second", CALLBACK), ("cb-late", CALLBACK),
                     ("third", LIVE)]
    assert await store.keep_place("sales", "gone", "+12125550100") is None


async def test_given_an_entry_taken_and_not_connected_when_put_back_then_same_place(store):
    for i in range(3):
        await store.enqueue("sales", QueueEntry(f"c{i}", 100.0 + i))
    head = await store.take_head("sales")
    await store.enqueue("sales", QueueEntry("c3", 103.0))

    assert await store.enqueue("sales", head) == 1


async def test_given_two_queues_when_used_then_apart(store):
    await store.enqueue("sales", QueueEntry("a", 100.0))
    await store.enqueue("support", QueueEntry("b", 50.0))

    assert (await store.take_head("sales")).id == "a"
    assert await store.position("support", "b") == 1


async def test_given_two_instances_taking_at_once_then_never_the_same_caller(redis, settings):
    other = Redis.from_url(settings.redis_url)  # a second app instance: its own connection
    try:
        stores = [QueueStore(redis, keys=KEYS), QueueStore(other, keys=KEYS)]
        for i in range(40):
            await stores[0].enqueue("sales", QueueEntry(f"c{i:02}", 100.0 + i))

        async def operator(store: QueueStore) -> list[str]:
            taken = []
            while (entry := await store.take_head("sales")) is not None:
                taken.append(entry.id)
            return taken

        results = await asyncio.gather(*(operator(stores[i % 2]) for i in range(6)))
    finally:
        await other.aclose()

    every = [e for r in results for e in r]
    assert len(every) == 40 and len(set(every)) == 40
    assert all(r == sorted(r) for r in results)  # each took them in line order


async def test_given_callers_on_two_nodes_when_an_operator_asks_then_the_first_on_their_node(
        store):
    """Several Asterisk nodes share one line: an operator registered on node b is given the
    first caller on b (or a callback, dialed from any node); a's callers keep their places."""
    await store.enqueue("sales", QueueEntry("a1", 100.0, node="a"))
    await store.enqueue("sales", QueueEntry("a2", 101.0, node="a"))
    await store.enqueue("sales", QueueEntry("b1", 102.0, node="b"))
    await store.enqueue("sales", QueueEntry("cb", 103.0, CALLBACK, number="+12125550100"))
    assert (await store.head("sales")).id == "a1"
    assert (await store.head("sales", "a")).id == "a1"
    assert (await store.head("sales", "b")).id == "b1"
    await store.take("sales", "b1")
    assert (await store.head("sales", "b")).id == "cb"
    assert (await store.head("sales", "c")).id == "cb"
    await store.take("sales", "cb")
    assert await store.head("sales", "b") is None
    assert [e.id for e in await store.waiting("sales")] == ["a1", "a2"]
