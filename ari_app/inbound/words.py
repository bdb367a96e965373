"""The inbound call's own words: its states, the events only it reads and the actions only its
adapter carries out. The words every rule shares (hang-ups, the timer, a prompt that ended,
Play, Finish, HandTo, RuleEnded) are the call core's (calls/vocabulary.py).

Kept apart from the machine so that `inbound/machine.py` reads as the call's life and
`inbound/handoffs.py` as what the call hands to other rules, both in these words.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ari_app.calls.errors import WrongState

__all__ = [
    "InboundState", "END_STATES", "HOLD_BRIDGE", "TALK_BRIDGE", "InvalidTransition",
    "CallerArrived", "OperatorFound", "NoOperatorFree", "OperatorAnswered", "OperatorFailed",
    "PutOnHold", "TakeOffHold", "OperatorDigit", "CallerDigit", "TransferCall",
    "TransferTargetUnknown", "EscalationRequested", "SupervisorOnDuty", "NoSupervisor",
    "WarnCaller",
    "Answer", "Ring", "StopRinging", "CreateBridge", "AddToBridge", "DestroyBridge",
    "StartBridgeMoh", "FindOperator", "DialOperator", "ReleaseOperator", "HangUp",
    "PlayToOperator", "LookUpTarget", "FindSupervisor",
]


class InboundState(Enum):
    GREETING = "greeting"
    SEEKING_OPERATOR = "seeking_operator"
    RINGING_OPERATOR = "ringing_operator"
    WAITING = "waiting"
    CONNECTED = "connected"
    HELD = "held"            # the hold rule (ari_app/hold) has the caller
    TRANSFERRING = "transferring"  # the transfer rule (ari_app/transfer) has the caller
    COMPLAINING = "complaining"    # a supervisor is sought, then the complaint rule has them
    QUEUED = "queued"        # the queue rule (ari_app/queue) has the caller
    SURVEYING = "surveying"  # the operator hung up first: the survey rule asks the caller
    WARNING = "warning"      # the warning rule tells an abusive caller (ari_app/warning)
    RELEASING = "releasing"  # caller done (voicemail/callback): the operator is being told
    ENDED = "ended"


END_STATES = frozenset({InboundState.ENDED})
HOLD_BRIDGE, TALK_BRIDGE = "hold", "talk"


class InvalidTransition(WrongState):
    """A request the call's state does not take: a WrongState, so the REST layer answers 409
    without knowing this machine."""


# --- inputs: what happened ----------------------------------------------------------------
@dataclass(frozen=True)
class CallerArrived:
    now: float
    number: str = ""
    name: str = ""
    language: str = "en"
    queue: str | None = None   # where they wait when nobody is free (None: no queue)
    returning: bool = False    # hung up while waiting there a moment ago: "welcome back"


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
    missed: bool = False  # their phone rang out unanswered (not busy, not unreachable)


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
class CallerDigit:
    """A key the caller pressed while talking to the operator."""
    now: float
    digit: str


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
class EscalationRequested:
    """The caller wants a supervisor (the operator's code, REST, or the caller's own key)."""
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class WarnCaller:
    """The operator warns an abusive caller (the REST route or the feature code): the
    first time politely, the second time the call is ended politely."""
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


# --- outputs: what to do --------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    pass


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
    # what the reservation was for them: "call" (they talked: wrap-up starts), "missed" (it
    # rang out: they are paused), "unused" (never reached them)
    after: str = "unused"


@dataclass(frozen=True)
class HangUp:
    party: str
    channel: str | None = None  # a specific leg (a late answer), else the party's current one


@dataclass(frozen=True)
class PlayToOperator:
    prompt: str


@dataclass(frozen=True)
class LookUpTarget:
    """Resolve a directory code keyed by the operator into a TransferCall."""
    code: str
    mode: str


@dataclass(frozen=True)
class FindSupervisor:
    source: str
