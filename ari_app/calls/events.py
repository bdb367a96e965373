"""The call-events service: every step of every rule, published once, where it happens.

A rule's adapter publishes what its machine said (`Note` actions) and every state change of
its machine; consumers subscribe and never live inside the rules (STYLE.md §11, as wazo's
TransferNotifier and aioquic's qlog trace). An event is named `rule:step`
(`hold:check_in_played`), carries its call id (the trace's id), the time, the rule's old and
new state when it is a transition, the call's operator, and the step's data.

Consumers are plain objects with a sync, cheap `on_event(event)`; one that does I/O queues the
event and does the I/O in its own task. A consumer that raises is logged and never stops the
call or the other consumers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any, Protocol

import structlog

__all__ = ["CallEvent", "CallEvents", "Consumer", "RuleEvents", "STATE_CHANGED", "step_of"]

logger = structlog.get_logger()

STATE_CHANGED = "state_changed"
_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CallEvent:
    name: str                      # "hold:check_in_played": rule + ":" + step
    call_id: str                   # the call (a callback's: its request id)
    at: float                      # epoch seconds
    rule: str                      # "inbound", "hold", "transfer", "escalation", "callback"
    label: str = ""                # the machine's own words ("check-in"), as in the timeline
    old: str | None = None         # the rule's state before, on a transition
    new: str | None = None         # ... and after
    operator: str | None = None    # the call's operator endpoint, when it has one
    data: Mapping[str, object] = field(default_factory=lambda: _EMPTY)

    @property
    def step(self) -> str:
        return self.name.split(":", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form (the live stream)."""
        return {"name": self.name, "call_id": self.call_id, "at": round(self.at, 3),
                "rule": self.rule, "old": self.old, "new": self.new,
                "operator": self.operator, "data": dict(self.data)}


class Consumer(Protocol):
    def on_event(self, event: CallEvent) -> None: ...


class CallEvents:
    """The publisher: one `publish` per step, fanned out to every subscriber in order."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._consumers: list[Consumer] = []
        self._item: dict[str, list[CallEvent]] = {}  # call -> what its lane item published
        self._repeats: dict[str, list[tuple]] = {}   # call -> what a cut-short item published

    def subscribe(self, consumer: Consumer) -> None:
        self._consumers.append(consumer)

    # --- a call's lane item (one event), tried again when storage cut it short ---------------
    def begin(self, call_id: str) -> None:
        self._item[call_id] = []

    def cut_short(self, call_id: str) -> None:
        """The item failed for storage and is tried again from the snapshots before it: what
        it published stays published (its actions ran), and the retry's same steps are not
        published again (each step once)."""
        published = self._item.pop(call_id, None)
        if published:
            self._repeats.setdefault(call_id, []).extend(map(_same, published))

    def settle(self, call_id: str) -> None:
        """The item is over; one that was done (not cut short) ends the retry's repeats."""
        if self._item.pop(call_id, None) is not None:
            self._repeats.pop(call_id, None)

    def forget(self, call_id: str) -> None:
        """Another instance drives the call now: its retries are not ours."""
        self._item.pop(call_id, None)
        self._repeats.pop(call_id, None)

    def publish(self, event: CallEvent) -> None:
        item = self._item.get(event.call_id)
        if item is not None:
            item.append(event)
            repeats = self._repeats.get(event.call_id)
            if repeats and (same := _same(event)) in repeats:
                repeats.remove(same)  # published by the try that was cut short
                return
        for consumer in self._consumers:
            try:
                consumer.on_event(event)
            except Exception:  # a consumer's bug never stops a call
                logger.exception("call event consumer failed", consumer=type(consumer).__name__,
                                 step=event.name)

    def for_rule(self, rule: str, steps: Mapping[str, str] | None = None) -> RuleEvents:
        return RuleEvents(self, rule, steps or {})


def _same(event: CallEvent) -> tuple:
    """What makes a retried step's event the one already published (not when it was)."""
    return event.name, event.old, event.new, event.operator, dict(event.data)


_NOT_WORD = re.compile(r"[^a-z0-9]+")


def step_of(label: str, steps: Mapping[str, str]) -> str:
    """A machine's label -> the step's typed name: the rule's own table, else the label as a
    snake_case word ("operator left" -> "operator_left")."""
    return steps.get(label) or _NOT_WORD.sub("_", label.lower()).strip("_")


def _value(state: object) -> str | None:
    if state is None:
        return None
    return state.value if isinstance(state, Enum) else str(state)


class RuleEvents:
    """One rule's side of the service: its name and its vocabulary (label -> step)."""

    def __init__(self, events: CallEvents, rule: str, steps: Mapping[str, str]) -> None:
        self.events, self.rule, self.steps = events, rule, steps

    def note(self, call_id: str, label: str, data: Mapping[str, object] | Iterable = (), *,
             operator: str | None = None, at: float | None = None) -> None:
        """One fact the rule established (a `Note`, or what its adapter did: a saved request)."""
        self.events.publish(CallEvent(
            f"{self.rule}:{step_of(label, self.steps)}", call_id,
            at if at is not None else self.events.clock(), self.rule, label,
            operator=operator or None, data=MappingProxyType(dict(data)) if data else _EMPTY))

    def transition(self, call_id: str, old: object, new: object, *,
                   operator: str | None = None, at: float | None = None) -> None:
        """The machine's state changed (compared before and after a step); no-op if not."""
        if old is new or old == new:
            return
        self.events.publish(CallEvent(
            f"{self.rule}:{STATE_CHANGED}", call_id,
            at if at is not None else self.events.clock(), self.rule, STATE_CHANGED,
            old=_value(old), new=_value(new), operator=operator or None))
