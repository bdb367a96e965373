"""One timer per call, from a wall-clock deadline.

Deadlines live in the machines' snapshots in Redis as epoch seconds, so they survive a restart
and another instance can take a call over; the event loop runs on its own monotonic clock, so
a deadline is turned into a delay when it is armed. When it fires, `fire(call_id)` runs
(an adapter submits a tick to the call's lane).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

__all__ = ["CallTimers"]


class CallTimers:
    def __init__(self, fire: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._fire, self.clock = fire, clock
        self._timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}  # deadline, handle

    def arm(self, call_id: str, deadlines: Iterable[float | None]) -> None:
        """The earliest of `deadlines` (None: none), replacing the call's timer (kept as it
        is when it is already set for that moment: most of a call's steps move no deadline)."""
        due = [d for d in deadlines if d is not None]
        if not due:
            self.cancel(call_id)
            return
        when = min(due)
        armed = self._timers.get(call_id)
        if armed is not None and armed[0] == when:
            return
        self.cancel(call_id)
        loop = asyncio.get_running_loop()
        self._timers[call_id] = (when, loop.call_at(loop.time() + max(0.0, when - self.clock()),
                                                    self._fired, call_id))

    def _fired(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        self._fire(call_id)

    def cancel(self, call_id: str) -> None:
        armed = self._timers.pop(call_id, None)
        if armed is not None:
            armed[1].cancel()

    def cancel_all(self) -> None:
        for call_id in list(self._timers):
            self.cancel(call_id)

    def __len__(self) -> int:
        return len(self._timers)
