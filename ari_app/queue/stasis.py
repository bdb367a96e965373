"""The queue rule's adapter: the call hands it a caller nobody could take at once; it puts them
in line (queue/service.py), rings the operator the dispatcher reserved for them, whispers to
that operator, and keeps the place of a caller who asks to be called back.

The shared steps (music, prompts, the timer, snapshots, call events) are the runner's; this
file only knows what is the queue's own: the line, the operator's leg, the whisper, the kept
place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

import structlog

from ari_app.ari import AriClient, AriError, unless_gone
from ari_app.callback.service import CallbackRequest, CallbackRequests, RefusedNumber
from ari_app.callback.window import spoken_window
from ari_app.calls import ids
from ari_app.calls.rule import CallLegs, RuleBase
from ari_app.calls.vocabulary import OPERATOR, Finish
from ari_app.customers.service import Customers
from ari_app.operators.service import desk_phone_variables
from ari_app.queue import machine as q
from ari_app.queue.dispatcher import QueueDispatcher
from ari_app.queue.service import QueueDesk
from ari_app.storage import STORAGE_ERRORS
from ari_app.storage.snapshots import SnapshotStore

__all__ = ["OPERATOR_ARG", "QueueRule", "queue_settings"]

logger = structlog.get_logger()

OPERATOR_ARG = "queue-operator"  # the first app argument of the operator's leg we dial
RANG_OUT = frozenset({18, 19})   # Q.850: no user responding, no answer
RECENT = 7 * 86400               # a contact this recent makes the caller one "calling again"


class QueueRule(RuleBase):
    NAME: ClassVar[str] = "queue"
    MACHINE: ClassVar[type] = q.QueueMachine
    WANTS: ClassVar[frozenset[str]] = frozenset({"ChannelDtmfReceived", "StasisStart",
                                                 "ChannelDestroyed", "StasisEnd"})
    LEGS: ClassVar[frozenset[str]] = frozenset({OPERATOR_ARG})
    STEPS: ClassVar[Mapping[str, str]] = {
        "queue entered": "entered", "check-in": "check_in_played",
        "threshold offered": "way_out_offered", "queue choice": "caller_chose",
        "operator offered": "operator_offered", "operator missed": "operator_missed",
        "connected": "connected", "abandoned": "abandoned", "place kept": "place_kept",
        "overflow": "overflow"}

    def __init__(self, ari: AriClient, store: SnapshotStore, desk: QueueDesk,
                 dispatcher: QueueDispatcher, callbacks: CallbackRequests,
                 customers: Customers | None, *, app: str,
                 settings: Mapping[str, q.QueueSettings], ring_timeout: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.desk, self.dispatcher = ari, store, desk, dispatcher
        self.callbacks, self.customers = callbacks, customers
        self.app, self.settings, self.ring_timeout, self.clock = (app, settings, ring_timeout,
                                                                  clock)

    # --- what the call hands the queue -------------------------------------------------------
    def begin(self, legs: CallLegs, request: Mapping[str, Any], now: float):
        settings = self.settings[request["queue"]]
        if settings.language != legs.language:
            settings = _with_language(settings, legs.language)
        machine = q.QueueMachine(legs.call_id, caller_number=legs.number, settings=settings)
        return machine, q.QueueJoin(now)

    def parties(self, machine: q.QueueMachine) -> Mapping[str, str | None]:
        return {OPERATOR: ids.part(machine.call_id, machine.leg) if machine.leg else None}

    def ended(self, machine: q.QueueMachine, finish: Finish) -> Mapping[str, Any]:
        data = dict(finish.data)
        if finish.outcome == "connected" and machine.leg:
            data["channel"] = ids.part(machine.call_id, machine.leg)
        return data

    async def translate(self, legs: CallLegs, machine: q.QueueMachine, event: dict, now: float
                        ) -> list[object]:
        kind = event.get("type")
        channel = (event.get("channel") or {}).get("id", "")
        leg = ids.part(legs.call_id, machine.leg) if machine.leg else None
        if kind == "ChannelDtmfReceived" and channel == legs.call_id:
            return [q.DigitPressed(now, event["digit"])]
        if channel != leg or machine.operator is None:
            return []
        if kind == "StasisStart" and (event.get("args") or [None])[0] == OPERATOR_ARG:
            again, topic = await self._calling_again(legs, now)
            return [q.OperatorFound(now, machine.operator, again, topic)]
        if kind == "ChannelDestroyed" and not machine.answered:  # never answered
            return [q.OperatorMissed(now, machine.operator, event.get("cause") in RANG_OUT,
                                     event.get("cause_txt") or "no answer")]
        if kind == "StasisEnd" and machine.answered:
            return [q.OperatorHungUp(now)]
        return []

    async def resync(self, legs: CallLegs, machine: q.QueueMachine, live: frozenset[str],
                     now: float) -> list[object]:
        leg = ids.part(legs.call_id, machine.leg) if machine.leg else None
        if leg is None or leg in live or machine.operator is None:
            return []
        if machine.answered:
            return [q.OperatorHungUp(now)]
        return [q.OperatorMissed(now, machine.operator, False, "lost while the app was away")]

    # --- the queue's own actions -----------------------------------------------------------------
    async def do(self, legs: CallLegs, machine: q.QueueMachine, action: object) -> object | None:
        queue, caller = machine.settings.queue, legs.call_id
        match action:
            case q.JoinQueue():
                joined = await self.desk.join(queue, caller, legs.number, legs.language)
                if joined.in_line:
                    self.dispatcher.kick(queue)
                return joined.event
            case q.LookUpPosition():
                try:
                    return q.PositionChanged(self.clock(), await self.desk.position(queue, caller))
                except STORAGE_ERRORS as exc:  # the check-in goes on with the place last known
                    logger.warning("queue position unknown", error=str(exc))
                    return q.PositionChanged(self.clock(), None)
            case q.DialOperator(operator=endpoint, leg=leg):
                caller_id = (f'"{legs.name or legs.number}" <{legs.number}>'
                             if legs.number else None)
                try:
                    await self.ari.originate(endpoint, app=self.app,
                                             app_args=f"{OPERATOR_ARG},{caller}",
                                             channel_id=ids.part(caller, leg),
                                             caller_id=caller_id, timeout=self.ring_timeout,
                                             variables=desk_phone_variables(endpoint))
                except AriError as exc:
                    return q.OperatorMissed(self.clock(), endpoint, False, exc.message)
            case q.HangUpOperator(leg=leg):
                if leg:
                    await unless_gone(self.ari.hangup(ids.part(caller, leg)))
            case q.ReleaseOperator(operator=endpoint, after=after):
                await self.desk.operators(queue).release(endpoint, caller, after)
            case q.PutBack():
                await self.desk.put_back(queue, caller, machine.arrival or self.clock())
                self.dispatcher.kick(queue)
            case q.LeaveLine(abandoned=abandoned):
                await self.desk.leave(queue, caller, abandoned=abandoned, number=legs.number,
                                      arrival=machine.arrival)
            case q.Whisper(media=media, tag=tag, prompt=prompt):
                if machine.leg:  # the operator alone: their leg is not bridged yet
                    await self.ari.play(ids.part(caller, machine.leg), list(media),
                                        ids.playback(caller, tag, prompt, OPERATOR),
                                        lang=legs.language)
            case q.KeepPlace(number=number, own_number=own, chosen=chosen):
                return await self._keep_place(legs, machine, number, own, chosen)
            case _:
                raise TypeError(f"no ARI mapping for {action!r}")
        return None

    async def _keep_place(self, legs: CallLegs, machine: q.QueueMachine, number: str,
                          own: bool, chosen: str) -> object:
        """A callback request that waits in line at the caller's place: dialled when its turn
        comes (queue/dispatcher.py), and by the callback engine at the latest at the end of
        the window it is promised, should the line not get there first."""
        settings = machine.settings
        try:
            accepted = await self.callbacks.accept(CallbackRequest(
                number=number, source="queue", call_id=legs.call_id, name=legs.name,
                reason=f"queue {settings.queue}", for_whom=settings.department,
                own_number=own, language=legs.language))
        except RefusedNumber as refused:
            return q.PlaceNotKept(self.clock(), refused.message)
        request = accepted.request
        if request.latest_at is not None and not accepted.merged:
            request.next_attempt_at = request.latest_at  # the line calls it first
            await self.callbacks.save(request)
        await self.desk.keep_place(settings.queue, legs.call_id, request.number, request.id,
                                   machine.arrival or self.clock())
        self.dispatcher.kick(settings.queue)
        now = self.clock()
        said = spoken_window(request.latest_at, now, legs.language) if request.latest_at else ()
        return q.PlaceKept(now, said, (("request", request.id), ("number", request.number),
                                       ("chosen", chosen), ("merged", accepted.merged),
                                       ("window", [request.earliest_at, request.latest_at])))

    async def _calling_again(self, legs: CallLegs, now: float) -> tuple[bool, str | None]:
        """From the customer card: a contact in the last week other than this call, and the
        last topic they gave (for the operator's whisper)."""
        if self.customers is None or not legs.number:
            return False, None
        try:
            card = await self.customers.card(legs.number)
        except STORAGE_ERRORS:
            return False, None
        earlier = [e for e in (card or {}).get("history", ())
                   if e.get("call_id") != legs.call_id and now - e.get("t", 0) < RECENT]
        topics = [e.get("topic") or e.get("reason") for e in earlier
                  if e.get("topic") or e.get("reason")]
        return bool(earlier), (topics[-1] if topics else None)

    # --- after the call ------------------------------------------------------------------------
    def on_event(self, event) -> None:
        """A call-events consumer: a call put through from a queue starts its talk time; its
        end counts for the queue's estimates."""
        if event.name == "queue:connected":
            queue = event.data.get("queue")
            if queue:
                self.dispatcher.spawn(self.desk.talk_started(event.call_id, str(queue),
                                                             event.at))
        elif event.name == "inbound:call_ended":
            self.dispatcher.spawn(self.desk.talk_ended(event.call_id, event.at))


def _with_language(settings: q.QueueSettings, language: str) -> q.QueueSettings:
    return replace(settings, language=language)


def queue_settings(policy, numbers) -> dict[str, q.QueueSettings]:
    """Each queue's machine settings from the policy."""
    out = {}
    for queue in policy.queues:
        entry = next((e for e in policy.directory if e.id == queue.department), None)
        name_prompt = (entry.name_prompt or f"directory-{entry.id}") if entry else None
        out[queue.name] = q.QueueSettings(
            queue=queue.name, department=queue.department, name_prompt=name_prompt,
            check_in_interval=queue.check_in_interval, threshold=queue.threshold,
            max_wait=queue.max_wait, default_after_max_wait=queue.default_after_max_wait,
            choice_timeout=queue.choice_timeout, menu_repeat_after=queue.menu_repeat_after,
            language=policy.default_language, numbers=numbers,
            service_level=queue.service_level)
    return out
