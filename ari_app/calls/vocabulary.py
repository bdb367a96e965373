"""The words every rule's machine shares with the call core.

Events the core sends whichever rule has the caller (a hang-up, the rule's timer, a prompt that
ended), and actions on the call's legs that one executor (`calls/executor.py`) carries out for
every rule. A rule's own words (a transfer's DialTarget, the hold's SaveCallback) stay in its
machine; its adapter carries those out.

The call hands its caller to a rule by name (`HandTo`) and gets one `RuleEnded` back: it never
builds another rule's events or reads its ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CALLER", "OPERATOR", "TARGET", "prompt_media",
    "CallerHungUp", "OperatorHungUp", "TimerFired", "PromptFinished", "RecordingFinished",
    "RuleEnded", "ToRule",
    "DetachCaller", "ReattachCaller", "StartMusic", "StopMusic", "Play", "StopPlayback", "Note",
    "Finish", "HandTo", "Ask",
]

# the parties of a call, as machines name them (a leg's channel is the adapter's business)
CALLER, OPERATOR, TARGET = "caller", "operator", "target"


# --- events: what happened to the call -------------------------------------------------------
@dataclass(frozen=True)
class CallerHungUp:
    now: float


@dataclass(frozen=True)
class OperatorHungUp:
    now: float


@dataclass(frozen=True)
class TimerFired:
    """The rule's deadline (`get_timer()`) has come."""
    now: float


@dataclass(frozen=True)
class PromptFinished:
    now: float
    prompt: str
    tag: str = ""  # which playback of that prompt (a stopped one also reports finished)
    party: str = CALLER


@dataclass(frozen=True)
class RecordingFinished:
    now: float
    duration: float
    saved: bool = True


@dataclass(frozen=True)
class RuleEnded:
    """The rule that had the caller is done with them: its outcome and what goes with it
    (a transfer's new operator leg, what to say before a way out, ...)."""
    now: float
    rule: str
    outcome: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToRule:
    """A request for the rule that has the caller now (the REST API's "complete the
    transfer", the call's "take them off hold"); refused when no such rule has them."""
    rule: str
    event: object


# --- actions on the call's legs ---------------------------------------------------------------
@dataclass(frozen=True)
class DetachCaller:
    """Take the caller out of the talk bridge (the operator no longer hears them)."""


@dataclass(frozen=True)
class ReattachCaller:
    """Put the caller back into the talk bridge."""


@dataclass(frozen=True)
class StartMusic:
    """Music on hold on the caller's leg: no dead air."""


@dataclass(frozen=True)
class StopMusic:
    pass


def prompt_media(prompt: str) -> str:
    """The media of one of the catalog's prompts (rendered or dropped in by the admin)."""
    return f"sound:etiquette/{prompt}"


@dataclass(frozen=True)
class Play:
    prompt: str                       # names the playback (PromptFinished carries it back)
    media: tuple[str, ...] = ()       # what is heard; default: the prompt itself
    tag: str = ""                     # unique within the rule: ids are built from it
    party: str = CALLER               # whose leg hears it


@dataclass(frozen=True)
class StopPlayback:
    prompt: str
    tag: str = ""
    party: str = CALLER


@dataclass(frozen=True)
class Note:
    """An etiquette fact for the call's events (a breach, a choice, a check-in)."""
    event: str
    data: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Finish:
    """The machine is done: its snapshot goes; `outcome` (and `data`) go back to the call."""
    outcome: str = "ended"
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HandTo:
    """The call hands its caller to a rule (`hold`, `transfer`, `complaint`, ...) by name;
    `request` is what that rule's `begin` reads."""
    rule: str
    request: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ask:
    """The call asks the rule that has the caller for something in that rule's own words
    (`Ask("hold", "resume", {"source": "phone"})`); the rule's adapter maps it to its event."""
    rule: str
    what: str
    data: Mapping[str, Any] = field(default_factory=dict)
