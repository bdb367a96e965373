"""The codes an operator dials from their desk phone (not during a call) to log in, log out,
pause and unpause. Pure: the dialled digits in, the operator's event out (or None for a code
that is not one of them, or a reason digit the policy does not have).
"""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.operators.machine import LogIn, LogOut, Pause, Unpause

__all__ = ["DeskCodes", "desk_request"]

SOURCE = "feature-code"


@dataclass(frozen=True)
class DeskCodes:
    """A reason digit may follow the pause code: 1 = the policy's first pause reason, ..."""
    login: str = "*41"
    logout: str = "*42"
    pause: str = "*43"
    unpause: str = "*44"
    reasons: tuple[str, ...] = ()


def desk_request(codes: DeskCodes, dialed: str, now: float
                 ) -> LogIn | LogOut | Pause | Unpause | None:
    if dialed == codes.login:
        return LogIn(now, SOURCE)
    if dialed == codes.logout:
        return LogOut(now, SOURCE)
    if dialed == codes.unpause:
        return Unpause(now, SOURCE)
    if dialed == codes.pause:
        return Pause(now, None, SOURCE)
    digit = dialed[len(codes.pause):]
    if dialed.startswith(codes.pause) and len(digit) == 1 and digit in "123456789":
        index = int(digit) - 1
        if index < len(codes.reasons):
            return Pause(now, codes.reasons[index], SOURCE)
    return None
