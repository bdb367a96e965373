"""The one module that makes and reads the ids of a call's resources.

The caller's channel id is the call id; every other resource of the call is `<call>~<what>`
(an operator's leg `~op1`, a bridge `~talk`, a recording `~voicemail-<take>`), and a playback is
`<call>~<tag>-<party>~<prompt>`: any event routes to its call without a lookup table, also
after a restart, and a playback's end says which prompt ended, for whom.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SEP", "Playback", "call_of", "is_part_of_call", "part", "playback", "read_playback",
           "what_of"]

SEP = "~"


def call_of(resource_id: str) -> str:
    return resource_id.split(SEP, 1)[0]


def part(call_id: str, what: str) -> str:
    """A resource of the call: a leg, a bridge, a snoop, a recording."""
    return f"{call_id}{SEP}{what}"


def is_part_of_call(resource_id: str) -> bool:
    """Not the caller's own channel, but something the app made for a call."""
    return SEP in resource_id


def what_of(resource_id: str) -> str:
    """`~op1` of `<call>~op1`; "" for the caller's channel."""
    return resource_id.split(SEP, 1)[1] if SEP in resource_id else ""


@dataclass(frozen=True)
class Playback:
    call_id: str
    tag: str
    party: str
    prompt: str


def playback(call_id: str, tag: str, prompt: str, party: str = "caller") -> str:
    return f"{call_id}{SEP}{tag}-{party}{SEP}{prompt}"


def read_playback(playback_id: str) -> Playback | None:
    """None for a playback that is not one of ours (a test's, another app's)."""
    parts = playback_id.split(SEP)
    if len(parts) != 3 or "-" not in parts[1]:
        return None
    tag, party = parts[1].rsplit("-", 1)
    return Playback(parts[0], tag, party, parts[2])
