"""ARI adapter for the transfer rule: raw events -> TransferMachine, its decisions -> ARI calls.

Like the hold, it runs inside the call's own lane: the inbound adapter hands it the call's legs
and the events that belong to the transfer, and gets back the outcome and the next deadline.
The target's leg is `<call>~tx<n>` (n-th transfer of the call), the consultation bridge
`<call>~consult`, playbacks `<call>~<tag>-<party>~<prompt>`: every event routes to its call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ari_app.ari import AriClient, AriError, AriNotFound, tolerated, unless_gone
from ari_app.ari import operations as ops
from ari_app.operators.service import desk_phone_variables
from ari_app.rules import CallLegs, RuleResult
from ari_app.timeline import Timeline
from ari_app.transfer import machine as t
from ari_app.transfer.store import TransferStore

__all__ = ["TransferStasis", "target_leg"]

SEP = "~"
TARGET_ARG = "transfer-target"


def target_leg(call_id: str, number: int) -> str:
    return f"{call_id}{SEP}tx{number}"


def is_target_leg(channel_id: str) -> bool:
    return SEP in channel_id and channel_id.split(SEP, 1)[1].startswith("tx")


class TransferStasis:
    def __init__(self, ari: AriClient, store: TransferStore, timeline: Timeline, *, app: str,
                 settings: t.TransferSettings, moh_class: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.timeline = ari, store, timeline
        self.app, self.settings, self.moh_class, self.clock = app, settings, moh_class, clock

    # --- entry points (called from the call's lane) ------------------------------------------
    async def start(self, legs: CallLegs, request: t.TransferRequested, number: int) -> RuleResult:
        machine = t.TransferMachine(legs.call_id, settings=self.settings,
                                    target_leg=target_leg(legs.call_id, number))
        return await self._run(legs, machine, request)

    async def feed(self, legs: CallLegs, event: object) -> RuleResult:
        machine = await self.store.load(legs.call_id)
        if machine is None:
            return RuleResult(outcome="gone")
        return await self._run(legs, machine, event)

    async def resync(self, legs: CallLegs, live: frozenset[str]) -> RuleResult:
        """After a restart or a dropped WebSocket: what ended while we were away."""
        machine = await self.store.load(legs.call_id)
        if machine is None:
            return RuleResult(outcome="gone")
        now = self.clock()
        leg = machine.target_leg
        if machine.state is t.TransferState.RINGING and leg and leg not in live:
            return await self._run(legs, machine, t.TargetFailed(now, "lost while the app was away"))
        if machine.target_channel and machine.target_channel not in live:
            return await self._run(legs, machine, t.TargetHungUp(now))
        for party, (prompt, tag) in list(machine.playing.items()):
            try:
                await self.ari.call(ops.PLAYBACK, playbackId=self.playback_id(legs.call_id, tag,
                                                                              party, prompt))
            except AriNotFound:
                return await self._run(legs, machine, t.PromptFinished(now, party, prompt, tag))
        return RuleResult(deadline=machine.get_timer())

    def translate(self, legs: CallLegs, event: dict, now: float) -> list[object]:
        """A raw ARI event during a transfer -> the transfer's events (KeyError if malformed)."""
        kind = event.get("type")
        channel = (event.get("channel") or {}).get("id", "")
        if kind == "StasisStart" and (event.get("args") or [None])[0] == TARGET_ARG:
            return [t.TargetAnswered(now, channel)]
        if kind == "ChannelDestroyed" and is_target_leg(channel):  # never answered
            return [t.TargetFailed(now, event.get("cause_txt") or "no answer")]
        if kind == "StasisEnd" and is_target_leg(channel):
            return [t.TargetHungUp(now)]
        if kind == "PlaybackFinished":
            parts = event["playback"]["id"].split(SEP)
            if len(parts) == 3 and "-" in parts[1]:
                tag, party = parts[1].split("-", 1)
                return [t.PromptFinished(now, party, parts[2], tag)]
            return []
        if kind == "ChannelDtmfReceived":
            party = (t.CALLER if channel == legs.call_id else
                     t.OPERATOR if channel == legs.operator_channel else
                     t.TARGET if is_target_leg(channel) else None)
            return [t.DigitPressed(now, party, event["digit"])] if party else []
        return []

    # --- one step -------------------------------------------------------------------------------
    async def _run(self, legs: CallLegs, machine: t.TransferMachine, event: object) -> RuleResult:
        actions = machine.handle(event)
        if machine.state in t.END_STATES:
            await self.store.delete(legs.call_id)
        else:
            await self.store.save(machine)
        finish, follow = None, []
        for action in actions:
            if isinstance(action, t.Finish):
                finish = action
            else:
                event = await self._do(legs, machine, action)
                if event is not None:
                    follow.append(event)
        result = RuleResult(deadline=machine.get_timer())
        if finish is not None:
            connected = finish.outcome == "connected"
            result = RuleResult(outcome=finish.outcome, fallback_intro=finish.intro,
                                for_whom=finish.for_whom,
                                channel=machine.target_channel if connected else None,
                                endpoint=machine.target.endpoint if machine.target else None)
        for event in follow:  # a dial that failed at once
            result = await self._run(legs, machine, event)
        return result

    async def _do(self, legs: CallLegs, machine: t.TransferMachine, action: object) -> object | None:
        caller, talk = legs.call_id, legs.talk_bridge
        consult = f"{caller}{SEP}consult"
        target = machine.target_channel or machine.target_leg
        with tolerated(type(action).__name__):
            match action:
                case t.DetachCaller():
                    await self.ari.call(ops.REMOVE_FROM_BRIDGE, bridgeId=talk, channel=caller)
                case t.ReattachCaller():
                    await self.ari.add_to_bridge(talk, caller)
                case t.StartMusic():
                    await self.ari.start_moh(caller, self.moh_class)
                case t.StopMusic():
                    await self.ari.stop_moh(caller)
                case t.Play(party=party, prompt=prompt, media=media, tag=tag):
                    channel = {t.CALLER: caller, t.OPERATOR: legs.operator_channel,
                               t.TARGET: target}[party]
                    if channel:
                        await self.ari.play(channel, list(media),
                                            self.playback_id(caller, tag, party, prompt),
                                            lang=legs.language)
                case t.StopPlayback(party=party, prompt=prompt, tag=tag):
                    await self.ari.stop_playback(self.playback_id(caller, tag, party, prompt))
                case t.DialTarget(endpoint=endpoint, timeout=timeout):
                    caller_id = (f'"{legs.name or legs.number}" <{legs.number}>'
                                 if legs.number else None)
                    try:
                        await self.ari.originate(endpoint, app=self.app,
                                                 app_args=f"{TARGET_ARG},{caller}",
                                                 channel_id=machine.target_leg,
                                                 caller_id=caller_id, timeout=timeout,
                                                 variables=desk_phone_variables(endpoint))
                    except AriError as exc:
                        return t.TargetFailed(self.clock(), exc.message)
                case t.HangUpTarget():
                    await unless_gone(self.ari.hangup(target))
                case t.HangUpOperator():
                    if legs.operator_channel:
                        await unless_gone(self.ari.hangup(legs.operator_channel))
                case t.StartConsultation():
                    await self.ari.create_bridge(consult, "mixing", name=f"consult {caller}")
                    await self.ari.call(ops.REMOVE_FROM_BRIDGE, bridgeId=talk,
                                        channel=legs.operator_channel)
                    await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=consult,
                                        channel=legs.operator_channel, absorbDTMF=True)
                    await self.ari.add_to_bridge(consult, target)
                case t.EndConsultation(operator_back=back):
                    await unless_gone(self.ari.destroy_bridge(consult))
                    if back and legs.operator_channel:
                        await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=talk,
                                            channel=legs.operator_channel, absorbDTMF=True)
                case t.ConnectTarget():
                    # from now on the target is the call's operator: their keys stay theirs
                    await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=talk, channel=target,
                                        absorbDTMF=True)
                case t.AnnounceRecording():
                    await self.ari.call(ops.BRIDGE_PLAY, bridgeId=talk,
                                        media="sound:etiquette/recording-notice",
                                        playbackId=f"{caller}{SEP}bridge{SEP}recording-notice",
                                        lang=legs.language)
                case t.Note(event=event, data=data):
                    await self.timeline.note(caller, event, "transfer", **dict(data))
                case _:
                    raise TypeError(f"no ARI mapping for {action!r}")
        return None

    @staticmethod
    def playback_id(call_id: str, tag: str, party: str, prompt: str) -> str:
        return f"{call_id}{SEP}{tag}-{party}{SEP}{prompt}"

