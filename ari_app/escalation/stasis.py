"""ARI adapter for a complaint: ComplaintMachine decisions -> ARI calls, inside the call's lane.

The complaint is recorded from a snoop on the caller (spy=in), never from the caller's channel
itself, whose keys would then arrive late; the recording is `<call>~complaint`, so its events
route to the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ari_app.ari import AriClient, AriNotFound, tolerated, unless_gone
from ari_app.ari import operations as ops
from ari_app.callback.service import CallbackRequest, CallbackRequests
from ari_app.callback.window import spoken_window
from ari_app.escalation import machine as c
from ari_app.escalation.service import Complaint, Complaints
from ari_app.escalation.store import ComplaintStore
from ari_app.rules import CallLegs, RuleResult
from ari_app.timeline import Timeline

__all__ = ["ComplaintStasis", "SNOOP_ARG"]

SEP = "~"
SNOOP_ARG = "complaint"


class ComplaintStasis:
    def __init__(self, ari: AriClient, store: ComplaintStore, timeline: Timeline,
                 complaints: Complaints, callbacks: CallbackRequests, *, app: str,
                 window_minutes: int, max_seconds: int = 120,
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.timeline = ari, store, timeline
        self.complaints, self.callbacks = complaints, callbacks
        self.app, self.window_minutes, self.max_seconds = app, window_minutes, max_seconds
        self.clock = clock
        self._promised: dict[str, tuple[str, ...]] = {}  # call -> the callback's window, said

    async def start(self, legs: CallLegs, why: str) -> RuleResult:
        machine = c.ComplaintMachine(legs.call_id)
        return await self._run(legs, machine, c.ComplaintStarted(
            self.clock(), self.window_minutes, legs.language, legs.operator_channel is not None,
            why, self.max_seconds))

    async def feed(self, legs: CallLegs, event: object) -> RuleResult:
        machine = await self.store.load(legs.call_id)
        if machine is None:
            return RuleResult(outcome="gone")
        return await self._run(legs, machine, event)

    async def resync(self, legs: CallLegs, live: frozenset[str]) -> RuleResult:
        machine = await self.store.load(legs.call_id)
        if machine is None:
            return RuleResult(outcome="gone")
        now = self.clock()
        if legs.operator_channel is None and machine.operator_present:
            return await self._run(legs, machine, c.OperatorHungUp(now))
        if machine.state is c.ComplaintState.RECORDING and self.snoop(legs.call_id) not in live:
            return await self._run(legs, machine, c.RecordingFinished(now, 0.0, False))
        if machine.playing:
            try:
                await self.ari.call(ops.PLAYBACK, playbackId=self.playback_id(
                    legs.call_id, machine.playing_tag, machine.playing))
            except AriNotFound:
                return await self._run(legs, machine, c.PromptFinished(now, machine.playing,
                                                                       machine.playing_tag))
        return RuleResult()

    def translate(self, legs: CallLegs, event: dict, now: float) -> list[object]:
        kind = event.get("type")
        if kind == "PlaybackFinished":
            parts = event["playback"]["id"].split(SEP)
            if len(parts) == 3 and parts[1].startswith("c"):
                return [c.PromptFinished(now, parts[2], parts[1])]
        elif kind == "ChannelDtmfReceived" and event["channel"]["id"] == legs.call_id:
            return [c.DigitPressed(now, event["digit"])]
        elif kind in ("RecordingFinished", "RecordingFailed"):
            rec = event["recording"]
            if rec.get("name") == self.recording_name(legs.call_id):
                duration = float(rec.get("duration") or 0)
                return [c.RecordingFinished(now, duration, kind == "RecordingFinished")]
        return []

    async def record(self, legs: CallLegs, snoop_channel: str) -> None:
        """The snoop on the caller is in Stasis: record what they say."""
        await self.ari.call(ops.RECORD, channelId=snoop_channel,
                            name=self.recording_name(legs.call_id), format="wav",
                            ifExists="overwrite", beep=False,
                            maxDurationSeconds=self.max_seconds, maxSilenceSeconds=5,
                            terminateOn="#")

    async def _run(self, legs: CallLegs, machine: c.ComplaintMachine, event: object) -> RuleResult:
        actions = machine.handle(event)
        if machine.state in c.END_STATES:
            await self.store.delete(legs.call_id)
        else:
            await self.store.save(machine)
        outcome = None
        for action in actions:
            if isinstance(action, c.Finish):
                outcome = action.outcome
            else:
                await self._do(legs, machine, action)
        return RuleResult(outcome=outcome)

    async def _do(self, legs: CallLegs, machine: c.ComplaintMachine, action: object) -> None:
        caller = legs.call_id
        with tolerated(type(action).__name__):
            match action:
                case c.DetachCaller():
                    await self.ari.call(ops.REMOVE_FROM_BRIDGE, bridgeId=legs.talk_bridge,
                                        channel=caller)
                case c.ReattachCaller():
                    await self.ari.add_to_bridge(legs.talk_bridge, caller)
                case c.Play(prompt=prompt, media=media, tag=tag):
                    promised = self._promised.pop(caller, None) if prompt == "complaint-saved" else None
                    if promised:  # the window really promised: later at night or on a weekend
                        media = (*media[:2], *promised, *media[4:])
                    await self.ari.play(caller, list(media), self.playback_id(caller, tag, prompt),
                                        lang=legs.language)
                case c.PlayToOperator(prompt=prompt):
                    if legs.operator_channel:
                        await self.ari.play(legs.operator_channel, f"sound:etiquette/{prompt}",
                                            f"{caller}{SEP}cop{machine.plays}{SEP}{prompt}",
                                            lang=legs.language)
                case c.StartRecording():
                    await self.ari.call(ops.SNOOP, channelId=caller, spy="in", app=self.app,
                                        appArgs=SNOOP_ARG, snoopId=self.snoop(caller))
                case c.StopRecording():
                    await self.ari.call(ops.STOP_RECORDING,
                                        recordingName=self.recording_name(caller))
                case c.SaveComplaint(duration=duration, recorded=recorded,
                                     window_minutes=minutes):
                    now = self.clock()
                    callback = await self.callbacks.create(CallbackRequest(
                        number=legs.number, source="supervisor", call_id=caller, name=legs.name,
                        reason="complaint", operator=legs.operator, language=legs.language,
                        for_whom="supervisor", latest_at=now + minutes * 60))
                    complaint = await self.complaints.create(Complaint(
                        call_id=caller, caller_number=legs.number, caller_name=legs.name,
                        operator=legs.operator, duration=duration,
                        recording=self.recording_name(caller) if recorded else None,
                        callback_id=callback.id, window_minutes=minutes))
                    await unless_gone(self.ari.hangup(self.snoop(caller)))  # recording done
                    await self.timeline.note(caller, "complaint saved", "escalation",
                                             complaint=complaint.id, callback=callback.id,
                                             callback_by=callback.latest_at)
                    if callback.latest_at:  # "within N minutes (or hours)", as computed
                        self._promised[caller] = spoken_window(callback.latest_at, now,
                                                               legs.language)[2:]
                case c.Note(event=event, data=data):
                    await self.timeline.note(caller, event, "escalation", **dict(data))
                case _:
                    raise TypeError(f"no ARI mapping for {action!r}")

    @staticmethod
    def recording_name(call_id: str) -> str:
        return f"{call_id}{SEP}complaint"

    @staticmethod
    def snoop(call_id: str) -> str:
        return f"{call_id}{SEP}cpsnoop"

    @staticmethod
    def playback_id(call_id: str, tag: str, prompt: str) -> str:
        return f"{call_id}{SEP}{tag}{SEP}{prompt}"

