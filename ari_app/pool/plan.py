"""Which ARI app names (shards) this instance should hold: a pure decision, `now`-free.

A pool of instances shares one Asterisk. Every instance has a home shard (its `ari_app`),
which it claims new callers under (StasisBroadcast, first claim wins). A shard's lease
(calls/ownership.py, per app name) says who may open its events WebSocket: never two.

- Home: taken whenever its lease is free (or still ours from before a restart).
- Takeover: a shard whose lease expired while held (its fence counter is still there: the
  holder died or was cut off, it did not release it) is taken by the first survivor, which
  resumes its calls. A shard released cleanly (no fence counter) is nobody's orphan.
- Hand back: a shard held that is not our home is released once Asterisk has no channel left
  in it, so its own instance, restarted, gets it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = ["ShardView", "Take", "Release", "plan"]


@dataclass(frozen=True)
class ShardView:
    """What Redis and Asterisk say of one shard this round."""
    owner: str | None            # the instance holding the lease, None when it is free
    orphaned: bool = False       # its fence counter is there: held once, never released
    channels: int | None = None  # channels in it (asked only for foreign shards we hold)


@dataclass(frozen=True)
class Take:
    app: str
    takeover: bool  # its calls were someone else's: resume them


@dataclass(frozen=True)
class Release:
    app: str


def plan(me: str, home: str, held: Iterable[str], shards: dict[str, ShardView]
         ) -> list[Take | Release]:
    held = set(held)
    actions: list[Take | Release] = []
    for app, view in sorted(shards.items()):
        if app in held:
            if app != home and view.channels == 0:
                actions.append(Release(app))
            continue
        ours_before = view.owner == me  # our previous process's, or a lease we lost track of
        if app == home and (view.owner is None or ours_before):
            actions.append(Take(app, takeover=view.orphaned or ours_before))
        elif app != home and ((view.owner is None and view.orphaned) or ours_before):
            actions.append(Take(app, takeover=True))
    return actions
