"""The post-call survey: the operator hung up first, the caller (alone) is asked to rate the
call 1-5 by keypad. Pure: events in (each with `now`), actions out, one deadline.

Decided here: one question, skippable (no key, # or any other key: a short goodbye), and
never longer than `limit` seconds from the operator's hang-up: after `answer_window` the
question is given up (a goodbye), and at `limit` the call ends whatever is playing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.calls.machine import RuleMachine
# the words every rule shares (hang-ups, prompts, the timer, the end): re-exported
from ari_app.calls.vocabulary import (CallerHungUp, DetachCaller, Finish, Note, OperatorHungUp,
                                      Play, PromptFinished, StopPlayback, TimerFired)

__all__ = [
    "SurveyState", "SurveyMachine", "InvalidSurveyEvent", "SCORES", "QUESTION", "THANKS",
    "GOODBYE",
    "SurveyStarted", "DigitPressed", "PromptFinished", "TimerFired", "CallerHungUp",
    "OperatorHungUp",
    "DetachCaller", "Play", "StopPlayback", "SaveAnswer", "Note", "Finish",
]

logger = structlog.get_logger()

SCORES = frozenset("12345")
QUESTION, THANKS, GOODBYE = "survey-question", "survey-thanks", "survey-goodbye"


class SurveyState(Enum):
    ASKING = "asking"        # the question plays (a key may come already)
    WAITING = "waiting"      # the question was said: a key until the answer window ends
    CLOSING = "closing"      # "thank you, goodbye" or "goodbye" plays
    ENDED = "ended"


END_STATES = frozenset({SurveyState.ENDED})


# --- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SurveyStarted:
    now: float
    queue: str | None = None
    operator: str | None = None  # who took the call: the answer is theirs


@dataclass(frozen=True)
class DigitPressed:
    now: float
    digit: str


# --- outputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaveAnswer:
    """The score on the customer card."""
    score: int
    queue: str | None
    operator: str | None


# Finish(outcome): answered | skipped | caller-hung-up


class InvalidSurveyEvent(Exception):
    pass


@dataclass
class SurveyMachine(RuleMachine):
    KIND: ClassVar[str] = "survey"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidSurveyEvent

    call_id: str
    answer_window: float = 8.0   # seconds from the hang-up during which a key counts
    limit: float = 10.0          # the whole survey, from the hang-up: a hard bound
    state: SurveyState = SurveyState.ASKING
    started_at: float | None = None
    queue: str | None = None
    operator: str | None = None
    score: int | None = None
    playing: str | None = None
    plays: int = 0

    @property
    def playing_tag(self) -> str:
        return f"s{self.plays}"

    def get_timer(self) -> float | None:
        if self.started_at is None or self.state in END_STATES:
            return None
        if self.state is SurveyState.CLOSING:
            return self.started_at + self.limit
        return self.started_at + min(self.answer_window, self.limit)

    def _on_SurveyStarted(self, ev: SurveyStarted) -> list[object]:
        if self.started_at is not None:
            return []
        self.started_at, self.queue, self.operator = ev.now, ev.queue, ev.operator
        return [Note("survey started", (("queue", ev.queue), ("operator", ev.operator))),
                DetachCaller(), self._play(QUESTION)]

    def _on_DigitPressed(self, ev: DigitPressed) -> list[object]:
        if self.state not in (SurveyState.ASKING, SurveyState.WAITING):
            return []  # one answer; keys during the goodbye change nothing
        if ev.digit in SCORES:
            self.score = int(ev.digit)
            return [*self._stop_question(),
                    Note("answered", (("score", self.score), ("queue", self.queue),
                                      ("operator", self.operator))),
                    SaveAnswer(self.score, self.queue, self.operator), *self._close(THANKS)]
        return self._skip(f"key {ev.digit}")

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if ev.prompt != self.playing or (ev.tag and ev.tag != self.playing_tag):
            return []  # a stopped question's late end
        self.playing = None
        if self.state is SurveyState.ASKING:
            self._set_state(SurveyState.WAITING)
            return []
        if self.state is SurveyState.CLOSING:
            return self._finish()
        return []

    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        due = self.get_timer()
        if due is None or ev.now < due:
            return []
        if self.state is SurveyState.CLOSING:  # the hard bound: end whatever still plays
            return [Note("survey cut short", (("after", round(ev.now - (self.started_at or ev.now), 1)),)),
                    *self._finish()]
        return self._skip("no key")

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        skipped = ([] if self.score is not None or self.state is SurveyState.CLOSING
                   else [Note("skipped", (("why", "caller hung up"), ("queue", self.queue),
                                          ("operator", self.operator)))])
        self._set_state(SurveyState.ENDED)
        return [*skipped, Finish("caller-hung-up")]

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        return []  # they already had: that is why the survey runs

    # --- helpers ------------------------------------------------------------------------------
    def _skip(self, why: str) -> list[object]:
        return [*self._stop_question(),
                Note("skipped", (("why", why), ("queue", self.queue),
                                 ("operator", self.operator))),
                *self._close(GOODBYE)]

    def _stop_question(self) -> list[object]:
        if self.state is SurveyState.ASKING and self.playing == QUESTION:
            return [StopPlayback(QUESTION, self.playing_tag)]
        return []

    def _close(self, prompt: str) -> list[object]:
        self._set_state(SurveyState.CLOSING)
        return [self._play(prompt)]

    def _finish(self) -> list[object]:
        self._set_state(SurveyState.ENDED)
        return [Finish("answered" if self.score is not None else "skipped",
                       {"score": self.score})]

    def _play(self, prompt: str) -> Play:
        self.playing = prompt
        self.plays += 1
        return Play(prompt, tag=self.playing_tag)

    @classmethod
    def from_dict(cls, data: dict) -> "SurveyMachine":
        data = dict(data)
        data["state"] = SurveyState(data["state"])
        return cls(**data)
