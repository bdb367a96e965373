"""An inbound call from ring to goodbye: greet first, then a free operator, or a holding bridge
with music until one is free. Pure: events in (each with `now`), actions out, one deadline.

Etiquette decided here: the caller is greeted before anything else (company name, then the
recording notice when calls are recorded), is never left in silence while an operator is
sought (ringback while dialing, music while waiting), and is told why they wait. A free
operator's phone that rings on gets the caller a word (`connecting_after`), and another every
`connecting_every` while it rings on, never the same twice in a row: ringback alone for long
sounds like nobody is there.

This module is the call's life; what it hands to the hold, transfer and complaint rules is in
`handoffs.py`, the operator's keys are read by `feature_codes.py`, and its own words are in
`words.py` (all re-exported here: `from ari_app.inbound import machine as m; m.PutOnHold`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from ari_app.calls.machine import RuleMachine
from ari_app.calls.vocabulary import (CALLER, OPERATOR, Ask, CallerHungUp, Finish, HandTo,
                                      Note, OperatorHungUp, Play, PromptFinished, RuleEnded,
                                      StopPlayback, TimerFired)
from ari_app.inbound import words
from ari_app.inbound.feature_codes import (REASON_WAIT, FeatureCodes, caller_key, operator_key,
                                           waits_for_reason)
from ari_app.inbound.handoffs import RULE_OF_STATE, HandOffs
# its own words (all re-exported)
from ari_app.inbound.words import (END_STATES, HOLD_BRIDGE, TALK_BRIDGE, AddToBridge, Answer,
                                   CallerArrived, CallerDigit, CreateBridge, DestroyBridge,
                                   DialOperator, EscalationRequested, FindOperator, FindSupervisor,
                                   HangUp, InboundState, InvalidTransition, LookUpTarget,
                                   NoOperatorFree, NoSupervisor, OperatorAnswered, OperatorDigit,
                                   OperatorFailed, OperatorFound, PlayToOperator, PutOnHold,
                                   ReleaseOperator, Ring, StartBridgeMoh, StopRinging,
                                   SupervisorOnDuty, TakeOffHold, TransferCall,
                                   TransferTargetUnknown, WarnCaller)

__all__ = [
    "InboundMachine", "FeatureCodes", "REASON_WAIT", "CALLER", "OPERATOR",
    # the words every rule shares, as the call reads and speaks them
    "CallerHungUp", "OperatorHungUp", "TimerFired", "PromptFinished", "RuleEnded",
    "Play", "StopPlayback", "Finish", "HandTo", "Ask",
    *words.__all__,
]

logger = structlog.get_logger()
OFFERS = "greeting-offers"  # the keys offered after the greeting, said as one prompt
OFFERS_TAG = "offers"       # its playback's tag: a key stops it
CONNECTING = "connecting-operator"  # said when a free operator's phone rings on
CONNECTING_AGAIN = "connecting-operator-again"  # ... and in turn with it while it rings on
CONNECTING_WORDS = (CONNECTING, CONNECTING_AGAIN)
CONNECTING_TAG = "connecting"       # their playbacks' tag: an answer stops them


@dataclass
class InboundMachine(HandOffs):
    KIND: ClassVar[str] = "inbound"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidTransition
    EVENT_MODULES: ClassVar[frozenset[str]] = RuleMachine.EVENT_MODULES | {words.__name__}

    call_id: str
    recording_notice: bool = True
    seek_retry: float = 3.0  # while waiting, look for a free operator this often (seconds)
    operator_count: int = 1  # how many operators the policy lists: one round tries each once
    connecting_after: float = 0.0  # seconds of ringback before "an operator will be with you
                                   # shortly" (0: never)
    connecting_every: float = 0.0  # then a word this often, start to start (0: that one only)
    state: InboundState = InboundState.GREETING
    number: str = ""
    name: str = ""
    language: str = "en"
    started_at: float | None = None
    answered_at: float | None = None     # an operator first took the caller (the wait ends)
    prompts: list[str] = field(default_factory=list)  # still to play, in order
    playing: str | None = None
    bridges: list[str] = field(default_factory=list)
    operator: str | None = None          # endpoint reserved for this call
    operator_channel: str | None = None  # set once it answered
    attempt: int = 0
    tried: list[str] = field(default_factory=list)
    told_busy: bool = False
    ringing: bool = False
    connecting_at: float | None = None   # when the ringback gives way to a word
    connecting_said: int = 0             # words said since the phones began to ring
    deadline: float | None = None        # wall-clock epoch seconds
    codes: FeatureCodes = field(default_factory=FeatureCodes)
    keys: str = ""                       # operator's feature-code digits so far
    holds: int = 0                       # holds so far in this call
    transfers: int = 0                   # transfers so far: as few as possible
    caller_keys: str = ""
    fallback_for: str | None = None      # a message or callback for a transfer target
    rule: str | None = None              # the rule that has the caller now (hold, ...)
    queue: str | None = None             # where the caller waits when nobody is free
    returning: bool = False              # back within the queue's return window
    # keys offered after the greeting: [digit, "queue" | "language", the queue or language,
    # then how it is said (media)]
    offers: list[list[str]] = field(default_factory=list)
    chosen: str | None = None            # the greeting key pressed
    pending_transfer: dict[str, Any] | None = None  # a TransferCall waiting for a hand-over
    survey_queues: list[str] = field(default_factory=list)  # queues whose callers are surveyed
    warnings: int = 0                    # times the operator warned an abusive caller
    pending_warning: str | None = None   # warned on hold: once the hold hands them back
    operator_released: bool = False      # freed before the call's end (the survey)
    node: str | None = None              # the Asterisk node the caller is on (several nodes)
    asterisk_started: str | None = None  # when that Asterisk had started (it may restart)

    def get_timer(self) -> float | None:
        times = [t for t in (self.deadline, self.connecting_at) if t is not None]
        return min(times) if times else None

    # --- greeting and seeking an operator -----------------------------------------------------
    def _on_CallerArrived(self, ev: CallerArrived) -> list[object]:
        if self.started_at is not None:
            return []  # a replayed StasisStart after a reconnect
        self.started_at, self.number, self.name = ev.now, ev.number, ev.name
        self.language = ev.language or "en"
        self.queue, self.returning = ev.queue, ev.returning and ev.queue is not None
        self.prompts = ["recording-notice"] if self.recording_notice else []
        if self._offered() and not self.returning:
            self.prompts.append(OFFERS)
        # a caller who hung up while waiting and calls again is welcomed back, not greeted anew
        return [Answer(), self._play("queue-welcome-back" if self.returning else "greeting")]

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if self.state is InboundState.RELEASING and ev.prompt.startswith("operator-freed"):
            return self._end(hang_up=OPERATOR)
        if ev.prompt != self.playing:
            return []
        self.playing = None
        if self.state is InboundState.GREETING:
            if self.prompts:
                prompt = self.prompts.pop(0)
                if prompt == OFFERS:
                    self.playing = prompt
                    return [Play(prompt, tuple(m for o in self._offered() for m in o[3:]),
                                 OFFERS_TAG)]
                return [self._play(prompt)]
            self._set_state(InboundState.SEEKING_OPERATOR)
            return [FindOperator(tuple(self.tried))]
        if ev.prompt in CONNECTING_WORDS:  # the phone still rings (else _stop_ringing stopped it)
            self.ringing = True
            return [Ring()]
        if self.told_busy and HOLD_BRIDGE not in self.bridges and self.state in (
                InboundState.WAITING, InboundState.RINGING_OPERATOR):
            return self._music()  # told why they wait: music now, also while a phone rings
        return []

    def _on_OperatorFound(self, ev: OperatorFound) -> list[object]:
        if self.state not in (InboundState.SEEKING_OPERATOR, InboundState.WAITING):
            return [ReleaseOperator(ev.endpoint)]  # found too late: give it back
        self.operator = ev.endpoint
        self.attempt += 1
        self.deadline = None
        actions: list[object] = []
        if (self.state is InboundState.SEEKING_OPERATOR and not self.ringing
                and self.playing not in CONNECTING_WORDS):
            self.ringing = True  # ringback while the phone rings: no dead air
            actions.append(Ring())
            self.connecting_said = 0
            if self.connecting_after > 0:  # counted from the ringback's start
                self.connecting_at = ev.now + self.connecting_after
        self._set_state(InboundState.RINGING_OPERATOR)
        return [*actions, DialOperator(ev.endpoint, self.attempt)]

    def _on_NoOperatorFree(self, ev: NoOperatorFree) -> list[object]:
        self.tried = []  # next round, everybody is a candidate again
        if self.state is InboundState.WAITING:
            self.deadline = ev.now + self.seek_retry
            return []
        if self.state is not InboundState.SEEKING_OPERATOR:
            raise InvalidTransition(f"NoOperatorFree in {self.state.value}")
        if self.queue is not None:
            return [*self._stop_ringing(), *self._enter_queue()]
        return [*self._stop_ringing(), *self._wait(ev.now)]

    def _on_OperatorAnswered(self, ev: OperatorAnswered) -> list[object]:
        if self.state is not InboundState.RINGING_OPERATOR:
            return [HangUp(OPERATOR, ev.channel)]  # answered after we gave up on that leg
        self.operator_channel = ev.channel
        first = self.answered_at is None
        self.answered_at = self.answered_at or ev.now
        self._set_state(InboundState.CONNECTED)
        actions: list[object] = self._stop_ringing()
        if first and self.queue is not None:
            # an operator of the queue was free: answered without waiting in line, which the
            # queue's own figures (answered, service level) must count too
            waited = ev.now - self.started_at if self.started_at is not None else 0.0
            actions.append(Note("put through", (("queue", self.queue),
                                                ("waited", round(waited, 1)))))
        actions += [CreateBridge(TALK_BRIDGE, "mixing"),
                    AddToBridge(TALK_BRIDGE, CALLER), AddToBridge(TALK_BRIDGE, OPERATOR)]
        self.bridges.append(TALK_BRIDGE)
        if HOLD_BRIDGE in self.bridges:
            self.bridges.remove(HOLD_BRIDGE)
            actions.append(DestroyBridge(HOLD_BRIDGE))
        return actions

    def _on_OperatorFailed(self, ev: OperatorFailed) -> list[object]:
        if self.state is not InboundState.RINGING_OPERATOR:
            return []
        actions: list[object] = []
        if self.operator:
            self.tried.append(self.operator)
            actions.append(ReleaseOperator(self.operator, "missed" if ev.missed else "unused"))
        self.operator = None
        waiting = self.told_busy or HOLD_BRIDGE in self.bridges
        self._set_state(InboundState.WAITING if waiting else InboundState.SEEKING_OPERATOR)
        if len(self.tried) < self.operator_count:
            return [*actions, FindOperator(tuple(self.tried))]
        self.tried = []  # everybody was tried: wait, and look again on the timer
        if self.queue is not None:
            return [*actions, *self._stop_ringing(), *self._enter_queue()]
        return [*actions, *self._stop_ringing(), *self._wait(ev.now)]

    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        if self.connecting_at is not None and ev.now >= self.connecting_at:
            return self._say_connecting(ev.now)
        if self.deadline is None or ev.now < self.deadline:
            return []
        self.deadline = None
        if self.state is InboundState.WAITING:
            return [FindOperator(tuple(self.tried))]
        if self.state is InboundState.CONNECTED and waits_for_reason(self.codes, self.keys):
            return self._on_PutOnHold(PutOnHold(ev.now, None, None, "feature-code"))
        return []

    # --- talking: the keys ----------------------------------------------------------------------
    def _on_OperatorDigit(self, ev: OperatorDigit) -> list[object]:
        if self.state not in (InboundState.CONNECTED, InboundState.HELD):
            return []
        self.keys, intent = operator_key(self.codes, self.keys, ev.digit,
                                         held=self.state is InboundState.HELD)
        match intent.kind:
            case "resume":
                return self._on_TakeOffHold(TakeOffHold(ev.now, "feature-code"))
            case "transfer":
                return [LookUpTarget(intent.value or "", self.codes.transfer_mode)]
            case "supervisor":
                return self._on_EscalationRequested(EscalationRequested(ev.now, "feature-code"))
            case "hold":
                return self._on_PutOnHold(PutOnHold(ev.now, intent.value, None, "feature-code"))
            case "warn":
                return self._on_WarnCaller(WarnCaller(ev.now, "feature-code"))
            case "wait-for-reason":
                self.deadline = ev.now + REASON_WAIT  # a reason digit may follow
        return []

    def _on_CallerDigit(self, ev: CallerDigit) -> list[object]:
        if self.state is InboundState.GREETING:
            return self._greeting_key(ev.digit)
        if not self.codes.caller_supervisor or self.state is not InboundState.CONNECTED:
            return []
        self.caller_keys, intent = caller_key(self.codes, self.caller_keys, ev.digit)
        if intent.kind == "supervisor":
            return self._on_EscalationRequested(EscalationRequested(ev.now, "caller"))
        return []

    def _greeting_key(self, digit: str) -> list[object]:
        """A key offered after the greeting: the queue or the language from now on (once),
        or 0, an operator as usual. It ends the offers at once: nobody hears the rest of a
        menu they have answered (a key during the greeting skips them)."""
        if self.chosen is not None or self.returning:
            return []  # one key, no maze; a returning caller keeps their place, not offered
        for key, kind, value in ((o[0], o[1], o[2]) for o in self._offered()):
            if key != digit:
                continue
            self.chosen = digit
            if kind == "queue":
                self.queue = value
            elif kind == "language":
                self.language = value
            note = Note("greeting key", (("key", digit), (kind, value)))
            if OFFERS in self.prompts:
                self.prompts.remove(OFFERS)  # the notice still comes; the offers not
                return [note]
            if self.playing != OFFERS:
                return [note]
            self.playing = None
            self._set_state(InboundState.SEEKING_OPERATOR)
            return [note, StopPlayback(OFFERS, OFFERS_TAG), FindOperator(tuple(self.tried))]
        return []

    def _offered(self) -> list[list[str]]:
        """The keys worth offering this caller (not the language they already have)."""
        return [o for o in self.offers if not (o[1] == "language" and o[2] == self.language)]

    # --- hang-ups and the end -------------------------------------------------------------------
    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        if self.state is InboundState.RELEASING:
            return []  # we hung up the caller ourselves; the operator is still being told
        operator_up = self.operator_channel or (self.operator and not self.operator_released)
        return self._end(hang_up=OPERATOR if operator_up else None)

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        if self.state is InboundState.RINGING_OPERATOR:
            return self._on_OperatorFailed(OperatorFailed(ev.now, "hung up"))
        if self.state is InboundState.SURVEYING:
            return []  # they hung up first: that is why the survey runs
        if self.state in RULE_OF_STATE:
            # the caller is not dropped: the rule that has them goes on without the operator
            self.operator_channel = None
            released = [ReleaseOperator(self.operator, "call")] if self.operator else []
            self.operator = None
            return released
        if self.state is InboundState.RELEASING:
            return self._end(hang_up=None)
        if self.state is not InboundState.CONNECTED:
            return []
        if self._wants_survey():
            return self._start_survey()
        return self._end(hang_up=CALLER)

    def _end(self, hang_up: str | None) -> list[object]:
        actions: list[object] = []
        if hang_up:
            actions.append(HangUp(hang_up))
        if self.operator and not self.operator_released:  # they talked once their leg answered
            actions.append(ReleaseOperator(self.operator,
                                           "call" if self.operator_channel else "unused"))
        actions += [DestroyBridge(b) for b in self.bridges]
        self.bridges = []
        self.deadline = None
        self._set_state(InboundState.ENDED)
        return [*actions, Finish()]

    # --- helpers ------------------------------------------------------------------------------
    def _play(self, prompt: str) -> Play:
        self.playing = prompt
        return Play(prompt)

    def _say_connecting(self, now: float) -> list[object]:
        """The ringback gives way to a word; it rings on after it (PromptFinished), and the
        next word, the other one, is due `connecting_every` after this one began."""
        self.connecting_at = None
        if not self.ringing or self.playing is not None:
            return []
        if self.connecting_every > 0:
            self.connecting_at = now + self.connecting_every
        word = CONNECTING_WORDS[self.connecting_said % 2]
        self.connecting_said += 1
        self.ringing, self.playing = False, word
        return [StopRinging(), Play(word, tag=CONNECTING_TAG)]

    def _stop_ringing(self) -> list[object]:
        """The ringback ends (answered, or nobody free), and the word said in its place."""
        self.connecting_at = None
        if self.playing in CONNECTING_WORDS:
            word, self.playing = self.playing, None
            return [StopPlayback(word, CONNECTING_TAG)]
        if not self.ringing:
            return []
        self.ringing = False
        return [StopRinging()]

    def _wait(self, now: float) -> list[object]:
        """Nobody free: say why once, then music in a holding bridge; retry on the timer."""
        self.deadline = now + self.seek_retry
        self._set_state(InboundState.WAITING)
        if HOLD_BRIDGE in self.bridges or self.playing:
            return []  # music already runs, or starts when the current prompt ends
        if not self.told_busy:
            self.told_busy = True
            return [self._play("all-operators-busy")]
        return self._music()

    def _music(self) -> list[object]:
        self.bridges.append(HOLD_BRIDGE)
        return [CreateBridge(HOLD_BRIDGE, "holding"), AddToBridge(HOLD_BRIDGE, CALLER),
                StartBridgeMoh(HOLD_BRIDGE)]

    # --- persistence --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> "InboundMachine":
        data = dict(data)
        data["state"] = InboundState(data["state"])
        codes = data.get("codes") or {}
        data["codes"] = FeatureCodes(**{**codes, "reasons": tuple(codes.get("reasons", ()))})
        if "rule" not in data:  # a snapshot from before `rule`: its state says who has them
            data["rule"] = RULE_OF_STATE.get(data["state"])
        return cls(**data)

    def to_public_dict(self) -> dict:
        return {"call_id": self.call_id, "status": self.state.value, "caller": self.number,
                "operator": self.operator, "started_at": self.started_at,
                "name": self.name, "queue": self.queue, "language": self.language,
                "answered_at": self.answered_at, "holds": self.holds,
                "transfers": self.transfers}
