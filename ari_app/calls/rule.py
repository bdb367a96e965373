"""What a rule is to the call core.

A rule (hold, transfer, complaint, ...) takes over the caller for a while. It lives in its own
folder: a pure machine, and an adapter that implements `Rule`. It is registered once in app.py;
the call hands it the caller by name (`HandTo`) and gets one `RuleEnded` back. The runner
(`calls/runner.py`) does the rest for every rule alike: load, handle, save or delete, carry out
the actions on the call's legs, publish every step, keep the timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ari_app.calls.machine import RuleMachine
from ari_app.calls.vocabulary import Finish
from ari_app.storage.snapshots import SnapshotStore

__all__ = ["CallLegs", "Instead", "Rule", "RuleBase"]


@dataclass(frozen=True)
class CallLegs:
    """What a rule needs to know about the call it runs in."""
    call_id: str
    operator_channel: str | None
    talk_bridge: str
    number: str = ""
    name: str = ""
    language: str = "en"
    operator: str | None = None


class Instead(Exception):
    """Raised by a rule's `do`: skip the rest of this step's actions and feed `event` (a
    callback the service refused: no confirmation is played after it)."""

    def __init__(self, event: object) -> None:
        super().__init__(type(event).__name__)
        self.event = event


class Rule(Protocol):
    NAME: ClassVar[str]                 # how the call hands a caller to it ("hold")
    MACHINE: ClassVar[type[RuleMachine]]
    WANTS: ClassVar[frozenset[str]]     # the ARI event types it reads, beyond the core's
    STEPS: ClassVar[Mapping[str, str]]  # its machine's labels -> the published steps' names
    TAKES_OPERATOR: ClassVar[bool]      # it reads the operator's keys and phone buttons too
    LEGS: ClassVar[frozenset[str]]      # roles of legs it dials: their StasisStart is its event
    # prompts whose playback events nobody waits for (an aside to the operator): the call
    # drops them as they arrive, before its lane
    UNWATCHED_PROMPTS: ClassVar[frozenset[str]]
    store: SnapshotStore                # its machine per call in Redis (the runner's to use)

    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float
              ) -> tuple[RuleMachine, object]:
        """A new machine for the call and the event that starts it."""

    def ask(self, what: str, data: Mapping[str, Any], now: float) -> object:
        """The call's request (`Ask`) in the rule's own words."""

    async def translate(self, legs: CallLegs, machine: RuleMachine, event: dict, now: float
                        ) -> list[object]:
        """An ARI event of the call -> the rule's events; the core already turned hang-ups,
        prompt ends and the timer into the shared ones."""

    def parties(self, machine: RuleMachine) -> Mapping[str, str | None]:
        """Channels of parties only this rule knows (a transfer's target)."""

    async def leg_entered(self, legs: CallLegs, channel: str, role: str) -> bool:
        """A channel of the call reached Stasis with `role` (its first app arg): a snoop
        the rule asked for. True when it is the rule's."""

    async def resync(self, legs: CallLegs, machine: RuleMachine, live: frozenset[str],
                     now: float) -> list[object]:
        """After a restart or a dropped WebSocket: the events of what ended while away."""

    async def do(self, legs: CallLegs, machine: RuleMachine, action: object) -> object | None:
        """One of the rule's own actions; may return an event for the machine, or a `Note`
        of what it did (a saved record) for the call's events."""

    def ended(self, machine: RuleMachine, finish: Finish) -> Mapping[str, Any]:
        """What goes back to the call with the outcome."""


class RuleBase:
    """Defaults for the optional parts of `Rule`."""
    WANTS: ClassVar[frozenset[str]] = frozenset()
    STEPS: ClassVar[Mapping[str, str]] = {}
    TAKES_OPERATOR: ClassVar[bool] = False  # the call's feature codes stay the call's
    LEGS: ClassVar[frozenset[str]] = frozenset()
    UNWATCHED_PROMPTS: ClassVar[frozenset[str]] = frozenset()

    def ask(self, what: str, data: Mapping[str, Any], now: float) -> object:
        raise LookupError(f"{self.NAME} takes no {what!r}")  # type: ignore[attr-defined]

    async def translate(self, legs: CallLegs, machine: RuleMachine, event: dict, now: float
                        ) -> list[object]:
        return []

    def parties(self, machine: RuleMachine) -> Mapping[str, str | None]:
        return {}

    async def leg_entered(self, legs: CallLegs, channel: str, role: str) -> bool:
        return False

    async def resync(self, legs: CallLegs, machine: RuleMachine, live: frozenset[str],
                     now: float) -> list[object]:
        return []

    def ended(self, machine: RuleMachine, finish: Finish) -> Mapping[str, Any]:
        return finish.data
