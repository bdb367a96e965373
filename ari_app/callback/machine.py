"""One attempt at one callback: a free operator and the customer, brought together. Pure:
events in (each with `now`), actions out, one deadline.

Decided here:
- agent-first (default): the operator is rung first and is on the line before the customer's
  phone rings, so a customer who answers never waits for a person; customer-first (policy)
  rings the customer first and the operator once the customer wants to talk;
- the customer hears who is calling and why ("you asked us to call you back"), then 1 talk
  now, 2 another time; no key means a machine or a voicemail answered: not reached;
- the operator hears that a callback is being placed (their card for the customer is on the
  operator page: GET /api/customers/{number});
- every way it can end is one outcome, for the dialer to retry, reschedule or close;
- a leg that rings longer than its ring guard (its ring timeout and a margin) without a word
  from Asterisk is lost (Asterisk restarted, or the leg entered the app while it was not
  connected): hung up and failed, so no attempt keeps its operator and its request forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.calls.machine import RuleMachine
from ari_app.calls.pacing import menu_wait
# the words every rule shares (the timer, prompts, the end): re-exported
from ari_app.calls.vocabulary import (OPERATOR, Finish, Note, Play, PromptFinished, TimerFired,
                                      prompt_media)

__all__ = [
    "CallbackCallState", "CallbackCallMachine", "InvalidCallbackEvent",
    "Started", "OperatorAnswered", "OperatorFailed", "CustomerAnswered", "CustomerFailed",
    "PromptFinished", "DigitPressed", "TimerFired", "HungUp",
    "DialOperator", "DialCustomer", "Play", "StopPrompt", "Connect", "WaitingMusic",
    "StopWaitingMusic",
    "HangUp", "Note", "Finish",
    "OPERATOR", "CUSTOMER",
]

logger = structlog.get_logger()
CUSTOMER = "customer"  # the callback's own party: the one called back


class CallbackCallState(Enum):
    DIALING_OPERATOR = "dialing_operator"
    DIALING_CUSTOMER = "dialing_customer"
    INTRODUCING = "introducing"      # the customer hears who and why, then 1 / 2
    JOINING_OPERATOR = "joining_operator"  # customer-first: the customer said 1, operator rings
    CONNECTED = "connected"
    CLOSING = "closing"              # the customer hears "we will call you at another time"
    ENDED = "ended"


END_STATES = frozenset({CallbackCallState.ENDED})


# --- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Started:
    now: float
    customer_first: bool = False
    reason_prompt: str | None = None
    # what 2 ("another time") says: tomorrow at about this time, or, when the customer may not
    # be called then (closed, their night), the next time they may (the dialer knows which)
    another_time_prompt: str = "callback-rescheduled"


@dataclass(frozen=True)
class OperatorAnswered:
    now: float


@dataclass(frozen=True)
class OperatorFailed:
    now: float
    cause: str


@dataclass(frozen=True)
class CustomerAnswered:
    now: float


@dataclass(frozen=True)
class CustomerFailed:
    now: float
    cause: str                    # "busy" or "no answer" (or Asterisk's words)


@dataclass(frozen=True)
class DigitPressed:
    now: float
    party: str
    digit: str


@dataclass(frozen=True)
class HungUp:
    now: float
    party: str


# --- outputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DialOperator:
    pass


@dataclass(frozen=True)
class DialCustomer:
    pass


@dataclass(frozen=True)
class Connect:
    """Operator and customer in one bridge."""


@dataclass(frozen=True)
class StopPrompt:
    """The party's prompt stops: a key answered it (the menu is not said to its end first)."""
    party: str


@dataclass(frozen=True)
class WaitingMusic:
    """Music for a party who waits for the other (customer-first: the customer, once told they
    are being connected, while the operator's phone rings): never silence on their line."""
    party: str


@dataclass(frozen=True)
class StopWaitingMusic:
    party: str


@dataclass(frozen=True)
class HangUp:
    party: str


# Finish(outcome, data): connected | busy | no-answer | not-reached | rescheduled |
# operator-unavailable; data {"detail": why} when there is a why (the dialer logs it)


class InvalidCallbackEvent(Exception):
    pass



@dataclass
class CallbackCallMachine(RuleMachine):
    KIND: ClassVar[str] = "callback call"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidCallbackEvent

    call_id: str
    request_id: str = ""
    number: str = ""            # the customer's, E.164
    operator: str = ""          # the endpoint reserved for this attempt
    language: str = "en"        # the customer's
    answer_timeout: float = 8.0
    # Asterisk ends a ringing leg at its ring timeout, with an event; these are that and a
    # margin (the dialer sets them from the policy)
    operator_ring_guard: float = 30.0
    customer_ring_guard: float = 40.0
    menu_repeat_after: float = 4.0  # no key by then: the menu is said once more
    # the Stasis app (and Asterisk node) its legs were dialled into: whoever holds that app's
    # events drives the attempt, after a crash too (callback/stasis.py `reconcile`)
    app: str = ""
    node: str = ""
    menu_repeated: bool = False
    state: CallbackCallState = CallbackCallState.DIALING_OPERATOR
    customer_first: bool = False
    reason_prompt: str | None = None
    another_time_prompt: str = "callback-rescheduled"
    up: list[str] = field(default_factory=list)   # parties whose leg is up
    ringing: list[str] = field(default_factory=list)  # parties being dialled
    playing: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None
    outcome: str | None = None


    def get_timer(self) -> float | None:
        return self.deadline


    def _on_Started(self, ev: Started) -> list[object]:
        self.customer_first, self.reason_prompt = ev.customer_first, ev.reason_prompt
        self.another_time_prompt = ev.another_time_prompt
        if ev.customer_first:
            self._set_state(CallbackCallState.DIALING_CUSTOMER)
            return [Note("customer dialed", (("order", "customer-first"),)),
                    self._dial(CUSTOMER, ev.now)]
        return [Note("operator dialed", (("order", "agent-first"),)), self._dial(OPERATOR, ev.now)]

    def _on_OperatorAnswered(self, ev: OperatorAnswered) -> list[object]:
        if OPERATOR in self.ringing:
            self.ringing.remove(OPERATOR)
            self.deadline = None  # its ring guard
        self.up.append(OPERATOR)
        intro = self._play(OPERATOR, "operator-callback-intro")
        if self.state is CallbackCallState.JOINING_OPERATOR:
            music = [StopWaitingMusic(CUSTOMER)] if CUSTOMER not in self.playing else []
            return [Note("operator answered", ()), intro, *music, *self._connect()]
        if self.state is not CallbackCallState.DIALING_OPERATOR:
            return [HangUp(OPERATOR)]
        self._set_state(CallbackCallState.DIALING_CUSTOMER)
        return [Note("operator answered", ()), intro, Note("customer dialed", ()),
                self._dial(CUSTOMER, ev.now)]

    def _on_OperatorFailed(self, ev: OperatorFailed) -> list[object]:
        if OPERATOR in self.ringing:
            self.ringing.remove(OPERATOR)
        if self.state is CallbackCallState.JOINING_OPERATOR:
            # the customer wanted to talk: never drop them silently, promise another call
            music = [StopWaitingMusic(CUSTOMER)] if CUSTOMER not in self.playing else []
            return [*music, *self._close_with(CUSTOMER, "callback-operator-busy",
                                              "operator-unavailable", ev.cause)]
        if self.state is not CallbackCallState.DIALING_OPERATOR:
            return []
        return self._finish("operator-unavailable", ev.cause)

    def _on_CustomerAnswered(self, ev: CustomerAnswered) -> list[object]:
        if self.state is not CallbackCallState.DIALING_CUSTOMER:
            return [HangUp(CUSTOMER)]
        if CUSTOMER in self.ringing:
            self.ringing.remove(CUSTOMER)
        self.deadline = None  # its ring guard
        self.up.append(CUSTOMER)
        self._set_state(CallbackCallState.INTRODUCING)
        media = (prompt_media("callback-intro"),
                 *((prompt_media(self.reason_prompt),) if self.reason_prompt else ()),
                 prompt_media("callback-menu"))
        return [Note("customer answered", ()), self._play(CUSTOMER, "callback-intro", media)]

    def _on_CustomerFailed(self, ev: CustomerFailed) -> list[object]:
        if CUSTOMER in self.ringing:
            self.ringing.remove(CUSTOMER)
        if self.state is not CallbackCallState.DIALING_CUSTOMER:
            return []
        cause = ev.cause.lower()
        outcome = "busy" if "busy" in cause else "no-answer"
        return self._finish(outcome, ev.cause)

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if self.playing.get(ev.party) != ev.prompt:
            return []
        del self.playing[ev.party]
        if ev.party == CUSTOMER and self.state is CallbackCallState.INTRODUCING:
            # no dead air: the menu is said once more, then at most 5 s of silence
            self.deadline = ev.now + menu_wait(self.menu_repeated, self.menu_repeat_after,
                                               self.answer_timeout)
        elif ev.party == CUSTOMER and self.state is CallbackCallState.CLOSING:
            return self._finish(self.outcome or "rescheduled")
        elif ev.party == CUSTOMER and self.state is CallbackCallState.JOINING_OPERATOR:
            return [WaitingMusic(CUSTOMER)]  # told they are being connected; the phone rings
        return []

    def _on_DigitPressed(self, ev: DigitPressed) -> list[object]:
        if ev.party != CUSTOMER or self.state is not CallbackCallState.INTRODUCING:
            return []
        # a key said while the introduction plays answers it: the menu stops there, so what
        # follows is heard at once, not after the menu's end
        stop = [StopPrompt(CUSTOMER)] if CUSTOMER in self.playing else []
        if ev.digit == "1":
            self.deadline = None
            note = Note("customer chose", (("choice", "talk now"),))
            if self.customer_first:
                self._set_state(CallbackCallState.JOINING_OPERATOR)
                return [note, *stop, self._play(CUSTOMER, "callback-connecting"),
                        self._dial(OPERATOR, ev.now)]
            return [note, *self._connect()]  # Connect stops what plays
        if ev.digit == "2":
            self.deadline = None
            return [Note("customer chose", (("choice", "another time"),)), *stop,
                    *self._close_with(CUSTOMER, self.another_time_prompt, "rescheduled",
                                      "the customer chose another time")]
        return []

    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        if self.deadline is None or ev.now < self.deadline:
            return []
        self.deadline = None
        lost = "no word from Asterisk on the ringing leg past its ring timeout"
        if OPERATOR in self.ringing and self.state in (CallbackCallState.DIALING_OPERATOR,
                                                       CallbackCallState.JOINING_OPERATOR):
            return [HangUp(OPERATOR), *self._on_OperatorFailed(OperatorFailed(ev.now, lost))]
        if CUSTOMER in self.ringing and self.state is CallbackCallState.DIALING_CUSTOMER:
            return [HangUp(CUSTOMER), *self._on_CustomerFailed(CustomerFailed(ev.now, lost))]
        if self.state is CallbackCallState.INTRODUCING and not self.menu_repeated:
            self.menu_repeated = True
            return [Note("menu repeated", (("prompt", "callback-menu"),)),
                    self._play(CUSTOMER, "callback-menu")]
        if self.state is CallbackCallState.INTRODUCING:  # nobody pressed a key: a machine?
            return self._finish("not-reached", "no key pressed after the introduction")
        return []

    def _on_HungUp(self, ev: HungUp) -> list[object]:
        if ev.party in self.up:
            self.up.remove(ev.party)
        if self.state is CallbackCallState.CONNECTED:
            return self._finish("connected", f"{ev.party} hung up")
        if self.state is CallbackCallState.CLOSING and ev.party == CUSTOMER:
            return self._finish(self.outcome or "rescheduled")
        if self.state is CallbackCallState.CLOSING:
            return []  # the operator's leg, hung up by _close_with: the customer hears goodbye
        if ev.party == CUSTOMER:
            return self._finish("not-reached", "the customer hung up before talking")
        if self.state is CallbackCallState.JOINING_OPERATOR:
            return self._on_OperatorFailed(OperatorFailed(ev.now, "operator hung up"))
        if self.customer_first and CUSTOMER not in self.up:
            return []
        return self._finish("operator-unavailable", "the operator hung up")

    # --- helpers --------------------------------------------------------------------------------
    def _connect(self) -> list[object]:
        self._set_state(CallbackCallState.CONNECTED)
        return [Note("connected", ()), Connect()]

    def _close_with(self, party: str, prompt: str, outcome: str, detail: str) -> list[object]:
        self._set_state(CallbackCallState.CLOSING)
        self.outcome, self.deadline = outcome, None
        hang = [HangUp(OPERATOR)] if OPERATOR in self.up else []
        return [*hang, Note("closing", (("outcome", outcome), ("detail", detail))),
                self._play(party, prompt, (prompt_media(prompt), prompt_media("goodbye")))]

    def _dial(self, party: str, now: float) -> object:
        self.ringing.append(party)
        self.deadline = now + (self.operator_ring_guard if party == OPERATOR
                               else self.customer_ring_guard)
        return DialOperator() if party == OPERATOR else DialCustomer()

    def _play(self, party: str, prompt: str, media: tuple[str, ...] = ()) -> Play:
        self.playing[party] = prompt
        return Play(prompt, media or (prompt_media(prompt),), party=party)

    def _finish(self, outcome: str, detail: str = "") -> list[object]:
        self._set_state(CallbackCallState.ENDED)
        self.outcome, self.deadline = outcome, None
        # a leg still ringing is cancelled too: nobody answers into an attempt that is over
        hang = [HangUp(p) for p in (OPERATOR, CUSTOMER) if p in self.up or p in self.ringing]
        self.ringing = []
        return [*hang, Note("attempt ended", (("outcome", outcome), ("detail", detail))),
                Finish(outcome, {"detail": detail} if detail else {})]


    @classmethod
    def from_dict(cls, data: dict) -> "CallbackCallMachine":
        data = dict(data)
        data["state"] = CallbackCallState(data["state"])
        return cls(**data)
