"""ARI adapter for the hold rule: HoldMachine decisions -> ARI calls.

It runs inside the call's own lane: the inbound adapter hands it the call's legs and the events
that belong to a hold, and gets back the hold's outcome when it ends and its next deadline.
Music is channel music on hold on the caller's leg, stopped for each prompt and started again
after it: the one sequence that was heard to work here (bridge music did not come back).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ari_app.ari import AriClient, AriNotFound, tolerated
from ari_app.ari import operations as ops
from ari_app.callback.service import CallbackRequest, CallbackRequests
from ari_app.callback.window import spoken_window
from ari_app.hold import machine as h
from ari_app.hold.store import HoldStore
from ari_app.rules import CallLegs, RuleResult
from ari_app.timeline import Timeline
from ari_app.voicemail.service import Voicemail, Voicemails

__all__ = ["HoldStasis"]

SEP = "~"


class HoldStasis:
    def __init__(self, ari: AriClient, store: HoldStore, timeline: Timeline,
                 callbacks: CallbackRequests, voicemails: Voicemails, *,
                 app: str, settings: h.HoldSettings, reason_prompts: dict[str, str],
                 moh_class: str, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.ari, self.store, self.timeline = ari, store, timeline
        self.callbacks, self.voicemails = callbacks, voicemails
        self.settings, self.reason_prompts, self.moh_class = settings, reason_prompts, moh_class
        self.clock = clock
        self._promised: dict[str, tuple[str, ...]] = {}  # call -> its callback's window, said

    # --- entry points (called from the call's lane) ------------------------------------------
    async def start(self, legs: CallLegs, reason: str | None, expected_minutes: int | None,
                    source: str, holds_before: int) -> RuleResult:
        machine = h.HoldMachine(legs.call_id, caller_number=legs.number, settings=self.settings)
        event = h.HoldRequested(self.clock(), reason, self.reason_prompts.get(reason or ""),
                                expected_minutes, source, holds_before)
        return await self._run(legs, machine, event)

    async def offer(self, legs: CallLegs, request: h.FallbackRequested) -> RuleResult:
        """The way out without a hold: voicemail or a callback, after `request.intro`."""
        machine = h.HoldMachine(legs.call_id, caller_number=legs.number, settings=self.settings)
        return await self._run(legs, machine, request)

    async def feed(self, legs: CallLegs, event: object) -> RuleResult:
        machine = await self.store.load(legs.call_id)
        if machine is None:
            return RuleResult(outcome="gone")
        return await self._run(legs, machine, event)

    async def resync(self, legs: CallLegs, live_channels: frozenset[str]) -> RuleResult:
        """After a restart: a prompt that ended while we were away counts as finished."""
        machine = await self.store.load(legs.call_id)
        if machine is None:
            return RuleResult(outcome="gone")
        if legs.operator_channel is None and machine.operator_present:
            return await self._run(legs, machine, h.OperatorHungUp(self.clock()))
        if machine.playing:
            try:
                await self.ari.call(ops.PLAYBACK, playbackId=self._playback_id(legs, machine.playing_tag,
                                                                              machine.playing))
            except AriNotFound:
                return await self._run(legs, machine, h.PromptFinished(self.clock(), machine.playing))
        return RuleResult(deadline=machine.get_timer())

    # --- one step -------------------------------------------------------------------------------
    async def _run(self, legs: CallLegs, machine: h.HoldMachine, event: object) -> RuleResult:
        actions = machine.handle(event)
        if machine.state in h.END_STATES:
            await self.store.delete(legs.call_id)
        else:
            await self.store.save(machine)
        outcome = None
        for action in actions:
            if isinstance(action, h.Finish):
                outcome = action.outcome
            else:
                await self._do(legs, machine, action)
        return RuleResult(outcome=outcome, deadline=machine.get_timer())

    async def _do(self, legs: CallLegs, machine: h.HoldMachine, action: object) -> None:
        caller = legs.call_id
        with tolerated(type(action).__name__):
            match action:
                case h.DetachCaller():
                    await self.ari.call(ops.REMOVE_FROM_BRIDGE, bridgeId=legs.talk_bridge,
                                        channel=caller)
                case h.ReattachCaller():
                    await self.ari.add_to_bridge(legs.talk_bridge, caller)
                case h.StartMusic():
                    await self.ari.start_moh(caller, self.moh_class)
                case h.StopMusic():
                    await self.ari.stop_moh(caller)
                case h.Play(prompt=prompt, media=media, tag=tag):
                    promised = self._promised.pop(caller, ()) if prompt == "callback-confirmed" else ()
                    media = (media[0], *promised, *media[1:])  # when the callback comes
                    await self.ari.play(caller, list(media), self._playback_id(legs, tag, prompt),
                                        lang=legs.language)
                case h.StopPlayback(prompt=prompt, tag=tag):
                    await self.ari.stop_playback(self._playback_id(legs, tag, prompt))
                case h.NudgeOperator(held_for=held):
                    if legs.operator_channel:  # only the operator hears it: the caller is detached
                        await self.ari.play(legs.operator_channel,
                                            ["sound:etiquette/operator-nudge-hold", f"number:{held}",
                                             "sound:seconds"],
                                            f"{caller}{SEP}nudge{len(machine.check_ins)}{SEP}nudge")
                case h.StartVoicemail():
                    await self.ari.call(ops.SNOOP, channelId=caller, spy="in", app=self.app,
                                        appArgs="voicemail", snoopId=f"{caller}{SEP}vmsnoop")
                case h.StopVoicemail():
                    await self.ari.call(ops.STOP_RECORDING, recordingName=self.recording_name(caller))
                case h.SaveVoicemail(duration=duration):
                    vm = await self.voicemails.create(Voicemail(
                        recording=self.recording_name(caller),
                        for_whom=machine.for_whom or legs.operator or "",
                        caller_number=legs.number, caller_name=legs.name, call_id=caller,
                        reason=machine.reason, duration=duration))
                    await self.timeline.note(caller, "voicemail saved", "hold", voicemail=vm.id)
                case h.SaveCallback(number=number, own_number=own, chosen=chosen):
                    req = await self.callbacks.create(CallbackRequest(
                        number=number, call_id=caller,
                        source="transfer-fallback" if machine.for_whom else "hold-fallback", name=legs.name,
                        reason=machine.reason, operator=legs.operator, for_whom=machine.for_whom,
                        own_number=own,
                        language=legs.language))
                    await self.timeline.note(caller, "callback requested", "hold", request=req.id,
                                             number=number, chosen=chosen,
                                             window=[req.earliest_at, req.latest_at])
                    if req.latest_at:
                        self._promised[caller] = spoken_window(req.latest_at, self.clock(),
                                                               legs.language)
                case h.Note(event=event, data=data):
                    await self.timeline.note(caller, event, "hold", **dict(data))
                case h.EndCall():
                    pass  # the inbound adapter ends the call when it gets the outcome
                case _:
                    raise TypeError(f"no ARI mapping for {action!r}")

    async def record_voicemail(self, legs: CallLegs, snoop_channel: str) -> None:
        """The snoop on the caller is in Stasis: record what the caller says."""
        await self.ari.call(ops.RECORD, channelId=snoop_channel, name=self.recording_name(legs.call_id),
                            format="wav", ifExists="overwrite", beep=False,
                            maxDurationSeconds=self.settings.voicemail_max, maxSilenceSeconds=5,
                            terminateOn="#")

    @staticmethod
    def recording_name(call_id: str) -> str:
        return f"{call_id}{SEP}voicemail"  # named after its call, so its events route to it

    @staticmethod
    def _playback_id(legs: CallLegs, tag: str, prompt: str) -> str:
        return f"{legs.call_id}{SEP}{tag}{SEP}{prompt}"
