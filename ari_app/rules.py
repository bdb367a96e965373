"""What the inbound call hands a rule (hold, transfer, complaint) that takes over its caller
for a while, and what the rule hands back. Shared so rules never import each other."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallLegs", "RuleResult"]


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


@dataclass(frozen=True)
class RuleResult:
    outcome: str | None = None      # set once the rule is done with the caller
    deadline: float | None = None   # when the rule's timer must fire next
    channel: str | None = None      # transfer: the target's leg, now the call's operator
    endpoint: str | None = None     # ... and its endpoint (or a reserved one to give back)
    fallback_intro: tuple[str, ...] = ()  # transfer failed: what to say before the way out
    for_whom: str | None = None     # ... and whom a message or callback is for
