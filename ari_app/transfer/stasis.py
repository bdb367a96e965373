"""The transfer rule's adapter: the target's leg, the consultation bridge and the hand-over
of the caller, as ARI calls. The shared steps (prompts to any party, music, detach and
reattach, the timer, snapshots, call events) are the runner's (calls/runner.py).

The target's leg is `<call>~tx<n>` (the call's n-th transfer), the consultation bridge
`<call>~consult`: every event routes to its call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ari_app.ari import AriClient, AriError, unless_gone
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.calls.rule import CallLegs, RuleBase
from ari_app.calls.vocabulary import TARGET, Finish
from ari_app.operators.service import desk_phone_variables
from ari_app.transfer import machine as t
from ari_app.transfer.store import TransferStore

__all__ = ["TransferRule", "target_leg"]

ADD_AFTER_PROMPT = 30.0  # s an addChannel may wait for the target's running introduction
TARGET_ARG = "transfer-target"


def target_leg(call_id: str, number: int) -> str:
    return ids.part(call_id, f"tx{number}")


def is_target_leg(channel_id: str) -> bool:
    return ids.what_of(channel_id).startswith("tx")


class TransferRule(RuleBase):
    NAME: ClassVar[str] = "transfer"
    MACHINE: ClassVar[type] = t.TransferMachine
    WANTS: ClassVar[frozenset[str]] = frozenset({"ChannelDtmfReceived", "StasisStart",
                                                 "ChannelDestroyed", "StasisEnd"})
    TAKES_OPERATOR: ClassVar[bool] = True  # the operator's keys complete or cancel it
    LEGS: ClassVar[frozenset[str]] = frozenset({TARGET_ARG})
    # the machine's words -> the steps' names (`transfer:<step>`); the others are snake_case
    STEPS: ClassVar[Mapping[str, str]] = {
        "transfer started": "started", "transfer choice": "caller_chose",
        "transfer completed": "completed", "transfer cancelled": "cancelled",
        "transfer failed": "failed", "transfer ended": "ended", "check-in": "check_in_played"}

    def __init__(self, ari: AriClient, store: TransferStore, *, app: str,
                 settings: t.TransferSettings, clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.app = ari, store, app
        self.settings, self.clock = settings, clock

    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        number = request["number"]
        machine = t.TransferMachine(legs.call_id, settings=self.settings,
                                    target_leg=target_leg(legs.call_id, number))
        return machine, t.TransferRequested(
            now, request["target"], request.get("mode", "announced"), request.get("reason"),
            request.get("reason_prompt"), request.get("source", "rest"), number - 1,
            request.get("caller_number", legs.number),
            operator_present=bool(request.get("operator_present", True)))

    def parties(self, machine: t.TransferMachine) -> Mapping[str, str | None]:
        return {TARGET: machine.target_channel or machine.target_leg}

    def ended(self, machine: t.TransferMachine, finish: Finish) -> Mapping[str, Any]:
        connected = finish.outcome == "connected"
        return {**finish.data, "channel": machine.target_channel if connected else None,
                "endpoint": machine.target.endpoint if machine.target else None}

    async def translate(self, legs: CallLegs, machine, event: dict, now: float) -> list[object]:
        kind = event.get("type")
        channel = (event.get("channel") or {}).get("id", "")
        if kind == "StasisStart" and (event.get("args") or [None])[0] == TARGET_ARG:
            return [t.TargetAnswered(now, channel)]
        if kind == "ChannelDestroyed" and is_target_leg(channel):  # never answered
            return [t.TargetFailed(now, event.get("cause_txt") or "no answer")]
        if kind == "StasisEnd" and is_target_leg(channel):
            return [t.TargetHungUp(now)]
        if kind == "ChannelDtmfReceived":
            party = (t.CALLER if channel == legs.call_id else
                     t.OPERATOR if channel == legs.operator_channel else
                     t.TARGET if is_target_leg(channel) else None)
            return [t.DigitPressed(now, party, event["digit"])] if party else []
        return []

    async def resync(self, legs: CallLegs, machine: t.TransferMachine, live: frozenset[str],
                     now: float) -> list[object]:
        leg = machine.target_leg
        if machine.state is t.TransferState.RINGING and leg and leg not in live:
            return [t.TargetFailed(now, "lost while the app was away")]
        if machine.target_channel and machine.target_channel not in live:
            return [t.TargetHungUp(now)]
        return []

    async def do(self, legs: CallLegs, machine: t.TransferMachine, action: object) -> object | None:
        caller, talk = legs.call_id, legs.talk_bridge
        consult = ids.part(caller, "consult")
        target = machine.target_channel or machine.target_leg
        match action:
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
                # each out of the consultation before it goes: a bridge's DELETE answers
                # before Asterisk has taken its channels out, and a prompt played to one of
                # them meanwhile (why the caller left) was lost, never started
                for channel in (legs.operator_channel, machine.target_channel):
                    if channel:
                        await unless_gone(self.ari.call(ops.REMOVE_FROM_BRIDGE,
                                                        bridgeId=consult, channel=channel),
                                          also=(422,))
                await unless_gone(self.ari.destroy_bridge(consult))
                if back and legs.operator_channel:
                    await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=talk,
                                        channel=legs.operator_channel, absorbDTMF=True)
            case t.ConnectTarget():
                # from now on the target is the call's operator: their keys stay theirs.
                # Asterisk adds them once their introduction has ended: a key pressed while
                # it says the caller's number does not stop it (a stop is ignored during
                # `digits:`), so the add may wait that long; not a failure
                await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=talk, channel=target,
                                    absorbDTMF=True, request_timeout=ADD_AFTER_PROMPT)
            case t.AnnounceRecording():
                await self.ari.call(ops.BRIDGE_PLAY, bridgeId=talk,
                                    media="sound:etiquette/recording-notice",
                                    # heard by all: no party's prompt (no PromptFinished)
                                    playbackId=ids.part(caller, "bridge~recording-notice"),
                                    lang=legs.language)
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None

