"""ARI adapter for callback calls: Stasis events -> CallbackCallMachine, its decisions -> ARI.

Each attempt is a call of its own, `cb-<attempt>`: the operator's leg `cb-<attempt>~op`, the
customer's `cb-<attempt>~cust`, their bridge `cb-<attempt>~talk`. Events run in the attempt's
own lane; the attempt's end goes to the dialer (`on_finished`), which decides what next.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog

from ari_app.ari import AriClient, AriError, Lanes, tolerated, unless_gone
from ari_app.ari import operations as ops
from ari_app.callback import machine as k
from ari_app.operators.service import desk_phone_variables
from ari_app.snapshots import SnapshotStore
from ari_app.timeline import Timeline

__all__ = ["CallbackStasis", "PREFIX"]

logger = structlog.get_logger()
PREFIX, SEP = "cb-", "~"
ROLE = {"op": k.OPERATOR, "cust": k.CUSTOMER}


class CallbackStasis:
    def __init__(self, ari: AriClient, store: SnapshotStore[k.CallbackCallMachine],
                 timeline: Timeline, *, app: str, dial_template: str, ring_timeout: int,
                 operator_ring_timeout: int, company_id: str,
                 on_finished: Callable[[k.CallbackCallMachine, k.Finish], Awaitable[None]],
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.timeline = ari, store, timeline
        self.app, self.dial_template, self.ring_timeout = app, dial_template, ring_timeout
        self.operator_ring_timeout, self.company_id = operator_ring_timeout, company_id
        self.on_finished, self.clock = on_finished, clock
        self.lanes = Lanes(self._handle)
        self._timers: dict[str, asyncio.TimerHandle] = {}

    @staticmethod
    def owns(resource_id: str) -> bool:
        return resource_id.startswith(PREFIX)

    def on_event(self, event: dict) -> None:
        resource = next((event[key]["id"] for key in ("playback", "channel", "bridge")
                         if isinstance(event.get(key), dict) and event[key].get("id")), None)
        if resource and self.owns(resource):
            self.lanes.submit(resource.split(SEP, 1)[0], event)

    async def start(self, machine: k.CallbackCallMachine, started: k.Started) -> None:
        self.lanes.submit(machine.call_id, (machine, started))

    # --- one attempt's events, in order --------------------------------------------------------
    async def _handle(self, call_id: str, item: object) -> None:
        now = self.clock()
        if isinstance(item, tuple):
            machine, event = item
            events: list[object] = [event]
        else:
            machine = await self.store.load(call_id)
            if machine is None:
                return
            events = [k.TimerFired(now)] if item == "tick" else self._translate(machine, item, now)
        with structlog.contextvars.bound_contextvars(call_id=call_id, rule="callback"):
            while events:
                event = events.pop(0)
                actions = machine.handle(event)
                if machine.state in k.END_STATES:
                    await self.store.delete(call_id)
                else:
                    await self.store.save(machine)
                for action in actions:
                    follow = await self._do(machine, action)
                    if follow is not None:
                        events.append(follow)
            self._arm(machine)

    def _translate(self, machine: k.CallbackCallMachine, event: dict, now: float) -> list[object]:
        kind = event.get("type")
        channel = (event.get("channel") or {}).get("id", "")
        role = ROLE.get(channel.split(SEP, 1)[-1]) if SEP in channel else None
        if kind == "StasisStart" and role == k.OPERATOR:
            return [k.OperatorAnswered(now)]
        if kind == "StasisStart" and role == k.CUSTOMER:
            return [k.CustomerAnswered(now)]
        if kind == "ChannelDestroyed" and role == k.OPERATOR and k.OPERATOR not in machine.up:
            return [k.OperatorFailed(now, event.get("cause_txt") or "no answer")]
        if kind == "ChannelDestroyed" and role == k.CUSTOMER and k.CUSTOMER not in machine.up:
            return [k.CustomerFailed(now, event.get("cause_txt") or "no answer")]
        if kind == "StasisEnd" and role in machine.up:
            return [k.HungUp(now, role)]
        if kind == "PlaybackFinished":
            parts = event["playback"]["id"].split(SEP)
            if len(parts) == 3:
                return [k.PromptFinished(now, parts[1].split(".", 1)[0], parts[2])]
        if kind == "ChannelDtmfReceived" and role:
            return [k.DigitPressed(now, role, event["digit"])]
        return []

    # --- actions -> ARI ------------------------------------------------------------------------
    async def _do(self, machine: k.CallbackCallMachine, action: object) -> object | None:
        call = machine.call_id
        leg = {k.OPERATOR: f"{call}{SEP}op", k.CUSTOMER: f"{call}{SEP}cust"}
        with tolerated(type(action).__name__):
            match action:
                case k.DialOperator():
                    try:
                        await self.ari.originate(
                            machine.operator, app=self.app, app_args="callback-operator",
                            channel_id=leg[k.OPERATOR], timeout=self.operator_ring_timeout,
                            caller_id=f'"Callback" <{machine.number}>',
                            variables=desk_phone_variables(machine.operator))
                    except AriError as exc:
                        return k.OperatorFailed(self.clock(), exc.message)
                case k.DialCustomer():
                    endpoint = self.dial_template.format(number=machine.number.lstrip("+"))
                    try:
                        await self.ari.originate(endpoint, app=self.app,
                                                 app_args="callback-customer",
                                                 channel_id=leg[k.CUSTOMER],
                                                 caller_id=self.company_id,
                                                 timeout=self.ring_timeout)
                    except AriError as exc:
                        return k.CustomerFailed(self.clock(), exc.message)
                case k.Play(party=party, prompt=prompt, media=media):
                    await self.ari.play(leg[party], list(media),
                                        f"{call}{SEP}{party}.{uuid.uuid4().hex[:6]}{SEP}{prompt}",
                                        lang=machine.language)
                case k.Connect():
                    await self.ari.create_bridge(f"{call}{SEP}talk", "mixing", name=f"callback {call}")
                    for channel in leg.values():
                        await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=f"{call}{SEP}talk",
                                            channel=channel, absorbDTMF=True)
                case k.HangUp(party=party):
                    await unless_gone(self.ari.hangup(leg[party]))
                case k.Note(event=event, data=data):
                    await self.timeline.note(machine.request_id, event, "callback",
                                             attempt=call, **dict(data))
                case k.Finish():
                    self._cancel(call)
                    await unless_gone(self.ari.destroy_bridge(f"{call}{SEP}talk"))
                    await self.on_finished(machine, action)
                case _:
                    raise TypeError(f"no ARI mapping for {action!r}")
        return None

    # --- the attempt's single timer ------------------------------------------------------------
    def _arm(self, machine: k.CallbackCallMachine) -> None:
        self._cancel(machine.call_id)
        deadline = machine.get_timer()
        if deadline is None or machine.state in k.END_STATES:
            return
        loop = asyncio.get_running_loop()
        self._timers[machine.call_id] = loop.call_at(
            loop.time() + max(0.0, deadline - self.clock()),
            lambda: (self._timers.pop(machine.call_id, None),
                     self.lanes.submit(machine.call_id, "tick")))

    def _cancel(self, call_id: str) -> None:
        handle = self._timers.pop(call_id, None)
        if handle is not None:
            handle.cancel()

    @property
    def pending_timers(self) -> int:
        return len(self._timers)

    async def close(self) -> None:
        for call_id in list(self._timers):
            self._cancel(call_id)
        await self.lanes.close()

