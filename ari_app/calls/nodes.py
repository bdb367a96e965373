"""One process serving several Asterisk nodes (settings `nodes`): each node has its own call
control (its ARI connection, events and lanes); these put them behind the one face the API
and /healthz read, so neither knows how many nodes there are.

A request for a call goes to the node the caller is on (the call's snapshot names it): an
action on a channel must reach the Asterisk that has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["NodeCalls", "NodeEvents"]


class _Snapshots(Protocol):
    async def peek(self, call_ids: list[str]) -> list[Any]: ...


class _Lanes:
    """Every node's lanes counted as one (/healthz)."""

    def __init__(self, controls: list[Any]) -> None:
        self._controls = controls

    def __len__(self) -> int:
        return sum(len(c.lanes) for c in self._controls)

    @property
    def stalled_count(self) -> int:
        return sum(c.lanes.stalled_count for c in self._controls)

    def stalled(self, key: str) -> Exception | None:
        for control in self._controls:
            if (why := control.lanes.stalled(key)) is not None:
                return why
        return None


class NodeCalls:
    """The calls of every node: `request` in the lane of the node the caller is on."""

    def __init__(self, by_node: Mapping[str | None, Any], store: _Snapshots) -> None:
        self.by_node = dict(by_node)
        self.home = next(iter(self.by_node.values()))  # the first: this instance's own node
        self.store = store
        self.lanes = _Lanes(list(self.by_node.values()))

    async def control_of(self, call_id: str) -> Any:
        """The node's call control for `call_id` (the home node's when the call is unknown:
        it answers "no such call" as one node would)."""
        machine = (await self.store.peek([call_id]))[0]
        return self.by_node.get(getattr(machine, "node", None), self.home)

    async def request(self, call_id: str, event: object) -> str:
        return await (await self.control_of(call_id)).request(call_id, event)

    async def operator_of(self, call_id: str) -> str | None:
        return await (await self.control_of(call_id)).operator_of(call_id)


class _AllSet:
    def __init__(self, streams: list[Any]) -> None:
        self._streams = streams

    def is_set(self) -> bool:
        return all(s.connected.is_set() for s in self._streams)


class NodeEvents:
    """Every node's event stream (or pool of shards) as one for /healthz: connected when all
    are; the first error named with its node."""

    def __init__(self, by_node: Mapping[str | None, Any]) -> None:
        self.by_node = dict(by_node)
        self.connected = _AllSet(list(self.by_node.values()))

    @property
    def last_error(self) -> str | None:
        for node, stream in self.by_node.items():
            if not stream.connected.is_set():
                return f"node {node}: {stream.last_error or 'reconnecting'}"
        return None

    def status(self) -> dict[str, Any]:
        return {str(node): (stream.status() if hasattr(stream, "status")
                            else {"connected": stream.connected.is_set()})
                for node, stream in self.by_node.items()}
