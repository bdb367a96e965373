"""The callback dialer: works through due requests, one attempt at a time per request.

Decided here, per request: whether it may ring now (quiet hours in the customer's local time,
business hours: else it waits for the next allowed moment), whether an operator is free (agent
-first needs one before dialling; never more callback dials than free operators), and what an
attempt's outcome means: connected = done; busy, no answer or not reached = retry after
`retry_backoff` x attempts, until `max_attempts`, then failed with the reason; the customer's
"another time" = the same time tomorrow; no operator = try again shortly, not counted.

Several app instances may run it: a request is claimed with a Redis lock before it is touched,
so no request is ever dialled twice at once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from typing import Protocol
from datetime import datetime, timezone

import structlog
from redis.asyncio import Redis

from ari_app.ari import AriUnavailable
from ari_app.callback import machine as k
from ari_app.callback.numbers import RefusedNumber, check_number
from ari_app.callback.service import OPEN, CallbackRequest, CallbackRequests, request_zone
from ari_app.callback.stasis import PREFIX
from ari_app.callback.window import callable_at, next_callable
from ari_app.customers.service import Customers
from ari_app.operators.service import OperatorService
from ari_app.policy import Policy
from ari_app.storage import STORAGE_ERRORS

__all__ = ["CallbackDialer"]

logger = structlog.get_logger()
NO_OPERATOR_RETRY = 15.0
ROUND = 50  # requests looked at per round
RING_MARGIN = 15.0  # past a leg's ring timeout without a word from Asterisk: the leg is lost
LEASE = 600  # seconds a claimed request stays ours without news (a crashed instance frees it)
# "tomorrow at about this time" holds when the first moment the customer may be called after
# 24 h is within this (s); later than that, they are told "in our working hours"
ABOUT_THIS_TIME = 3600


class AttemptCalls(Protocol):
    """Dials one attempt and reports its end to `CallbackDialer.finished`."""

    async def start(self, machine: k.CallbackCallMachine, started: k.Started) -> None: ...


# why the customer is called, said after who calls: where they asked for it
ABOUT = {"supervisor": "callback-about-complaint", "hold-fallback": "callback-about-wait",
         "queue": "callback-about-wait", "transfer-fallback": "callback-about-transfer"}


def about_prompt(request: CallbackRequest) -> str:
    """The customer's own request, in words they recognise: the complaint they left, the wait
    they gave up, the person they could not reach; a form from the web page, their request."""
    return ABOUT.get(request.source, "callback-about-request")


class CallbackDialer:
    def __init__(self, redis: Redis, requests: CallbackRequests, operators: OperatorService,
                 customers: Customers, policy: Policy, *, tick: float = 1.0,
                 supervisors: OperatorService | None = None,
                 clock: Callable[[], float] = time.time, owner: str | None = None,
                 calls: "AttemptCalls", other_nodes: bool = False,
                 ready: Callable[[], bool] = lambda: True) -> None:
        """`ready()`: the app takes the calls it dials (its events socket is connected and
        resynced). Until then an attempt is not started: Asterisk would ring the operator and
        hang the leg up when it enters an app nobody listens to, and no event would say so."""
        self.redis, self.requests, self.operators = redis, requests, operators
        # several Asterisk nodes: our operators are this node's only, another node's dialer
        # may have one free now, so a request nobody here can take is not put off
        self.other_nodes = other_nodes
        self.supervisors = supervisors
        self._round_was_full = False
        self.customers, self.policy, self.tick, self.clock = customers, policy, tick, clock
        self.owner = owner or uuid.uuid4().hex[:12]
        self.calls = calls  # where an attempt is dialed (callback/stasis.py)
        self.ready = ready

    def _who_calls(self, request: CallbackRequest) -> OperatorService:
        """The people who owe this callback: a supervisor's promise is kept by a supervisor,
        a message for a department by that department; anything else by any operator."""
        if request.for_whom == "supervisor" and self.supervisors is not None:
            return self.supervisors
        entry = next((e for e in self.policy.directory if e.id == request.for_whom), None)
        if entry is not None:
            return self.operators.for_endpoints([entry.endpoint])
        return self.operators

    def _lock(self, request_id: str) -> str:
        return self.requests.keys.callback_lock(request_id)

    async def run(self) -> None:
        away: str | None = None  # "storage" or "Asterisk" while it is away
        while True:
            try:
                await self.dial_due()
            except asyncio.CancelledError:
                raise
            except (*STORAGE_ERRORS, AriUnavailable) as exc:  # wait for it, one line an outage
                what = "Asterisk" if isinstance(exc, AriUnavailable) else "storage"
                if away != what:
                    logger.warning(f"callback dialer waits for {what}", error=str(exc))
                away, self._round_was_full = what, False
            except Exception:
                logger.exception("callback dialer round failed")
            else:
                if away is not None:
                    logger.info(f"callback dialer resumed after {away} came back")
                away = None
            if not self._round_was_full:  # a full round: more may be due, go on at once
                await asyncio.sleep(self.tick)

    async def dial_due(self) -> int:
        """One round: start an attempt for every due request that may ring now. How many."""
        now = self.clock()
        started = 0
        due = await self.requests.due(now, limit=ROUND)
        self._round_was_full = len(due) == ROUND
        random.shuffle(due)  # instances reading the same head of the queue rarely collide
        for request_id in due:
            if not await self.redis.set(self._lock(request_id), self.owner, nx=True, ex=LEASE):
                continue  # another instance has it
            request = await self.requests.get(request_id)
            if request is None or request.status not in OPEN:
                await self.redis.zrem(self.requests.index_key, request_id)
                await self._unlock(request_id)
                continue
            if not await self._may_ring(request, now):
                continue
            number = await self._checked(request, now)
            if number is None:
                continue  # refused: closed without an operator kept or anybody rung
            # never more callback dials than free operators, whichever party rings first
            endpoint = await self._reserve(self._who_calls(request), request_id)
            if endpoint is None:
                if not self.other_nodes:
                    request.next_attempt_at = now + NO_OPERATOR_RETRY
                    await self.requests.save(request)
                await self._unlock(request_id)
                continue  # nobody free for this one (others may be for someone else)
            await self._start(request, number, endpoint, now)
            started += 1
        if not started:  # nothing could start: the next round waits its tick (no spinning)
            self._round_was_full = False
        return started

    async def dial_kept(self, request_id: str, operators: OperatorService) -> str:
        """A callback that kept its place in a queue has reached the head: an operator of the
        queue first (reserved), then the customer. "started", "no-operator" (nobody free: it
        stays in line), or "left" (not now: quiet hours, already dialled or closed; the
        request's own schedule has it)."""
        now = self.clock()
        if not await self.redis.set(self._lock(request_id), self.owner, nx=True, ex=LEASE):
            return "left"  # an attempt is on already
        request = await self.requests.get(request_id)
        if request is None or request.status not in OPEN:
            await self._unlock(request_id)
            return "left"
        if not await self._may_ring(request, now):
            return "left"
        number = await self._checked(request, now)
        if number is None:
            return "left"
        endpoint = await self._reserve(operators, request_id)
        if endpoint is None:
            await self._unlock(request_id)
            return "no-operator"
        await self._start(request, number, endpoint, now)
        return "started"

    async def _reserve(self, operators: OperatorService, request_id: str) -> str | None:
        """A free operator for a locked request; with Asterisk away, the lock is given back
        (the request is due again, at once, when it is back) before the error goes up."""
        if not self.ready():
            await self._unlock(request_id)
            raise AriUnavailable(0, "GET", "/events",
                                 "the app's ARI events are not connected (Asterisk restarting?): "
                                 "no callback is dialled before they are")
        try:
            return await operators.reserve_free(f"{PREFIX}{request_id}")
        except AriUnavailable:
            await self._unlock(request_id)
            raise

    async def _may_ring(self, request: CallbackRequest, now: float) -> bool:
        zone = request_zone(request, self.policy)
        moment = datetime.fromtimestamp(now, timezone.utc)
        if callable_at(moment, zone, self.policy.business_hours, self.policy.quiet_hours):
            return True
        later = next_callable(moment, zone, self.policy.business_hours, self.policy.quiet_hours)
        request.next_attempt_at = later.timestamp() if later else now + 86400
        request.history.append({"t": round(now, 3), "event": "waiting",
                                "why": "quiet or closed hours", "until": request.next_attempt_at})
        await self.requests.save(request)
        await self._unlock(request.id)
        return False

    async def _checked(self, request: CallbackRequest, now: float) -> str | None:
        """Defence in depth: the number was checked when accepted; again before an operator
        is kept for it, and what is dialled is the checked E.164 form, never the stored text.
        None: refused, and the request is closed saying why."""
        try:
            return check_number(request.number, self.requests.rules)
        except RefusedNumber as refused:
            await self._refuse(request, refused, now)
            return None

    async def _start(self, request: CallbackRequest, number: str, operator: str,
                     now: float) -> None:
        if request.latest_at and now > request.latest_at and not any(
                h["event"] == "promise missed" for h in request.history):
            # the window the customer was told is a commitment: a late call is on the record
            request.history.append({"t": round(now, 3), "event": "promise missed",
                                    "late_by": round(now - request.latest_at)})
            await self.customers.note(request.number, "callback promise missed",
                                      request=request.id, late_by=round(now - request.latest_at))
            logger.warning("callback promise missed", request=request.id,
                           late_by=round(now - request.latest_at))
        request.attempts += 1
        request.status = "dialing"
        request.next_attempt_at = now + LEASE  # if this instance dies, it is due again later
        request.history.append({"t": round(now, 3), "event": "attempt",
                                "attempt": request.attempts, "operator": operator or None})
        await self.requests.save(request)
        call_id = f"{PREFIX}{request.id[:16]}{request.attempts}"
        machine = k.CallbackCallMachine(call_id, request_id=request.id, number=number,
                                        operator=operator, language=request.language,
                                        answer_timeout=self.policy.callback.answer_timeout,
                                        operator_ring_guard=(self.policy.operators.ring_timeout
                                                             + RING_MARGIN),
                                        customer_ring_guard=(self.policy.callback.ring_timeout
                                                             + RING_MARGIN))
        await self.customers.note(request.number, "callback attempt", request=request.id,
                                  attempt=request.attempts)
        _, another_time = self._another_time(request, now)
        await self.calls.start(machine, k.Started(
            now, self.policy.callback.dialing == "customer-first", about_prompt(request),
            another_time))

    def _another_time(self, request: CallbackRequest, now: float) -> tuple[float, str]:
        """When the customer who chose "another time" is called again, and what they are told:
        tomorrow at about this time when they may be called then; else the first moment after
        it when they may (closed, or their night), told as "in our working hours"."""
        tomorrow = now + 86400
        later = next_callable(datetime.fromtimestamp(tomorrow, timezone.utc),
                              request_zone(request, self.policy), self.policy.business_hours,
                              self.policy.quiet_hours)
        if later is None or later.timestamp() - tomorrow < ABOUT_THIS_TIME:
            return (later.timestamp() if later else tomorrow), "callback-rescheduled"
        return later.timestamp(), "callback-rescheduled-later"

    async def _refuse(self, request: CallbackRequest, refused: RefusedNumber,
                      now: float) -> None:
        """A number that must never be dialled (stored before the check, or the policy changed):
        closed as failed, saying why, whether or not an operator is free."""
        logger.warning("callback number refused before dialling", request=request.id,
                       why=refused.message)
        request.status, request.outcome = "failed", f"refused number: {refused.message}"
        request.history.append({"t": round(now, 3), "event": "refused", "why": refused.message})
        await self.requests.save(request)
        await self.customers.note(request.number, "callback refused", request=request.id,
                                  why=refused.message)
        await self._unlock(request.id)

    async def adopted(self, machine: k.CallbackCallMachine) -> None:
        """An attempt another process started is driven here now (this one holds the app its
        legs were dialled into): its request's lock passes to this dialer, which gives it back
        when the attempt ends."""
        await self.redis.set(self._lock(machine.request_id), self.owner, ex=LEASE)

    async def finished(self, machine: k.CallbackCallMachine, finish: k.Finish) -> None:
        """An attempt ended: close, retry or reschedule its request."""
        now, cb = self.clock(), self.policy.callback
        if machine.operator:  # the same Redis reservation, whoever's list it came from
            # a callback that connected was a call: the operator's wrap-up starts
            await self.operators.release(machine.operator, f"{PREFIX}{machine.request_id}",
                                         "call" if finish.outcome == "connected" else "unused")
        request = await self.requests.get(machine.request_id)
        if request is None:
            return
        if any(h.get("event") == "attempt ended" and h.get("call") == machine.call_id
               for h in request.history):  # told twice (its end tried again): once is all
            if not await self.customers.noted(request.number, call=machine.call_id):
                await self._card_line(request, machine, finish)  # Redis went away before it
            await self._unlock(request.id)
            return
        outcome = finish.outcome
        request.history.append({"t": round(now, 3), "event": "attempt ended",
                                "outcome": outcome, "detail": finish.data.get("detail", ""),
                                "call": machine.call_id})
        if outcome == "connected":
            request.status, request.outcome = "done", "connected"
        elif outcome == "rescheduled":
            # a new time, agreed with the customer: the window promised moves with it (the
            # old one is no longer the promise, so a call at the new one is not late)
            at, _ = self._another_time(request, now)
            request.status, request.next_attempt_at = "pending", at
            request.earliest_at, request.latest_at = at, at + 60 * cb.window_minutes
        elif outcome == "operator-unavailable":
            request.attempts -= 1  # not the customer's failure
            request.status, request.next_attempt_at = "pending", now + NO_OPERATOR_RETRY
        elif request.attempts >= cb.max_attempts:
            request.status = "failed"
            request.outcome = (f"{outcome} after {request.attempts} attempts "
                               f"({finish.data.get('detail', '')})")
        else:
            request.status = "pending"
            request.next_attempt_at = now + cb.retry_backoff * request.attempts
        await self.requests.save(request)
        await self._card_line(request, machine, finish)
        await self._unlock(request.id)

    async def _card_line(self, request: CallbackRequest, machine: k.CallbackCallMachine,
                         finish: k.Finish) -> None:
        """The attempt on the customer's card: the request's new status, and the call."""
        await self.customers.note(request.number, "callback " + (
            request.status if request.status != "pending" else "retry"), request=request.id,
            outcome=finish.outcome, call=machine.call_id)

    async def _unlock(self, request_id: str) -> None:
        await self.redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then "
                              "return redis.call('del', KEYS[1]) end return 0", 1,
                              self._lock(request_id), self.owner)
