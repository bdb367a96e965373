"""The feature codes the operator (and, if the policy lets them, the caller) key during a call.

Pure: the keys so far and one digit in, the keys to keep and what they ask for out. The call
decides what an intent means in its state (inbound/machine.py); nothing here knows the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FeatureCodes", "Intent", "NOTHING", "REASON_WAIT", "caller_key", "operator_key",
           "waits_for_reason"]

REASON_WAIT = 1.5  # after the hold code, this long for an optional reason digit
MAX_DIRECTORY_DIGITS = 8  # after the transfer code: more is a mistake, start again


@dataclass(frozen=True)
class FeatureCodes:
    """What the operator dials during a call; a reason digit may follow the hold code
    (1 = the first reason in the policy, 2 = the second, ...)."""
    hold: str = "*7"
    resume: str = "*8"
    reasons: tuple[str, ...] = ()
    transfer: str = "*2"          # then the directory code and #
    supervisor: str = "*9"
    warn: str = "*5"              # warn an abusive caller (a second time ends the call)
    transfer_mode: str = "announced"
    caller_supervisor: bool = False  # the caller may key the supervisor code too


@dataclass(frozen=True)
class Intent:
    """What the keys ask for: `hold` (value: the reason, None when no digit named one),
    `resume`, `transfer` (value: the directory code), `supervisor`, `warn`, `wait-for-reason` (the
    hold code alone: a reason digit may follow), or `none` yet."""
    kind: Literal["none", "hold", "resume", "transfer", "supervisor", "warn",
                  "wait-for-reason"]
    value: str | None = None


NOTHING = Intent("none")


def operator_key(codes: FeatureCodes, keys: str, digit: str, held: bool
                 ) -> tuple[str, Intent]:
    """The operator's next digit: the keys to keep, and what they ask for. While the caller
    is held only the resume code counts."""
    keys += digit
    if held:
        if keys == codes.resume:
            return "", Intent("resume")
    elif keys.startswith(codes.transfer):  # *2, the directory code, #
        if digit == "*":  # a new code: the transfer code was keyed by mistake
            return "*", NOTHING
        if digit == "#":
            code = keys[len(codes.transfer):-1]
            return "", Intent("transfer", code) if code else NOTHING
        if len(keys) > len(codes.transfer) + MAX_DIRECTORY_DIGITS:
            return "", NOTHING
        return keys, NOTHING
    elif keys == codes.supervisor:
        return "", Intent("supervisor")
    elif keys == codes.warn:
        return "", Intent("warn")
    elif keys.startswith(codes.hold) and len(keys) == len(codes.hold) + 1:
        index = int(digit) - 1 if digit.isdigit() else -1
        reason = codes.reasons[index] if 0 <= index < len(codes.reasons) else None
        return "", Intent("hold", reason)
    elif keys == codes.hold:
        return keys, Intent("wait-for-reason")
    known = (codes.hold, codes.resume, codes.transfer, codes.supervisor, codes.warn)
    if not any(code.startswith(keys) for code in known):  # no code starts so: start again
        keys = digit if any(code.startswith(digit) for code in known) else ""
    return keys, NOTHING


def caller_key(codes: FeatureCodes, keys: str, digit: str) -> tuple[str, Intent]:
    """The caller's next digit: only the supervisor code is theirs (the last keys count)."""
    code = codes.supervisor
    keys = (keys + digit)[-len(code):]
    if keys == code:
        return "", Intent("supervisor")
    return keys, NOTHING


def waits_for_reason(codes: FeatureCodes, keys: str) -> bool:
    """The hold code was keyed and no reason digit came: the hold starts without one."""
    return keys == codes.hold
