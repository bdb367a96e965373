"""The complaint's adapter (no supervisor on duty): the recording of what the caller says and
the complaint record with its promised callback. The shared steps are the runner's.

The complaint is recorded from a snoop on the caller (spy=in), never from the caller's channel
itself, whose keys would then arrive late; the recording is `<call>~complaint-<take>` (the
escalation's start), so its events route to the call and a second complaint in the call keeps
its own file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ari_app.ari import AriClient, unless_gone
from ari_app.calls.recording import CallerMessage, take_of
from ari_app.calls.rule import CallLegs, RuleBase
from ari_app.calls.vocabulary import Note
from ari_app.callback.numbers import RefusedNumber, check_number
from ari_app.callback.service import CallbackRequest, CallbackRequests
from ari_app.callback.window import spoken_window
from ari_app.escalation import machine as c
from ari_app.escalation.service import Complaint, Complaints, complaint_id
from ari_app.escalation.store import ComplaintStore

__all__ = ["ComplaintRule"]


class ComplaintRule(RuleBase):
    NAME: ClassVar[str] = "complaint"
    EVENTS_AS: ClassVar[str] = "escalation"  # `escalation:complaint_started`, ...
    MACHINE: ClassVar[type] = c.ComplaintMachine
    WANTS: ClassVar[frozenset[str]] = frozenset({"ChannelDtmfReceived", "RecordingFinished",
                                                 "RecordingFailed", "StasisStart"})
    TAKES_OPERATOR: ClassVar[bool] = True  # the operator is only told; their keys do nothing

    def __init__(self, ari: AriClient, store: ComplaintStore, complaints: Complaints,
                 callbacks: CallbackRequests, *, app: str, window_minutes: int,
                 max_seconds: int = 120, clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.app = ari, store, app
        self.complaints, self.callbacks = complaints, callbacks
        self.window_minutes, self.max_seconds, self.clock = window_minutes, max_seconds, clock
        # what the caller says: `<call>~complaint-<take>`, from the snoop `<call>~cpsnoop-<take>`
        self.message = CallerMessage(ari, app=app, what="complaint", snoop="cpsnoop",
                                     role="complaint", max_seconds=max_seconds, clock=clock)

    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        return c.ComplaintMachine(legs.call_id), c.ComplaintStarted(
            now, self.window_minutes, legs.language, legs.operator_channel is not None,
            request.get("why", "no supervisor on duty"), self.max_seconds,
            callback_possible=self._callable(legs.number))

    def _callable(self, number: str) -> bool:
        """May a supervisor call this caller back (the callback service's own check)?"""
        try:
            check_number(number, self.callbacks.rules)
        except RefusedNumber:
            return False
        return True

    async def translate(self, legs: CallLegs, machine, event: dict, now: float) -> list[object]:
        kind = event.get("type")
        if kind == "ChannelDtmfReceived" and event["channel"]["id"] == legs.call_id:
            return [c.DigitPressed(now, event["digit"])]
        return await self.message.ended(legs.call_id, take_of(machine.started_at), event, now)

    async def leg_entered(self, legs: CallLegs, channel: str, role: str) -> bool:
        """The snoop on the caller is in Stasis: record what they say."""
        return await self.message.record(legs.call_id, channel, role)

    async def resync(self, legs: CallLegs, machine: c.ComplaintMachine, live: frozenset[str],
                     now: float) -> list[object]:
        if machine.state is c.ComplaintState.RECORDING:
            return await self.message.ended_while_away(legs.call_id,
                                                       take_of(machine.started_at), live, now)
        return []

    async def do(self, legs: CallLegs, machine: c.ComplaintMachine, action: object
                 ) -> object | None:
        caller, take = legs.call_id, take_of(machine.started_at)
        match action:
            case c.StartRecording():
                await self.message.start(caller, take)
            case c.StopRecording():
                await self.message.stop(caller, take)
            case c.SaveComplaint(duration=duration, recorded=recorded, window_minutes=minutes,
                                 callback=wanted):
                return await self._save(legs, machine, duration, recorded, minutes, wanted)
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None

    async def _save(self, legs: CallLegs, machine: c.ComplaintMachine, duration: float,
                    recorded: bool, minutes: int, wanted: bool) -> object:
        caller, now, take = legs.call_id, self.clock(), take_of(machine.started_at)
        callback = None
        if wanted:
            try:
                callback = await self.callbacks.create(CallbackRequest(
                    number=legs.number, source="supervisor", call_id=caller, name=legs.name,
                    reason="complaint", operator=legs.operator, language=legs.language,
                    for_whom="supervisor", latest_at=now + minutes * 60))
            except RefusedNumber:  # the complaint is kept whatever the number
                pass
        complaint = Complaint(
            call_id=caller, caller_number=legs.number, caller_name=legs.name,
            operator=legs.operator, duration=duration,
            recording=self.message.name(caller, take) if recorded else None,
            callback_id=callback.id if callback else None, window_minutes=minutes,
            id=complaint_id(caller, machine.started_at))
        await self.complaints.create_once(complaint)  # the step may be tried again
        await unless_gone(self.ari.hangup(self.message.snoop(caller, take)))  # recording done
        # "within N minutes (or hours)", as the callback service really promised it
        said = (spoken_window(callback.latest_at, now, legs.language)[2:]
                if callback and callback.latest_at else ())
        data = (("complaint", complaint.id), ("callback", callback.id if callback else None),
                ("callback_by", callback.latest_at if callback else None))
        if machine.state is c.ComplaintState.ENDED:  # the caller hung up while speaking
            return Note("complaint saved", data)
        return c.ComplaintSaved(now, said, data, promised=callback is not None)
