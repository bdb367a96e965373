"""The one executor of the shared actions on a call's legs (calls/vocabulary.py), for every
rule: detach and reattach the caller, music, prompts to any party.

Music is channel music on hold on the caller's leg, paused for each prompt and started again
after it: the one sequence that was heard to work here (bridge music did not come back). A
prompt to the caller right after the music's stop needs no stop request: Asterisk ends the
music itself when it opens the prompt's stream (file.c, ast_openstream_full deactivates the
channel's generator), so `plan` drops that request (one of a check-in's four).

The music after a prompt is the machine's step, and a step waits while storage is away; so the
executor remembers which prompts paused the music, and `resume_music` puts it back when one of
them ends during an outage (no dead air). The machine's next step takes it off again unless
that step starts the music itself (`before_step`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ari_app.ari import AriClient, AriNotFound
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.calls.rule import CallLegs
from ari_app.calls.vocabulary import (CALLER, OPERATOR, DetachCaller, Finish, Note, Play,
                                      ReattachCaller, StartMusic, StopMusic, StopPlayback)

__all__ = ["LegActions", "MusicYields", "SHARED"]


class MusicYields:
    """A StopMusic right before a prompt to the caller: the prompt takes the music's place."""


MUSIC_YIELDS = MusicYields()
SHARED = (DetachCaller, ReattachCaller, StartMusic, StopMusic, Play, StopPlayback, MusicYields)


class LegActions:
    def __init__(self, ari: AriClient, moh_class: str) -> None:
        self.ari, self.moh_class = ari, moh_class
        # call -> playback ids of its prompts since a StopMusic paused its music (no entry:
        # the music is not paused)
        self._paused: dict[str, set[str]] = {}
        self.resumed: set[str] = set()  # calls whose music resume_music put back

    async def still_playing(self, playback_id: str) -> bool:
        """Asterisk still has the playback (after a restart: it may have ended while away)."""
        try:
            await self.ari.call(ops.PLAYBACK, playbackId=playback_id)
        except AriNotFound:
            return False
        return True

    async def resume_music(self, call_id: str, playback_id: str) -> bool:
        """A prompt that paused the caller's music ended while the call waits for storage:
        the music comes back now instead of after the outage."""
        if playback_id not in self._paused.get(call_id, ()):
            return False
        self._paused[call_id].discard(playback_id)
        await self.ari.start_moh(call_id, self.moh_class)
        self.resumed.add(call_id)
        return True

    async def before_step(self, call_id: str, actions: Sequence[object]) -> None:
        """The machine acts again: music resume_music put back is taken off first, unless the
        step says what the music does itself (the sequence the machine knows stays true)."""
        if call_id not in self.resumed:
            return
        if any(isinstance(a, (StartMusic, StopMusic)) for a in actions):
            self.resumed.discard(call_id)
        elif any(not isinstance(a, (Note, Finish)) for a in actions):
            self.resumed.discard(call_id)
            await self.ari.stop_moh(call_id)

    def forget(self, call_id: str | None = None) -> None:
        """The call is over or driven elsewhere (None: every call): nothing of it is kept."""
        if call_id is None:
            self._paused.clear()
            self.resumed.clear()
        else:
            self._paused.pop(call_id, None)
            self.resumed.discard(call_id)

    @staticmethod
    def plan(actions: Sequence[object]) -> list[object]:
        """The step's actions with each StopMusic that a prompt to the caller follows at once
        made a MusicYields: no request, the same bookkeeping (the music is paused)."""
        planned = list(actions)
        for i in range(len(planned) - 1):
            after = planned[i + 1]
            if isinstance(planned[i], StopMusic) and isinstance(after, Play) \
                    and after.party == CALLER:
                planned[i] = MUSIC_YIELDS
        return planned

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
                self._paused.pop(caller, None)
                await self.ari.start_moh(caller, self.moh_class)
            case StopMusic():
                self._paused.setdefault(caller, set())
                await self.ari.stop_moh(caller)
            case MusicYields():
                self._paused.setdefault(caller, set())
            case Play(prompt=prompt, media=media, tag=tag, party=party):
                channel = parties.get(party)
                if channel:  # a party that has left hears nothing
                    playback = ids.playback(caller, tag, prompt, party)
                    if party == CALLER and caller in self._paused:
                        self._paused[caller].add(playback)
                    await self.ari.play(channel, list(media) or [f"sound:etiquette/{prompt}"],
                                        playback, lang=legs.language)
            case StopPlayback(prompt=prompt, tag=tag, party=party):
                await self.ari.stop_playback(ids.playback(caller, tag, prompt, party))
            case _:
                raise TypeError(f"not a shared action: {action!r}")
