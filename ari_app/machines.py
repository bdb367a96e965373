"""What every rule's pure machine shares: the one entry point that hands an event to its
`_on_<Event>` handler, the choke point every state change goes through (and is logged at),
and the snapshot stored in Redis."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import structlog

__all__ = ["RuleMachine"]

logger = structlog.get_logger()


class RuleMachine:
    KIND: ClassVar[str]                       # "hold", "transfer", ... (logs, errors)
    END_STATES: ClassVar[frozenset[Any]]
    INVALID: ClassVar[type[Exception]]        # raised for an event of another machine
    state: Any

    def handle(self, event: object) -> list[object]:
        """Events of this machine's own module only; after the end, every event is a no-op
        (a late hang-up, a second one)."""
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is None or type(event).__module__ != type(self).__module__:
            raise self.INVALID(f"{type(event).__module__}.{type(event).__name__} is not a "
                               f"{self.KIND} event")
        if self.state in self.END_STATES:
            return []
        return handler(event)

    def _set_state(self, state: Any) -> None:
        logger.debug(f"{self.KIND} transition", old=self.state.value, new=state.value)
        self.state = state

    def to_dict(self) -> dict:
        data = asdict(self)  # type: ignore[call-overload]
        data["state"] = self.state.value
        return data
