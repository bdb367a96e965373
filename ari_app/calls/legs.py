"""The one executor of the shared actions on a call's legs (calls/vocabulary.py), for every
rule: detach and reattach the caller, music, prompts to any party.

Music is channel music on hold on the caller's leg, stopped for each prompt and started again
after it: the one sequence that was heard to work here (bridge music did not come back).
"""

from __future__ import annotations

from collections.abc import Mapping

from ari_app.ari import AriClient
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.calls.rule import CallLegs
from ari_app.calls.vocabulary import (CALLER, OPERATOR, DetachCaller, Play, ReattachCaller,
                                      StartMusic, StopMusic, StopPlayback)

__all__ = ["LegActions", "SHARED"]

SHARED = (DetachCaller, ReattachCaller, StartMusic, StopMusic, Play, StopPlayback)


class LegActions:
    def __init__(self, ari: AriClient, moh_class: str) -> None:
        self.ari, self.moh_class = ari, moh_class

    @staticmethod
    def channels(legs: CallLegs, more: Mapping[str, str | None]) -> dict[str, str | None]:
        return {CALLER: legs.call_id, OPERATOR: legs.operator_channel, **more}

    async def do(self, legs: CallLegs, parties: Mapping[str, str | None], action: object) -> None:
        caller = legs.call_id
        match action:
            case DetachCaller():
                await self.ari.call(ops.REMOVE_FROM_BRIDGE, bridgeId=legs.talk_bridge,
                                    channel=caller)
            case ReattachCaller():
                await self.ari.add_to_bridge(legs.talk_bridge, caller)
            case StartMusic():
                await self.ari.start_moh(caller, self.moh_class)
            case StopMusic():
                await self.ari.stop_moh(caller)
            case Play(prompt=prompt, media=media, tag=tag, party=party):
                channel = parties.get(party)
                if channel:  # a party that has left hears nothing
                    await self.ari.play(channel, list(media) or [f"sound:etiquette/{prompt}"],
                                        ids.playback(caller, tag, prompt, party),
                                        lang=legs.language)
            case StopPlayback(prompt=prompt, tag=tag, party=party):
                await self.ari.stop_playback(ids.playback(caller, tag, prompt, party))
            case _:
                raise TypeError(f"not a shared action: {action!r}")
