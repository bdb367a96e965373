"""Which app names an instance of the pool holds: its own whenever free, a dead instance's
(held, never released) to take over, a foreign one handed back once empty."""

from __future__ import annotations

from ari_app.pool.plan import Release, ShardView, Take, plan

ME, HOME, OTHER = "host/etq-1", "etq-1", "etq-2"


def test_given_home_free_when_planned_then_taken_without_takeover():
    assert plan(ME, HOME, [], {HOME: ShardView(None), OTHER: ShardView("host/etq-2")}) == [
        Take(HOME, takeover=False)]


def test_given_home_held_by_another_when_planned_then_waits():
    assert plan(ME, HOME, [], {HOME: ShardView("host/etq-2", True)}) == []


def test_given_home_still_ours_from_before_a_restart_when_planned_then_taken_over():
    assert plan(ME, HOME, [], {HOME: ShardView(ME, True)}) == [Take(HOME, takeover=True)]


def test_given_home_orphaned_when_planned_then_its_calls_resumed():
    assert plan(ME, HOME, [], {HOME: ShardView(None, orphaned=True)}) == [
        Take(HOME, takeover=True)]


def test_given_other_shard_orphaned_when_planned_then_taken_over():
    views = {HOME: ShardView(ME), OTHER: ShardView(None, orphaned=True)}
    assert plan(ME, HOME, [HOME], views) == [Take(OTHER, takeover=True)]


def test_given_other_shard_released_cleanly_when_planned_then_left_to_its_instance():
    views = {HOME: ShardView(ME), OTHER: ShardView(None, orphaned=False)}
    assert plan(ME, HOME, [HOME], views) == []


def test_given_foreign_shard_held_when_calls_left_then_kept_and_when_empty_then_released():
    held = [HOME, OTHER]
    busy = {HOME: ShardView(ME), OTHER: ShardView(ME, True, channels=3)}
    assert plan(ME, HOME, held, busy) == []
    empty = {HOME: ShardView(ME), OTHER: ShardView(ME, True, channels=0)}
    assert plan(ME, HOME, held, empty) == [Release(OTHER)]


def test_given_home_empty_when_planned_then_never_released():
    assert plan(ME, HOME, [HOME], {HOME: ShardView(ME, True, channels=0)}) == []
