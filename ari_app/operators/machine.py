"""An operator's place in the pool: logged in, paused (with a reason) or logged out, and when
their last call ended. Pure: events with `now` in, notes out; who gets the next call is
decided here too (`next_in_line`), from the operators' machines and `now`.

Decided here: a pause always ends by the operator's own hand (a missed call pauses them as
"missed" until they unpause); an operator is offered a call only when logged in and past the
wrap-up after their last call; the longest idle goes first. Whether the phone is registered
and not in a call is the service's (Asterisk knows it, not the machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum

import structlog

from ari_app.calls.vocabulary import Note
from ari_app.policy import MISSED

__all__ = ["CallEnded", "InvalidTransition", "LogIn", "LogOut", "MISSED", "Missed",
           "OperatorMachine", "OperatorState", "Pause", "Unpause", "next_in_line"]

logger = structlog.get_logger()


class OperatorState(Enum):
    LOGGED_IN = "logged_in"
    PAUSED = "paused"
    LOGGED_OUT = "logged_out"


class InvalidTransition(ValueError):
    """Not from this state (unpause while logged out, log in while paused)."""


# --- events: what the operator (or their phone) did; `source`: feature-code, rest, app ---------
@dataclass(frozen=True)
class LogIn:
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class LogOut:
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class Pause:
    now: float
    reason: str | None = None  # one of the policy's pause_reasons (checked by the caller)
    source: str = "rest"


@dataclass(frozen=True)
class Unpause:
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class Missed:
    """Their phone rang for a call and nobody answered."""
    now: float
    call_id: str


@dataclass(frozen=True)
class CallEnded:
    """They talked with a caller and that call is over for them: wrap-up starts."""
    now: float
    call_id: str


@dataclass
class OperatorMachine:
    endpoint: str
    state: OperatorState
    reason: str | None = None         # why paused
    since: float | None = None        # when the state began; None: never changed (the default)
    call_ended_at: float | None = None

    @classmethod
    def fresh(cls, endpoint: str, login_required: bool) -> OperatorMachine:
        """An operator the app has never seen: logged out only when the policy wants logins."""
        return cls(endpoint, OperatorState.LOGGED_OUT if login_required
                   else OperatorState.LOGGED_IN)

    def handle(self, event: object) -> list[Note]:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is None:
            raise InvalidTransition(f"{type(event).__name__} is not an operator event")
        return handler(event)

    def _on_LogIn(self, ev: LogIn) -> list[Note]:
        if self.state is OperatorState.PAUSED:
            raise InvalidTransition("already logged in, and paused: unpause to take calls")
        if self.state is OperatorState.LOGGED_IN:
            return []  # a harmless repeat
        self._set_state(OperatorState.LOGGED_IN, None, ev.now)
        return [_note("logged in", source=ev.source)]

    def _on_LogOut(self, ev: LogOut) -> list[Note]:
        if self.state is OperatorState.LOGGED_OUT:
            return []
        self._set_state(OperatorState.LOGGED_OUT, None, ev.now)
        return [_note("logged out", source=ev.source)]

    def _on_Pause(self, ev: Pause) -> list[Note]:
        if self.state is OperatorState.LOGGED_OUT:
            raise InvalidTransition("not logged in: log in first")
        if self.state is OperatorState.PAUSED and self.reason == ev.reason:
            return []
        self._set_state(OperatorState.PAUSED, ev.reason, ev.now)  # a new reason: a new pause
        return [_note("paused", reason=ev.reason, source=ev.source)]

    def _on_Unpause(self, ev: Unpause) -> list[Note]:
        if self.state is OperatorState.LOGGED_OUT:
            raise InvalidTransition("not logged in: log in first")
        if self.state is OperatorState.LOGGED_IN:
            return []
        reason = self.reason
        self._set_state(OperatorState.LOGGED_IN, None, ev.now)
        return [_note("unpaused", reason=reason, source=ev.source)]

    def _on_Missed(self, ev: Missed) -> list[Note]:
        if self.state is not OperatorState.LOGGED_IN:
            return []  # logged out or paused while it rang: their own state stands
        self._set_state(OperatorState.PAUSED, MISSED, ev.now)
        return [_note("paused", reason=MISSED, source="app", call=ev.call_id)]

    def _on_CallEnded(self, ev: CallEnded) -> list[Note]:
        self.call_ended_at = ev.now
        return [_note("call ended", call=ev.call_id)]

    def _set_state(self, state: OperatorState, reason: str | None, now: float) -> None:
        logger.debug("operator transition", endpoint=self.endpoint, old=self.state.value,
                     new=state.value, reason=reason)
        self.state, self.reason, self.since = state, reason, now

    # --- who may take a call ---------------------------------------------------------------
    def wrap_up_until(self, wrap_up: float) -> float | None:
        if not wrap_up or self.call_ended_at is None:
            return None
        return self.call_ended_at + wrap_up

    def offered(self, now: float, wrap_up: float) -> bool:
        """Logged in, not paused, and past the wrap-up after their last call."""
        until = self.wrap_up_until(wrap_up)
        return self.state is OperatorState.LOGGED_IN and (until is None or now >= until)

    @property
    def idle_since(self) -> float:
        """Free since their last call ended or they became available, whichever is later;
        never either: 0 (idle the longest)."""
        return max(self.call_ended_at or 0.0, self.since or 0.0)

    # --- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> OperatorMachine:
        return cls(**{**data, "state": OperatorState(data["state"])})

    def to_public_dict(self, wrap_up: float, now: float) -> dict:
        until = self.wrap_up_until(wrap_up)
        return {"endpoint": self.endpoint, "state": self.state.value, "reason": self.reason,
                "since": self.since, "last_call_ended_at": self.call_ended_at,
                "wrap_up_until": until if until is not None and until > now else None}


def next_in_line(operators: Sequence[OperatorMachine], now: float,
                 wrap_up: float) -> list[str]:
    """Who may be offered the next call, longest idle first (ties: the policy's order)."""
    offered = [o for o in operators if o.offered(now, wrap_up)]
    return [o.endpoint for o in sorted(offered, key=lambda o: o.idle_since)]


def _note(label: str, **data: object) -> Note:
    return Note(label, tuple((k, v) for k, v in data.items() if v is not None))
