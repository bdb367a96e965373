"""Who takes the head of a queue: when an operator may be free (a caller joined or was put
back, a call ended, an operator logged in or unpaused, a wrap-up ran out), the longest idle
free operator of the queue is reserved for the entry at the head, and the entry leaves the line
in one step (first claim wins across instances).

A live caller's entry is offered to the instance that drives the call: at once when that is
this one, else over Redis pub/sub; the offer is kept in Redis until the call takes it up, and
one nobody takes up within `OFFER_TIMEOUT` (its instance died) is undone: the operator is let
go and the entry goes back to its place. A callback that kept its place is dialled by the
callback engine with the operator already reserved (agent first): never more callback dials
than free operators.

Rounds are events, not a poll; a slow sweep (`sweep`) only covers what no event tells (a
phone that came back, another instance's wrap-up ending).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis

from ari_app.operators.service import OperatorService
from ari_app.queue.service import QueueDesk
from ari_app.queue.store import CALLBACK, QueueEntry
from ari_app.storage import STORAGE_ERRORS

__all__ = ["Offer", "QueueDispatcher"]

logger = structlog.get_logger()

OFFER_TIMEOUT = 15.0  # seconds an offer may wait for the caller's call to take it up

Offer = tuple[str, QueueEntry, str]  # queue, entry, operator endpoint
# (queue, entry, operator) -> True when this instance drives the call and took it up
Deliver = Callable[[str, QueueEntry, str], Awaitable[bool]]
# (entry, the queue's operators) -> the kept callback's attempt: "started" (an operator was
# reserved first), "no-operator" (back in line) or "left" (the callback engine has it now:
# quiet hours, closed)
CallBack = Callable[[QueueEntry, OperatorService], Awaitable[str]]


class QueueDispatcher:
    def __init__(self, desk: QueueDesk, redis: Redis, *, deliver: Deliver, call_back: CallBack,
                 owns: Callable[[str], bool], sweep: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.desk, self.redis, self.keys = desk, redis, desk.keys
        self.deliver, self.call_back, self.owns = deliver, call_back, owns
        self.sweep, self.clock = sweep, clock
        self._running: dict[str, asyncio.Task] = {}
        self._again: set[str] = set()
        self._later: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task] = set()

    # --- when to look ------------------------------------------------------------------------
    def kick(self, queue: str | None = None) -> None:
        """Look at `queue` (None: every queue) now; a round already running looks again."""
        for name in [queue] if queue else self.desk.names:
            if name not in self.desk.policies:
                continue
            if name in self._running:
                self._again.add(name)
                continue
            self._running[name] = asyncio.get_running_loop().create_task(
                self._rounds(name), name=f"queue-dispatch-{name}")

    def operator_changed(self, endpoint: str) -> None:
        """An operator logged in, unpaused or was let go: the queues they serve may move."""
        for name in self.desk.queues_of(endpoint):
            self.kick(name)

    def kick_later(self, delay: float, endpoint: str) -> None:
        """After a wrap-up: the operator is offered calls again then."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._later.discard(handle)
            self.operator_changed(endpoint)

        handle = loop.call_later(max(0.0, delay) + 0.05, fire)
        self._later.add(handle)

    async def _rounds(self, queue: str) -> None:
        try:
            while True:
                self._again.discard(queue)
                try:
                    await self._dispatch(queue)
                except STORAGE_ERRORS as exc:
                    logger.warning("queue dispatch waits for storage", queue=queue,
                                   error=str(exc))
                    return
                except Exception:
                    logger.exception("queue dispatch failed", queue=queue)
                    return
                if queue not in self._again:
                    return
        finally:
            self._running.pop(queue, None)

    # --- one round: the head for the longest idle free operator -------------------------
    async def _dispatch(self, queue: str) -> None:
        store, operators = self.desk.store, self.desk.operators(queue)
        while True:
            head = await store.head(queue, self.desk.node)
            if head is None:
                return
            if head.kind == CALLBACK:
                entry = await store.take(queue, head.id)
                if entry is None:
                    continue
                if await self.call_back(entry, operators) == "no-operator":
                    await store.enqueue(queue, entry)  # its own place again
                    return
                continue
            endpoint = await operators.reserve_free(head.id)
            if endpoint is None:
                return  # nobody free: the next operator freed kicks again
            entry = await store.take(queue, head.id)
            if entry is None:  # another instance took it (or the caller left) meanwhile
                await operators.release(endpoint, head.id)
                continue
            await self._offer(queue, entry, endpoint)

    async def _offer(self, queue: str, entry: QueueEntry, endpoint: str) -> None:
        record = json.dumps({"queue": queue, "entry": entry.to_json(), "operator": endpoint,
                             "at": self.clock()})
        await self.redis.hset(self.keys.queue_offers(), entry.id, record)
        if self.owns(entry.id):
            self.spawn(self._take_up(queue, entry, endpoint))
        else:
            await self.redis.publish(self.keys.queue_channel(), record)

    def spawn(self, job: Awaitable[None]) -> None:
        """Run `job` off the caller's path; a failure is logged, never lost."""
        task = asyncio.ensure_future(_logged(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: _close_unstarted(job))  # cancelled at shutdown

    async def _take_up(self, queue: str, entry: QueueEntry, endpoint: str) -> None:
        """This instance drives the call: hand it the operator (its lane answers)."""
        if not await self.redis.hdel(self.keys.queue_offers(), entry.id):
            return  # already taken up, or undone by a sweep
        try:
            taken = await self.deliver(queue, entry, endpoint)
        except Exception as exc:  # the call could not say: never keep the operator
            logger.warning("queue offer not taken up", queue=queue, call_id=entry.id,
                           operator=endpoint, error=str(exc))
            taken = False
        if not taken:
            await self.desk.operators(queue).release(endpoint, entry.id)
            self.kick(queue)

    # --- the background: offers from other instances, the sweep ------------------------------
    async def run(self) -> None:
        """Offers from other instances and the sweep, for as long as the app runs; Redis away
        is a warning and a wait (as everywhere), never a dead task."""
        away = False
        try:
            while True:
                try:
                    await self._listen(resumed=away)
                except STORAGE_ERRORS as exc:
                    if not away:
                        logger.warning("queue dispatcher waits for storage", error=str(exc))
                    away = True
                    await asyncio.sleep(1.0)
        finally:
            for handle in self._later:
                handle.cancel()

    async def _listen(self, resumed: bool) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.queue_channel())
        if resumed:
            logger.info("queue dispatcher resumed after storage came back")
            self.kick()  # what was freed meanwhile
        next_sweep = time.monotonic() + self.sweep
        try:
            while True:
                message = await pubsub.get_message(timeout=max(0.05, next_sweep - time.monotonic()))
                if message is not None and message.get("type") == "message":
                    self._offered(message["data"])
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep
                    await self._sweep()
        finally:
            try:
                await pubsub.aclose()
            except STORAGE_ERRORS:
                pass

    def _offered(self, raw: bytes | str) -> None:
        offer = json.loads(raw)
        entry = QueueEntry.from_json(offer["entry"])
        if self.owns(entry.id):
            self.spawn(self._take_up(offer["queue"], entry, offer["operator"]))

    async def _sweep(self) -> None:
        """Offers nobody took up (the call's instance died) are undone; then every queue is
        looked at (what no event tells: a phone back online, a wrap-up ended elsewhere)."""
        try:
            offers = await self.redis.hgetall(self.keys.queue_offers())
            now = self.clock()
            for call_id, raw in offers.items():
                offer = json.loads(raw)
                if now - offer["at"] < OFFER_TIMEOUT:
                    continue
                if not await self.redis.hdel(self.keys.queue_offers(), call_id):
                    continue  # taken up meanwhile
                entry = QueueEntry.from_json(offer["entry"])
                logger.warning("queue offer undone: nobody took it up", call_id=entry.id,
                               operator=offer["operator"], queue=offer["queue"])
                await self.desk.operators(offer["queue"]).release(offer["operator"], entry.id)
                await self.desk.store.enqueue(offer["queue"], entry)
        except STORAGE_ERRORS as exc:
            logger.warning("queue sweep waits for storage", error=str(exc))
        self.kick()

    async def close(self) -> None:
        for handle in self._later:
            handle.cancel()
        for task in [*self._running.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._running.values(), *self._tasks, return_exceptions=True)



def _close_unstarted(job: Awaitable[None]) -> None:
    """A job whose task was cancelled before it ran (shutdown) is closed, not left for the
    garbage collector to warn that it was never awaited."""
    if inspect.iscoroutine(job) and inspect.getcoroutinestate(job) == inspect.CORO_CREATED:
        job.close()


async def _logged(job: Awaitable[None]) -> None:
    try:
        await job
    except asyncio.CancelledError:
        raise
    except STORAGE_ERRORS as exc:
        logger.warning("queue bookkeeping waits for storage", error=str(exc))
    except Exception:
        logger.exception("queue bookkeeping failed")
