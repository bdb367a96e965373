"""The warning's adapter: a prompt to the conversation (a playback on the talk bridge, which
the caller and the operator both hear) and the note on the customer card. The shared steps
(the timer, snapshots, call events) are the runner's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ari_app.ari import AriClient
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.calls.rule import CallLegs, RuleBase
from ari_app.calls.vocabulary import prompt_media
from ari_app.customers.service import Customers
from ari_app.warning import machine as w
from ari_app.warning.store import WarningStore

__all__ = ["WarningRule"]


class WarningRule(RuleBase):
    NAME: ClassVar[str] = "warning"
    MACHINE: ClassVar[type] = w.WarningMachine

    def __init__(self, ari: AriClient, store: WarningStore, customers: Customers | None) -> None:
        self.ari, self.store, self.customers = ari, store, customers

    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        return w.WarningMachine(legs.call_id), w.WarningStarted(
            now, int(request.get("count", 1)), request.get("source", "rest"))

    async def do(self, legs: CallLegs, machine: w.WarningMachine, action: object
                 ) -> object | None:
        match action:
            case w.Announce(prompt=prompt, tag=tag):
                await self.ari.call(ops.BRIDGE_PLAY, bridgeId=legs.talk_bridge,
                                    media=[prompt_media(prompt)], lang=legs.language,
                                    playbackId=ids.playback(legs.call_id, tag, prompt, w.BOTH))
            case w.SaveWarning(count=count):
                if self.customers is not None:  # the next operator sees it on the card
                    await self.customers.note(
                        legs.number, "warned for abuse" if count <= 1 else "call ended for abuse",
                        call_id=legs.call_id, count=count, operator=legs.operator)
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None
