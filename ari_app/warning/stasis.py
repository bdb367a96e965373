"""The warning's adapter: the note on the customer card. The prompts to both legs, the timer,
snapshots and call events are the runner's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ari_app.calls.rule import CallLegs, RuleBase
from ari_app.customers.service import Customers
from ari_app.warning import machine as w
from ari_app.warning.store import WarningStore

__all__ = ["WarningRule"]


class WarningRule(RuleBase):
    NAME: ClassVar[str] = "warning"
    MACHINE: ClassVar[type] = w.WarningMachine

    def __init__(self, store: WarningStore, customers: Customers | None) -> None:
        self.store, self.customers = store, customers

    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        return w.WarningMachine(legs.call_id), w.WarningStarted(
            now, int(request.get("count", 1)), request.get("source", "rest"))

    async def do(self, legs: CallLegs, machine: w.WarningMachine, action: object
                 ) -> object | None:
        match action:
            case w.SaveWarning(count=count):
                if self.customers is not None:  # the next operator sees it on the card
                    await self.customers.note(
                        legs.number, "warned for abuse" if count <= 1 else "call ended for abuse",
                        call_id=legs.call_id, count=count, operator=legs.operator)
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None
