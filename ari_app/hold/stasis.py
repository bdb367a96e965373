"""The hold rule's adapter: what the call core hands the hold (a request, the caller's keys,
the voicemail's recording), and the hold's own actions as ARI calls and records.

The shared steps (music, prompts, detach and reattach, the timer, snapshots, call events) are
the runner's (calls/runner.py); this file only knows what is the hold's own: the operator's
nudge, the voicemail snoop and recording, the callback request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import structlog

from ari_app.ari import AriClient, AriError, AriNotFound, unless_gone
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.calls.rule import CallLegs, Instead, RuleBase
from ari_app.calls.vocabulary import Note, RecordingFinished
from ari_app.callback.service import CallbackRequest, CallbackRequests, RefusedNumber
from ari_app.callback.window import spoken_window
from ari_app.hold import machine as h
from ari_app.hold.store import HoldStore
from ari_app.voicemail.service import Voicemail, Voicemails

__all__ = ["HoldRule"]

logger = structlog.get_logger()
VOICEMAIL_SNOOP = "voicemail"  # the snoop's app argument: it reached Stasis to be recorded


class HoldRule(RuleBase):
    NAME: ClassVar[str] = "hold"
    MACHINE: ClassVar[type] = h.HoldMachine
    WANTS: ClassVar[frozenset[str]] = frozenset({"ChannelDtmfReceived", "RecordingFinished",
                                                 "RecordingFailed"})
    # the machine's words -> the steps' names (`hold:<step>`); the others are their snake_case
    STEPS: ClassVar[Mapping[str, str]] = {
        "hold started": "started", "check-in": "check_in_played",
        "fallback choice": "fallback_chosen", "hold ended": "ended",
        "callback requested": "callback_promised"}
    # the operator's nudge: the check-in's entry already says it; nothing waits for its end
    UNWATCHED_PROMPTS: ClassVar[frozenset[str]] = frozenset({"nudge"})

    def __init__(self, ari: AriClient, store: HoldStore, callbacks: CallbackRequests,
                 voicemails: Voicemails, *, app: str, settings: h.HoldSettings,
                 reason_prompts: Mapping[str, str], clock: Callable[[], float] = time.time
                 ) -> None:
        self.ari, self.store, self.app = ari, store, app
        self.callbacks, self.voicemails = callbacks, voicemails
        self.settings, self.reason_prompts, self.clock = settings, reason_prompts, clock

    # --- what the call hands the hold -------------------------------------------------------
    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        machine = h.HoldMachine(legs.call_id, caller_number=legs.number, settings=self.settings)
        if request.get("way_out"):  # voicemail or a callback without a hold
            return machine, h.FallbackRequested(
                now, tuple(request.get("intro", ())), request.get("for_whom"),
                request.get("preselect"), bool(request.get("operator_present")),
                request.get("why", ""))
        reason = request.get("reason")
        return machine, h.HoldRequested(now, reason, self.reason_prompts.get(reason or ""),
                                        request.get("expected_minutes"),
                                        request.get("source", "rest"),
                                        request.get("holds_before", 0))

    def ask(self, what: str, data: Mapping[str, Any], now: float) -> object:
        if what == "resume":
            return h.ResumeRequested(now, data.get("source", "rest"))
        if what == "hand-over":
            return h.HandedOver(now)
        return super().ask(what, data, now)

    async def translate(self, legs: CallLegs, machine, event: dict, now: float) -> list[object]:
        kind = event.get("type")
        if kind == "ChannelDtmfReceived" and event["channel"]["id"] == legs.call_id:
            return [h.DigitPressed(now, event["digit"])]
        if kind in ("RecordingFinished", "RecordingFailed"):
            rec = event["recording"]
            if rec.get("name") != self.recording_name(legs.call_id):
                return []
            await unless_gone(self.ari.hangup(self._snoop(legs.call_id)))  # recording done
            saved = kind == "RecordingFinished" and rec.get("duration", 0) > 0
            return [RecordingFinished(now, float(rec.get("duration") or 0), saved)]
        return []

    async def leg_entered(self, legs: CallLegs, channel: str, role: str) -> bool:
        """The snoop on the caller is in Stasis: record what the caller says."""
        if role != VOICEMAIL_SNOOP:
            return False
        await self.ari.call(ops.RECORD, channelId=channel, name=self.recording_name(legs.call_id),
                            format="wav", ifExists="overwrite", beep=False,
                            maxDurationSeconds=self.settings.voicemail_max,
                            maxSilenceSeconds=5, terminateOn="#")
        return True

    # --- the hold's own actions ---------------------------------------------------------------
    async def do(self, legs: CallLegs, machine: h.HoldMachine, action: object) -> object | None:
        caller = legs.call_id
        match action:
            case h.NudgeOperator(held_for=held):
                if legs.operator_channel:  # only the operator hears it: the caller is detached
                    await self.ari.play(legs.operator_channel,
                                        ["sound:etiquette/operator-nudge-hold", f"number:{held}",
                                         "sound:seconds"],
                                        ids.playback(caller, f"nudge{len(machine.check_ins)}",
                                                     "nudge", "operator"))
            case h.StartVoicemail():
                await self._snoop_caller(caller)
            case h.StopVoicemail():
                await self.ari.call(ops.STOP_RECORDING, recordingName=self.recording_name(caller))
            case h.SaveVoicemail(duration=duration):
                vm = await self.voicemails.create(Voicemail(
                    recording=self.recording_name(caller),
                    for_whom=machine.for_whom or legs.operator or "",
                    caller_number=legs.number, caller_name=legs.name, call_id=caller,
                    reason=machine.reason, duration=duration))
                return Note("voicemail saved", (("voicemail", vm.id),))
            case h.SaveCallback(number=number, own_number=own, chosen=chosen):
                try:
                    req = await self.callbacks.create(CallbackRequest(
                        number=number, call_id=caller,
                        source="transfer-fallback" if machine.for_whom else "hold-fallback",
                        name=legs.name, reason=machine.reason, operator=legs.operator,
                        for_whom=machine.for_whom, own_number=own, language=legs.language))
                except RefusedNumber as refused:
                    # the service's check said no (the machine checks the same rules, so only
                    # a policy changed mid-call gets here): no confirmation; a message instead
                    raise Instead(h.CallbackRefused(self.clock(), refused.message)) from None
                # the confirmation says when the callback comes, as the service promised it
                said = (spoken_window(req.latest_at, self.clock(), legs.language)
                        if req.latest_at else ())
                return h.CallbackSaved(self.clock(), said, (
                    ("request", req.id), ("number", number), ("chosen", chosen),
                    ("window", [req.earliest_at, req.latest_at])))
            case h.EndCall():
                pass  # the call ends when it gets the outcome
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None

    async def _snoop_caller(self, caller: str) -> None:
        try:
            await self.ari.call(ops.SNOOP, channelId=caller, spy="in", app=self.app,
                                appArgs=VOICEMAIL_SNOOP, snoopId=self._snoop(caller))
        except AriNotFound:
            raise
        except AriError as exc:
            # a caller hanging up at the beep: Asterisk answers 500, not 404
            if caller not in {c["id"] for c in await self.ari.call(ops.CHANNELS)}:
                raise AriNotFound(exc.status, exc.method, exc.path,
                                  f"caller gone: {exc.message}") from exc
            # the caller is still there: nothing will be recorded, so say so (the machine
            # takes their number instead) rather than wait in silence for a recording
            logger.warning("voicemail snoop refused", call_id=caller, error=exc.message)
            raise Instead(RecordingFinished(self.clock(), 0.0, False)) from exc

    @staticmethod
    def recording_name(call_id: str) -> str:
        return ids.part(call_id, "voicemail")  # named after its call, so its events route to it

    @staticmethod
    def _snoop(call_id: str) -> str:
        return ids.part(call_id, "vmsnoop")
