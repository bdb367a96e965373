"""One process, several nodes: a request goes to the node the caller is on; /healthz sees
every node's lanes and events as one."""

import asyncio
from types import SimpleNamespace

from ari_app.calls.nodes import NodeCalls, NodeEvents


class Lanes:
    def __init__(self, n: int, stalled: dict | None = None) -> None:
        self.n, self._stalled = n, stalled or {}

    def __len__(self) -> int:
        return self.n

    @property
    def stalled_count(self) -> int:
        return len(self._stalled)

    def stalled(self, key):
        return self._stalled.get(key)


class Control:
    def __init__(self, name: str, lanes: Lanes) -> None:
        self.name, self.lanes, self.seen = name, lanes, []

    async def request(self, call_id, event):
        self.seen.append((call_id, event))
        return f"{self.name}:{event}"

    async def operator_of(self, call_id):
        return f"{self.name}-op"


class Store:
    def __init__(self, nodes: dict) -> None:
        self.nodes = nodes

    async def peek(self, call_ids):
        return [SimpleNamespace(node=self.nodes[c]) if c in self.nodes else None
                for c in call_ids]


def test_a_request_goes_to_the_callers_node_and_an_unknown_call_to_the_home_node():
    a, b = Control("a", Lanes(2)), Control("b", Lanes(3, {"y": RuntimeError("away")}))
    calls = NodeCalls({"a": a, "b": b}, Store({"x": "a", "y": "b", "old": None}))

    async def go():
        return [await calls.request("y", "hold"), await calls.request("x", "hold"),
                await calls.request("nobody", "hold"), await calls.request("old", "hold"),
                await calls.operator_of("y")]

    assert asyncio.run(go()) == ["b:hold", "a:hold", "a:hold", "a:hold", "b-op"]
    assert len(calls.lanes) == 5 and calls.lanes.stalled_count == 1
    assert str(calls.lanes.stalled("y")) == "away" and calls.lanes.stalled("x") is None


def test_events_are_connected_only_when_every_node_is():
    up, down = asyncio.Event(), asyncio.Event()
    up.set()
    events = NodeEvents({
        "a": SimpleNamespace(connected=up, last_error=None, status=lambda: {"held": ["p1"]}),
        "b": SimpleNamespace(connected=down, last_error="refused")})
    assert not events.connected.is_set()
    assert events.last_error == "node b: refused"
    assert events.status() == {"a": {"held": ["p1"]}, "b": {"connected": False}}
    down.set()
    assert events.connected.is_set() and events.last_error is None


def test_a_calls_snapshot_keeps_its_node():
    from ari_app.inbound.machine import InboundMachine

    machine = InboundMachine("c1", node="b")
    assert InboundMachine.from_dict(machine.to_dict()).node == "b"
    assert InboundMachine.from_dict({**machine.to_dict(), "node": None}).node is None
