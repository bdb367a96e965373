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

from ari_app.ari import AriClient
from ari_app.calls import ids
from ari_app.calls.recording import CallerMessage, take_of
from ari_app.calls.rule import CallLegs, Instead, RuleBase
from ari_app.calls.vocabulary import Note
from ari_app.callback.service import CallbackRequest, CallbackRequests, RefusedNumber
from ari_app.callback.window import spoken_window
from ari_app.hold import machine as h
from ari_app.hold.store import HoldStore
from ari_app.voicemail.service import Voicemail, Voicemails, voicemail_id

__all__ = ["HoldRule"]


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
        # the caller's voice message: `<call>~voicemail-<take>` (the hold's start), from the
        # snoop `<call>~vmsnoop-<take>`
        self.message = CallerMessage(ari, app=app, what="voicemail", snoop="vmsnoop",
                                     role="voicemail", max_seconds=settings.voicemail_max,
                                     clock=clock)

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
                                        request.get("holds_before", 0), legs.language)

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
        return await self.message.ended(legs.call_id, take_of(machine.started_at), event, now)

    async def leg_entered(self, legs: CallLegs, channel: str, role: str) -> bool:
        """The snoop on the caller is in Stasis: record what the caller says."""
        return await self.message.record(legs.call_id, channel, role)

    async def resync(self, legs: CallLegs, machine: h.HoldMachine, live: frozenset[str],
                     now: float) -> list[object]:
        """A voice message whose recording ended while we were away is saved with it."""
        if machine.state is h.HoldState.VOICEMAIL and machine.recording_since is not None:
            return await self.message.ended_while_away(legs.call_id,
                                                       take_of(machine.started_at), live, now)
        return []

    # --- the hold's own actions ---------------------------------------------------------------
    async def do(self, legs: CallLegs, machine: h.HoldMachine, action: object) -> object | None:
        caller, take = legs.call_id, take_of(machine.started_at)
        match action:
            case h.NudgeOperator(held_for=held):
                if legs.operator_channel:  # only the operator hears it: the caller is detached
                    await self.ari.play(legs.operator_channel,
                                        ["sound:etiquette/operator-nudge-hold", f"number:{held}",
                                         "sound:seconds"],
                                        ids.playback(caller, f"nudge{len(machine.check_ins)}",
                                                     "nudge", "operator"))
            case h.StartVoicemail():
                await self.message.start(caller, take)
            case h.StopVoicemail():
                await self.message.stop(caller, take)
            case h.SaveVoicemail(duration=duration):
                recording = self.message.name(caller, take)
                vm = Voicemail(
                    recording=recording, for_whom=machine.for_whom or legs.operator or "",
                    caller_number=legs.number, caller_name=legs.name, call_id=caller,
                    reason=machine.reason, duration=duration, id=voicemail_id(recording))
                # once: the step may be tried again after storage failed part way
                await self.voicemails.create_once(vm)
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
