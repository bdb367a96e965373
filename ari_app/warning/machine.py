"""The abusive-caller warning: the operator warns, the call says it politely. Pure: events in
(each with `now`), actions out, one deadline.

Decided here (the product's rule: warn politely first, then end the call politely): the first
warning is a polite prompt both the caller and the operator hear, then they talk again; the
second is a polite goodbye both hear, then the call ends (the call core hangs up the caller
and frees the operator as when a caller hangs up). Both are recorded, with their count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.calls.machine import RuleMachine
# the words every rule shares (hang-ups, prompts, the timer, the end): re-exported
from ari_app.calls.vocabulary import (CALLER, OPERATOR, CallerHungUp, Finish, Note,
                                      OperatorHungUp, Play, PromptFinished, TimerFired)

__all__ = [
    "WarningState", "WarningMachine", "InvalidWarningEvent", "WARNING", "GOODBYE",
    "WarningStarted", "PromptFinished", "TimerFired", "CallerHungUp", "OperatorHungUp",
    "Play", "SaveWarning", "Note", "Finish",
]

logger = structlog.get_logger()

WARNING, GOODBYE = "warning-abuse", "warning-goodbye"
PROMPT_BOUND = 15.0  # a prompt whose end never comes (a lost event) holds nobody longer


class WarningState(Enum):
    WARNING = "warning"  # the first warning plays to both
    ENDING = "ending"    # the goodbye plays to both; then the call ends
    ENDED = "ended"


END_STATES = frozenset({WarningState.ENDED})


# --- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WarningStarted:
    now: float
    count: int           # 1: warn; 2 (or more): end the call
    source: str = "rest"


# --- outputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaveWarning:
    """The warning on the customer card."""
    count: int


# Finish(outcome): warned | ended | caller-hung-up


class InvalidWarningEvent(Exception):
    pass


@dataclass
class WarningMachine(RuleMachine):
    KIND: ClassVar[str] = "warning"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidWarningEvent

    call_id: str
    state: WarningState = WarningState.WARNING
    started_at: float | None = None
    count: int = 0
    playing: str | None = None
    # whose leg still plays it: each party hears it on their own leg (a playback on the
    # talk bridge was not always heard by the caller here)
    waiting: list[str] = field(default_factory=list)
    operator_present: bool = True

    @property
    def playing_tag(self) -> str:
        return f"w{self.count}"

    def get_timer(self) -> float | None:
        if self.started_at is None or self.state in END_STATES:
            return None
        return self.started_at + PROMPT_BOUND

    def _on_WarningStarted(self, ev: WarningStarted) -> list[object]:
        if self.started_at is not None:
            return []
        self.started_at, self.count = ev.now, ev.count
        if ev.count <= 1:
            return [Note("warned", (("count", ev.count), ("source", ev.source))),
                    SaveWarning(ev.count), *self._to_both(WARNING)]
        self._set_state(WarningState.ENDING)
        return [Note("call ended", (("count", ev.count), ("source", ev.source))),
                SaveWarning(ev.count), *self._to_both(GOODBYE)]

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if (ev.prompt != self.playing or (ev.tag and ev.tag != self.playing_tag)
                or ev.party not in self.waiting):
            return []
        self.waiting.remove(ev.party)
        return [] if self.waiting else self._finish()

    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        due = self.get_timer()
        if due is None or ev.now < due:
            return []
        return [Note("prompt end lost", (("prompt", self.playing),)), *self._finish()]

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        self._set_state(WarningState.ENDED)
        return [Finish("caller-hung-up")]

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        self.operator_present = False  # the call ends once the caller has heard it out
        if OPERATOR in self.waiting:
            self.waiting.remove(OPERATOR)
            return [] if self.waiting else self._finish()
        return []

    def _to_both(self, prompt: str) -> list[object]:
        self.playing, self.waiting = prompt, [CALLER, OPERATOR]
        return [Play(prompt, tag=self.playing_tag, party=CALLER),
                Play(prompt, tag=self.playing_tag, party=OPERATOR)]

    def _finish(self) -> list[object]:
        self.playing, self.waiting = None, []
        outcome = "warned" if self.state is WarningState.WARNING else "ended"
        self._set_state(WarningState.ENDED)
        return [Finish(outcome, {"count": self.count})]

    @classmethod
    def from_dict(cls, data: dict) -> "WarningMachine":
        data = dict(data)
        data["state"] = WarningState(data["state"])
        return cls(**data)
