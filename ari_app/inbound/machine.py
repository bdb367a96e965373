"""An inbound call from ring to goodbye: greet first, then a free operator, or a holding bridge
with music until one is free. Pure: events in (each with `now`), actions out, one deadline.

Etiquette decided here: the caller is greeted before anything else (company name, then the
recording notice when calls are recorded), is never left in silence while an operator is
sought (ringback while dialing, music while waiting), and is told why they wait.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

import structlog

__all__ = [
    "InboundState", "InboundMachine", "InvalidTransition",
    "CallerArrived", "PromptFinished", "OperatorFound", "NoOperatorFree", "OperatorAnswered",
    "OperatorFailed", "CallerHungUp", "OperatorHungUp", "TimerFired",
    "Answer", "Play", "Ring", "StopRinging", "CreateBridge", "AddToBridge", "DestroyBridge", "StartBridgeMoh",
    "FindOperator", "DialOperator", "ReleaseOperator", "HangUp", "Finish",
]

logger = structlog.get_logger()


class InboundState(Enum):
    GREETING = "greeting"
    SEEKING_OPERATOR = "seeking_operator"
    RINGING_OPERATOR = "ringing_operator"
    WAITING = "waiting"
    CONNECTED = "connected"
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
class Finish:
    """The call is over: forget its state."""


class InvalidTransition(Exception):
    pass


@dataclass
class InboundMachine:
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

    # --- the one entry point ---------------------------------------------------------------
    def handle(self, event: object) -> list[object]:
        if self.state in END_STATES:
            return []  # late events after the end (a second hang-up) are harmless repeats
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is None:
            raise InvalidTransition(f"{type(event).__name__} is not an inbound-call event")
        return handler(event)

    def get_timer(self) -> float | None:
        return self.deadline

    def _set_state(self, state: InboundState) -> None:
        logger.debug("inbound transition", old=self.state.value, new=state.value)
        self.state = state

    # --- handlers ----------------------------------------------------------------------------
    def _on_CallerArrived(self, ev: CallerArrived) -> list[object]:
        if self.started_at is not None:
            return []  # a replayed StasisStart after a reconnect
        self.started_at, self.number, self.name = ev.now, ev.number, ev.name
        self.language = ev.language or "en"
        self.prompts = ["recording-notice"] if self.recording_notice else []
        return [Answer(), self._play("greeting")]

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
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
        return []

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        return self._end(hang_up=OPERATOR if self.operator else None)

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        if self.state is InboundState.RINGING_OPERATOR:
            return self._on_OperatorFailed(OperatorFailed(ev.now, "hung up"))
        if self.state is not InboundState.CONNECTED:
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
    def to_dict(self) -> dict:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "InboundMachine":
        data = dict(data)
        data["state"] = InboundState(data["state"])
        return cls(**data)

    def to_public_dict(self) -> dict:
        return {"call_id": self.call_id, "status": self.state.value, "caller": self.number,
                "operator": self.operator, "started_at": self.started_at}
