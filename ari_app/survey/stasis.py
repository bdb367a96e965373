"""The survey's adapter: the caller's keys in, the score on the customer card out. The
shared steps (detach, prompts, the timer, snapshots, call events) are the runner's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ari_app.calls.rule import CallLegs, RuleBase
from ari_app.customers.service import Customers
from ari_app.survey import machine as s
from ari_app.survey.store import SurveyStore

__all__ = ["SurveyRule"]


class SurveyRule(RuleBase):
    NAME: ClassVar[str] = "survey"
    MACHINE: ClassVar[type] = s.SurveyMachine
    WANTS: ClassVar[frozenset[str]] = frozenset({"ChannelDtmfReceived"})
    STEPS: ClassVar[Mapping[str, str]] = {"survey started": "started"}

    def __init__(self, store: SurveyStore, customers: Customers | None, *,
                 answer_window: float = 8.0, limit: float = 10.0) -> None:
        self.store, self.customers = store, customers
        self.answer_window, self.limit = answer_window, limit

    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        machine = s.SurveyMachine(legs.call_id, answer_window=self.answer_window,
                                  limit=self.limit)
        return machine, s.SurveyStarted(now, request.get("queue"), request.get("operator"))

    async def translate(self, legs: CallLegs, machine, event: dict, now: float) -> list[object]:
        if (event.get("type") == "ChannelDtmfReceived"
                and event["channel"]["id"] == legs.call_id):
            return [s.DigitPressed(now, event["digit"])]
        return []

    async def do(self, legs: CallLegs, machine: s.SurveyMachine, action: object) -> object | None:
        match action:
            case s.SaveAnswer(score=score, queue=queue, operator=operator):
                if self.customers is not None:  # the repeat caller's card shows the score
                    await self.customers.note(legs.number, "survey answered",
                                              call_id=legs.call_id, score=score, queue=queue,
                                              operator=operator)
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None
