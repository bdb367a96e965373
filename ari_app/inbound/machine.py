"""An inbound call from ring to goodbye: greet first, then a free operator, or a holding bridge
with music until one is free. Pure: events in (each with `now`), actions out, one deadline.

Etiquette decided here: the caller is greeted before anything else (company name, then the
recording notice when calls are recorded), is never left in silence while an operator is
sought (ringback while dialing, music while waiting), and is told why they wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.machines import RuleMachine

__all__ = [
    "InboundState", "InboundMachine", "InvalidTransition",
    "CallerArrived", "PromptFinished", "OperatorFound", "NoOperatorFree", "OperatorAnswered",
    "OperatorFailed", "CallerHungUp", "OperatorHungUp", "TimerFired",
    "Answer", "Play", "Ring", "StopRinging", "CreateBridge", "AddToBridge", "DestroyBridge", "StartBridgeMoh",
    "FindOperator", "DialOperator", "ReleaseOperator", "HangUp", "Finish",
    "PutOnHold", "TakeOffHold", "OperatorDigit", "HoldEnded", "StartHold", "ResumeHold",
    "PlayToOperator", "FeatureCodes",
    "TransferCall", "TransferTargetUnknown", "TransferEnded", "EscalationRequested",
    "SupervisorOnDuty", "NoSupervisor", "ComplaintEnded", "CallerDigit",
    "LookUpTarget", "StartTransfer", "FindSupervisor", "StartComplaint", "StartFallback",
]

REASON_WAIT = 1.5  # after the hold code, this long for an optional reason digit

logger = structlog.get_logger()


class InboundState(Enum):
    GREETING = "greeting"
    SEEKING_OPERATOR = "seeking_operator"
    RINGING_OPERATOR = "ringing_operator"
    WAITING = "waiting"
    CONNECTED = "connected"
    HELD = "held"            # the hold rule (ari_app/hold) has the caller
    TRANSFERRING = "transferring"  # the transfer rule (ari_app/transfer) has the caller
    COMPLAINING = "complaining"    # the complaint (ari_app/escalation) has the caller
    RELEASING = "releasing"  # caller done (voicemail/callback): the operator is being told
    ENDED = "ended"


END_STATES = frozenset({InboundState.ENDED})
HOLD_BRIDGE, TALK_BRIDGE = "hold", "talk"
CALLER, OPERATOR = "caller", "operator"


# --- inputs: what happened ----------------------------------------------------------------
@dataclass(frozen=True)
class CallerArrived:
    now: float
    number: str = ""
    name: str = ""
    language: str = "en"


@dataclass(frozen=True)
class PromptFinished:
    now: float
    prompt: str


@dataclass(frozen=True)
class OperatorFound:
    now: float
    endpoint: str


@dataclass(frozen=True)
class NoOperatorFree:
    now: float


@dataclass(frozen=True)
class OperatorAnswered:
    now: float
    channel: str


@dataclass(frozen=True)
class OperatorFailed:
    now: float
    reason: str


@dataclass(frozen=True)
class CallerHungUp:
    now: float


@dataclass(frozen=True)
class OperatorHungUp:
    now: float


@dataclass(frozen=True)
class TimerFired:
    now: float


@dataclass(frozen=True)
class PutOnHold:
    now: float
    reason: str | None = None
    expected_minutes: int | None = None
    source: str = "rest"


@dataclass(frozen=True)
class TakeOffHold:
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class OperatorDigit:
    """A key the operator pressed during the conversation (feature codes)."""
    now: float
    digit: str


@dataclass(frozen=True)
class HoldEnded:
    now: float
    outcome: str  # resumed | voicemail | callback | caller-hung-up


@dataclass(frozen=True)
class TransferCall:
    """Transfer the caller to `target` (a transfer.machine.TransferTarget)."""
    now: float
    target: object
    mode: str = "announced"
    reason: str | None = None
    reason_prompt: str | None = None
    source: str = "rest"


@dataclass(frozen=True)
class TransferTargetUnknown:
    """The operator keyed a directory code that names nobody (or nobody available now)."""
    now: float
    code: str
    why: str = "unknown"


@dataclass(frozen=True)
class TransferEnded:
    now: float
    outcome: str                   # see transfer.machine.Finish
    channel: str | None = None     # connected: the target's leg, now the call's operator
    endpoint: str | None = None
    fallback_intro: tuple[str, ...] = ()
    for_whom: str | None = None


@dataclass(frozen=True)
class EscalationRequested:
    """The caller wants a supervisor (the operator's code, REST, or the caller's own key)."""
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class SupervisorOnDuty:
    now: float
    target: object                 # a transfer.machine.TransferTarget, reserved for this call
    reason_prompt: str | None = "transfer-reason-escalation"


@dataclass(frozen=True)
class NoSupervisor:
    now: float
    why: str


@dataclass(frozen=True)
class ComplaintEnded:
    now: float
    outcome: str                   # returned | ended | caller-hung-up


@dataclass(frozen=True)
class CallerDigit:
    """A key the caller pressed while talking to the operator."""
    now: float
    digit: str


# --- outputs: what to do --------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    pass


@dataclass(frozen=True)
class Play:
    prompt: str


@dataclass(frozen=True)
class Ring:
    """Ringback to the caller while an operator's phone rings: no dead air."""


@dataclass(frozen=True)
class StopRinging:
    pass


@dataclass(frozen=True)
class CreateBridge:
    bridge: str  # HOLD_BRIDGE or TALK_BRIDGE
    kind: str    # "holding" or "mixing"


@dataclass(frozen=True)
class AddToBridge:
    bridge: str
    party: str  # CALLER or OPERATOR


@dataclass(frozen=True)
class DestroyBridge:
    bridge: str


@dataclass(frozen=True)
class StartBridgeMoh:
    bridge: str


@dataclass(frozen=True)
class FindOperator:
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class DialOperator:
    endpoint: str
    attempt: int


@dataclass(frozen=True)
class ReleaseOperator:
    endpoint: str


@dataclass(frozen=True)
class HangUp:
    party: str
    channel: str | None = None  # a specific leg (a late answer), else the party's current one


@dataclass(frozen=True)
class StartHold:
    reason: str | None
    expected_minutes: int | None
    source: str
    holds_before: int


@dataclass(frozen=True)
class ResumeHold:
    source: str


@dataclass(frozen=True)
class PlayToOperator:
    prompt: str


@dataclass(frozen=True)
class LookUpTarget:
    """Resolve a directory code keyed by the operator into a TransferCall."""
    code: str
    mode: str


@dataclass(frozen=True)
class StartTransfer:
    request: TransferCall
    number: int                    # the call's n-th transfer
    caller_number: str


@dataclass(frozen=True)
class FindSupervisor:
    source: str


@dataclass(frozen=True)
class StartComplaint:
    why: str


@dataclass(frozen=True)
class StartFallback:
    """The hold rule's way out (voicemail or callback), without a hold."""
    intro: tuple[str, ...]
    for_whom: str | None
    preselect: str | None
    why: str
    operator_present: bool = False


@dataclass(frozen=True)
class Finish:
    """The call is over: forget its state."""


class InvalidTransition(Exception):
    pass


@dataclass(frozen=True)
class FeatureCodes:
    """What the operator dials during a call; a reason digit may follow the hold code
    (1 = the first reason in the policy, 2 = the second, ...)."""
    hold: str = "*7"
    resume: str = "*8"
    reasons: tuple[str, ...] = ()
    transfer: str = "*2"          # then the directory code and #
    supervisor: str = "*9"
    transfer_mode: str = "announced"
    caller_supervisor: bool = False  # the caller may key the supervisor code too


@dataclass
class InboundMachine(RuleMachine):
    KIND: ClassVar[str] = "inbound"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidTransition

    call_id: str
    recording_notice: bool = True
    seek_retry: float = 3.0  # while waiting, look for a free operator this often (seconds)
    operator_count: int = 1  # how many operators the policy lists: one round tries each once
    state: InboundState = InboundState.GREETING
    number: str = ""
    name: str = ""
    language: str = "en"
    started_at: float | None = None
    prompts: list[str] = field(default_factory=list)  # still to play, in order
    playing: str | None = None
    bridges: list[str] = field(default_factory=list)
    operator: str | None = None          # endpoint reserved for this call
    operator_channel: str | None = None  # set once it answered
    attempt: int = 0
    tried: list[str] = field(default_factory=list)
    told_busy: bool = False
    ringing: bool = False
    deadline: float | None = None        # wall-clock epoch seconds
    codes: FeatureCodes = field(default_factory=FeatureCodes)
    keys: str = ""                       # operator's feature-code digits so far
    holds: int = 0                       # holds so far in this call
    transfers: int = 0                   # transfers so far: as few as possible
    caller_keys: str = ""
    fallback_for: str | None = None      # a message or callback for a transfer target


    def get_timer(self) -> float | None:
        return self.deadline


    # --- handlers ----------------------------------------------------------------------------
    def _on_CallerArrived(self, ev: CallerArrived) -> list[object]:
        if self.started_at is not None:
            return []  # a replayed StasisStart after a reconnect
        self.started_at, self.number, self.name = ev.now, ev.number, ev.name
        self.language = ev.language or "en"
        self.prompts = ["recording-notice"] if self.recording_notice else []
        return [Answer(), self._play("greeting")]

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if self.state is InboundState.RELEASING and ev.prompt.startswith("operator-freed"):
            return self._end(hang_up=OPERATOR)
        if ev.prompt != self.playing:
            return []
        self.playing = None
        if self.state is InboundState.GREETING:
            if self.prompts:
                return [self._play(self.prompts.pop(0))]
            self._set_state(InboundState.SEEKING_OPERATOR)
            return [FindOperator(tuple(self.tried))]
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
        if self.state is InboundState.SEEKING_OPERATOR and not self.ringing:
            self.ringing = True  # ringback while the phone rings: no dead air
            actions.append(Ring())
        self._set_state(InboundState.RINGING_OPERATOR)
        return [*actions, DialOperator(ev.endpoint, self.attempt)]

    def _on_NoOperatorFree(self, ev: NoOperatorFree) -> list[object]:
        self.tried = []  # next round, everybody is a candidate again
        if self.state is InboundState.WAITING:
            self.deadline = ev.now + self.seek_retry
            return []
        if self.state is not InboundState.SEEKING_OPERATOR:
            raise InvalidTransition(f"NoOperatorFree in {self.state.value}")
        return [*self._stop_ringing(), *self._wait(ev.now)]

    def _on_OperatorAnswered(self, ev: OperatorAnswered) -> list[object]:
        if self.state is not InboundState.RINGING_OPERATOR:
            return [HangUp(OPERATOR, ev.channel)]  # answered after we gave up on that leg
        self.operator_channel = ev.channel
        self._set_state(InboundState.CONNECTED)
        actions: list[object] = self._stop_ringing()
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
            actions.append(ReleaseOperator(self.operator))
        self.operator = None
        waiting = self.told_busy or HOLD_BRIDGE in self.bridges
        self._set_state(InboundState.WAITING if waiting else InboundState.SEEKING_OPERATOR)
        if len(self.tried) < self.operator_count:
            return [*actions, FindOperator(tuple(self.tried))]
        self.tried = []  # everybody was tried: wait, and look again on the timer
        return [*actions, *self._stop_ringing(), *self._wait(ev.now)]

    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        if self.deadline is None or ev.now < self.deadline:
            return []
        self.deadline = None
        if self.state is InboundState.WAITING:
            return [FindOperator(tuple(self.tried))]
        if self.state is InboundState.CONNECTED and self.keys == self.codes.hold:
            return self._on_PutOnHold(PutOnHold(ev.now, None, None, "feature-code"))
        return []

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        if self.state is InboundState.RELEASING:
            return []  # we hung up the caller ourselves; the operator is still being told
        return self._end(hang_up=OPERATOR if self.operator_channel or self.operator else None)

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        if self.state is InboundState.RINGING_OPERATOR:
            return self._on_OperatorFailed(OperatorFailed(ev.now, "hung up"))
        if self.state in (InboundState.HELD, InboundState.TRANSFERRING, InboundState.COMPLAINING):
            # the caller is not dropped: the rule that has them goes on without the operator
            self.operator_channel = None
            released = [ReleaseOperator(self.operator)] if self.operator else []
            self.operator = None
            return released
        if self.state is InboundState.RELEASING:
            return self._end(hang_up=None)
        if self.state is not InboundState.CONNECTED:
            return []
        return self._end(hang_up=CALLER)

    # --- hold hand-off -----------------------------------------------------------------------
    def _on_PutOnHold(self, ev: PutOnHold) -> list[object]:
        if self.state is not InboundState.CONNECTED:
            raise InvalidTransition(f"cannot hold a call that is {self.state.value}")
        self._set_state(InboundState.HELD)
        self.keys, self.deadline = "", None
        self.holds += 1
        return [StartHold(ev.reason, ev.expected_minutes, ev.source, self.holds - 1)]

    def _on_TakeOffHold(self, ev: TakeOffHold) -> list[object]:
        if self.state is not InboundState.HELD:
            raise InvalidTransition(f"the call is {self.state.value}, not on hold")
        return [ResumeHold(ev.source)]

    def _on_HoldEnded(self, ev: HoldEnded) -> list[object]:
        if self.state is not InboundState.HELD:
            return []
        if ev.outcome in ("resumed", "handed-over"):  # handed over: a transfer follows
            self._set_state(InboundState.CONNECTED)
            return []
        if ev.outcome == "caller-hung-up":
            return []  # CallerHungUp ends the call
        told = {"callback": "operator-freed-callback", "voicemail": "operator-freed-voicemail"}
        if self.fallback_for:  # a message for the person they wanted, not for this operator
            told["voicemail"] = "operator-freed-message"
        if self.operator_channel is None or ev.outcome not in told:
            return self._end(hang_up=CALLER)
        self._set_state(InboundState.RELEASING)
        return [HangUp(CALLER), PlayToOperator(told[ev.outcome])]

    def _on_OperatorDigit(self, ev: OperatorDigit) -> list[object]:
        codes = self.codes
        if self.state not in (InboundState.CONNECTED, InboundState.HELD):
            return []
        self.keys += ev.digit
        if self.state is InboundState.HELD:
            if self.keys == codes.resume:
                self.keys = ""
                return self._on_TakeOffHold(TakeOffHold(ev.now, "feature-code"))
        elif self.keys.startswith(codes.transfer):  # *2, the directory code, #
            if ev.digit == "*":  # a new code: the transfer code was keyed by mistake
                self.keys = "*"
                return []
            if ev.digit == "#":
                code, self.keys = self.keys[len(codes.transfer):-1], ""
                return [LookUpTarget(code, codes.transfer_mode)] if code else []
            if len(self.keys) > len(codes.transfer) + 8:
                self.keys = ""
            return []
        elif self.keys == codes.supervisor:
            self.keys = ""
            return self._on_EscalationRequested(EscalationRequested(ev.now, "feature-code"))
        elif self.keys.startswith(codes.hold) and len(self.keys) == len(codes.hold) + 1:
            index = int(ev.digit) - 1 if ev.digit.isdigit() else -1
            reason = codes.reasons[index] if 0 <= index < len(codes.reasons) else None
            return self._on_PutOnHold(PutOnHold(ev.now, reason, None, "feature-code"))
        elif self.keys == codes.hold:
            self.deadline = ev.now + REASON_WAIT  # a reason digit may follow
            return []
        known = (codes.hold, codes.resume, codes.transfer, codes.supervisor)
        if not any(code.startswith(self.keys) for code in known):
            self.keys = ev.digit if any(c.startswith(ev.digit) for c in known) else ""
        return []

    def _on_CallerDigit(self, ev: CallerDigit) -> list[object]:
        code = self.codes.supervisor
        if not self.codes.caller_supervisor or self.state is not InboundState.CONNECTED:
            return []
        self.caller_keys = (self.caller_keys + ev.digit)[-len(code):]
        if self.caller_keys == code:
            self.caller_keys = ""
            return self._on_EscalationRequested(EscalationRequested(ev.now, "caller"))
        return []

    # --- transfer and supervisor hand-off ------------------------------------------------------
    def _on_TransferCall(self, ev: TransferCall) -> list[object]:
        if self.state is not InboundState.CONNECTED:
            raise InvalidTransition(f"cannot transfer a call that is {self.state.value}")
        self._set_state(InboundState.TRANSFERRING)
        self.keys, self.deadline = "", None
        self.transfers += 1
        return [StartTransfer(ev, self.transfers, self.number)]

    def _on_TransferTargetUnknown(self, ev: TransferTargetUnknown) -> list[object]:
        if self.state is not InboundState.CONNECTED:
            return []
        return [PlayToOperator("transfer-target-unknown")]

    def _on_TransferEnded(self, ev: TransferEnded) -> list[object]:
        if self.state is not InboundState.TRANSFERRING:
            return []
        if ev.outcome == "caller-hung-up":  # CallerHungUp ends the call
            return [ReleaseOperator(ev.endpoint)] if ev.endpoint else []  # a reserved supervisor
        if ev.outcome == "connected" and ev.channel:
            # the target is now the one the caller talks to: hold, transfer, hang-up follow them
            actions: list[object] = [ReleaseOperator(self.operator)] if self.operator else []
            self.operator, self.operator_channel = ev.endpoint, ev.channel
            self._set_state(InboundState.CONNECTED)
            return actions
        released = [ReleaseOperator(ev.endpoint)] if ev.endpoint else []  # a reserved supervisor
        if ev.outcome in ("declined", "returned") and self.operator_channel:
            self._set_state(InboundState.CONNECTED)
            return released
        # nobody to talk to now: the hold rule's voicemail or callback, for the target
        self._set_state(InboundState.HELD)
        self.fallback_for = ev.for_whom
        message = ev.outcome == "message"  # the caller chose it: the operator is still there
        return [*released, StartFallback(ev.fallback_intro, ev.for_whom,
                                         "voicemail" if message else None,
                                         f"transfer {ev.outcome}", message)]

    def _on_EscalationRequested(self, ev: EscalationRequested) -> list[object]:
        if self.state is not InboundState.CONNECTED:
            raise InvalidTransition(f"cannot escalate a call that is {self.state.value}")
        self._set_state(InboundState.COMPLAINING)  # until the desk says who is on duty
        self.keys, self.deadline = "", None
        return [FindSupervisor(ev.source)]

    def _on_SupervisorOnDuty(self, ev: SupervisorOnDuty) -> list[object]:
        if self.state is not InboundState.COMPLAINING:
            return [ReleaseOperator(getattr(ev.target, "endpoint", ""))]
        self._set_state(InboundState.CONNECTED)
        return self._on_TransferCall(TransferCall(ev.now, ev.target, "announced", "escalation",
                                                  ev.reason_prompt, "escalation"))

    def _on_NoSupervisor(self, ev: NoSupervisor) -> list[object]:
        if self.state is not InboundState.COMPLAINING:
            return []
        return [StartComplaint(ev.why)]

    def _on_ComplaintEnded(self, ev: ComplaintEnded) -> list[object]:
        if self.state is not InboundState.COMPLAINING:
            return []
        if ev.outcome == "returned" and self.operator_channel:
            self._set_state(InboundState.CONNECTED)
            return []
        if ev.outcome == "caller-hung-up":
            return []
        return self._end(hang_up=CALLER)

    # --- helpers ------------------------------------------------------------------------------
    def _play(self, prompt: str) -> Play:
        self.playing = prompt
        return Play(prompt)

    def _stop_ringing(self) -> list[object]:
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

    def _end(self, hang_up: str | None) -> list[object]:
        actions: list[object] = []
        if hang_up:
            actions.append(HangUp(hang_up))
        if self.operator:
            actions.append(ReleaseOperator(self.operator))
        actions += [DestroyBridge(b) for b in self.bridges]
        self.bridges = []
        self.deadline = None
        self._set_state(InboundState.ENDED)
        return [*actions, Finish()]

    # --- persistence --------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict) -> "InboundMachine":
        data = dict(data)
        data["state"] = InboundState(data["state"])
        codes = data.get("codes") or {}
        data["codes"] = FeatureCodes(**{**codes, "reasons": tuple(codes.get("reasons", ()))})
        return cls(**data)

    def to_public_dict(self) -> dict:
        return {"call_id": self.call_id, "status": self.state.value, "caller": self.number,
                "operator": self.operator, "started_at": self.started_at}
