"""The shards this instance holds, each an ARI app name with its own events WebSocket, and the
claims of new callers under its home shard.

Why leases on app names: Asterisk hands an app's events to the WebSocket that connected last,
while the first keeps its REST access: two processes on one name is split brain. So a shard's
socket is opened only while its lease (calls/ownership.py, keys `etq:shard:{<app>}:*`) is
ours, and closed the moment the lease is lost, or when we could not renew it for most of its
ttl (cut off from Redis: a survivor may already hold it).

Why StasisBroadcast: a caller offered to every instance is taken by one that is up and can
serve (first claim wins); when none claims in time, the dialplan gives the caller the way out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis

from ari_app.ari import AriClient, AriError, AriNotFound, EventStream
from ari_app.ari import operations as ops
from ari_app.calls.events import RuleEvents
from ari_app.calls.ownership import CallOwnership
from ari_app.pool.plan import Release, ShardView, Take, plan
from ari_app.storage import storage_away
from ari_app.storage.keyspace import Keyspace

__all__ = ["ShardKeeper", "STEPS", "POOL_EVENTS"]

logger = structlog.get_logger()

# what a shard's socket must let through besides the calls' own events
POOL_EVENTS = frozenset({"CallBroadcast", "ApplicationReplaced"})
# the pool's call events (label -> step)
STEPS = {"claimed": "claimed", "claim lost": "claim_lost", "taken over": "taken_over"}


class ShardKeeper:
    """`on_event(event)` gets every event of every shard held (CallBroadcast excepted);
    `on_connected(app, takeover)` runs after each (re)connect of a shard's socket, before its
    events are read: the calls in it are resumed there; `on_stopped(app)` when its socket is
    closed for good (lease lost, cut off, handed back, shutdown): its next holder drives them."""

    def __init__(self, ari: AriClient, redis: Redis, *, keys: Keyspace, instance: str,
                 home: str, apps: list[str], lease: float,
                 on_event: Callable[[dict], None],
                 on_connected: Callable[[str, bool], Awaitable[None]],
                 events: RuleEvents, may_claim: Callable[[], bool] = lambda: True,
                 node: str | None = None,
                 on_stopped: Callable[[str], None] = lambda app: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if home not in apps:
            raise ValueError(f"the home app {home!r} is not one of the pool's apps {apps}")
        self.ari, self.redis, self.keys = ari, redis, keys.shards(node)
        self.instance, self.home, self.apps, self.lease = instance, home, list(apps), lease
        self.on_event, self.on_connected, self.events = on_event, on_connected, events
        self.on_stopped = on_stopped
        self.may_claim, self.clock = may_claim, clock
        self.leases = CallOwnership(redis, instance, lease, keys=self.keys,
                                    on_lost=self._lost)
        self._streams: dict[str, tuple[EventStream, asyncio.Task]] = {}
        self._takeover: set[str] = set()   # shards taken from another: resume their calls
        self._claims: set[asyncio.Task] = set()
        self._renewed_at = clock()
        self.rounds = 0
        self.waiting_for: str | None = None  # who holds our home shard while we wait
        self.claims = {"won": 0, "lost": 0, "gone": 0, "declined": 0}
        self.first_round = asyncio.Event()

    # --- what /healthz and startup read (the EventStream's face) ---------------------------
    @property
    def connected(self) -> asyncio.Event:
        stream = self._streams.get(self.home)
        return stream[0].connected if stream else _NEVER

    @property
    def last_error(self) -> str | None:
        stream = self._streams.get(self.home)
        if stream is not None:
            return stream[0].last_error
        if self.waiting_for:
            return f"waiting for app {self.home}: held by {self.waiting_for}"
        return f"app {self.home} not held yet"

    def held(self) -> list[str]:
        return sorted(self._streams)

    def holds(self, app: str) -> bool:
        """Ours to act on now: its socket open and its lease renewed within most of its ttl.
        A process paused past that may have been replaced, and must not act (a timer due at
        its resumption) before its next round finds out."""
        return app in self._streams and not self._overdue()

    def _overdue(self) -> bool:
        """Not renewed for most of the lease: another instance may hold our shards by now."""
        return self.clock() - self._renewed_at > self.lease * 0.8

    def status(self) -> dict:
        """For /healthz: what this instance holds, waits for, and how its claims went."""
        return {"instance": self.instance, "home": self.home, "held": self.held(),
                "waiting_for_home": self.waiting_for, "claims": dict(self.claims),
                "lease_renewed_s_ago": round(self.clock() - self._renewed_at, 1)}

    async def drop(self) -> None:
        """Close every socket as a network failure would (tests): each reconnects."""
        for stream, _ in list(self._streams.values()):
            await stream.drop()

    # --- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Every third of the lease: renew, look at every shard, take and hand back."""
        interval = self.lease / 3
        while True:
            started = self.clock()
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if storage_away(exc) or isinstance(exc, (asyncio.TimeoutError, AriError)):
                    logger.warning("pool round failed; retrying next tick",
                                   error=f"{type(exc).__name__}: {exc}")
                else:
                    logger.exception("pool round failed; retrying next tick")
            self._cut_off()
            self.first_round.set()
            await asyncio.sleep(max(0.0, interval - (self.clock() - started)))

    async def _round(self) -> None:
        await asyncio.wait_for(self.leases.renew_all(), timeout=self.lease / 2)
        self._renewed_at = self.clock()
        async with self.redis.pipeline(transaction=False) as pipe:
            for app in self.apps:
                pipe.get(self.keys.lease(app))
                pipe.exists(self.keys.fencing_counter(app))
            raw = await pipe.execute()
        views: dict[str, ShardView] = {}
        for i, app in enumerate(self.apps):
            value = raw[2 * i]
            value = value.decode() if isinstance(value, bytes) else value
            owner = value.rpartition(":")[0] if value else None
            channels = None
            if app in self._streams and app != self.home:
                channels = await self._channels(app)
            views[app] = ShardView(owner, bool(raw[2 * i + 1]), channels)
        home = views[self.home]
        self.waiting_for = (home.owner if home.owner not in (None, self.instance)
                            and self.home not in self._streams else None)
        for action in plan(self.instance, self.home, self._streams, views):
            if isinstance(action, Take):
                await self._take(action.app, action.takeover)
            elif isinstance(action, Release):
                await self._release(action.app)
        self.rounds += 1

    async def _channels(self, app: str) -> int | None:
        try:
            return len((await self.ari.call(ops.APPLICATION, applicationName=app))
                       .get("channel_ids", []))
        except AriNotFound:
            return 0

    def _cut_off(self) -> None:
        """Overdue: stop using our shards before another instance can (renewals take them
        back if nobody did)."""
        if self._streams and self._overdue():
            for app in list(self._streams):
                logger.warning("shard lease not renewed in time: its socket is closed",
                               app=app, instance=self.instance)
                self._stop(app)

    async def _take(self, app: str, takeover: bool) -> None:
        if await self.leases.claim(app) is None:
            return  # someone else was faster
        if takeover:
            self._takeover.add(app)
        logger.info("shard taken", app=app, takeover=takeover, instance=self.instance)
        stream = EventStream(self.ari, app, self._routed(app),
                             on_connected=lambda: self._connected(app), outage=storage_away)
        self._streams[app] = (stream, asyncio.create_task(stream.run(), name=f"shard:{app}"))

    async def _connected(self, app: str) -> None:
        await self.on_connected(app, app in self._takeover)
        self._takeover.discard(app)

    async def _release(self, app: str) -> None:
        logger.info("shard handed back: no call left in it", app=app, instance=self.instance)
        self._stop(app)
        await self.leases.release(app)

    def _lost(self, app: str) -> None:
        logger.warning("shard lease lost: another instance holds it; its socket is closed",
                       app=app, instance=self.instance)
        self._stop(app)

    def _stop(self, app: str) -> None:
        stream = self._streams.pop(app, None)
        self._takeover.discard(app)
        if stream is not None:
            stream[1].cancel()
            self.on_stopped(app)

    async def close(self) -> None:
        """Shutting down: claim nothing more, close the sockets. A shard with callers in it is
        left as an orphan, for a survivor to take over at its next round; an empty one is
        released (its own instance takes it at once)."""
        self.may_claim = lambda: False
        for task in list(self._claims):
            task.cancel()
        tasks = [task for _, task in self._streams.values()]
        for app in list(self._streams):
            self._stop(app)
        await asyncio.gather(*tasks, *self._claims, return_exceptions=True)
        for app in list(self.leases.held()):
            try:
                if await self._channels(app) == 0:
                    await self.leases.release(app)
                else:
                    logger.info("shard left to the pool: callers in it", app=app)
                    await self.leases.abandon(app)
            except Exception as exc:  # Redis or Asterisk away: the lease expires by itself
                logger.warning("shard lease not let go", app=app, error=str(exc))

    # --- events and claims --------------------------------------------------------------------
    def _routed(self, app: str) -> Callable[[dict], None]:
        def on_event(event: dict) -> None:
            kind = event.get("type")
            if kind == "CallBroadcast":
                if app == self.home:  # every shard's socket gets it: answer once
                    self._offer(event)
            elif kind == "ApplicationReplaced":
                logger.warning("another process opened this app's WebSocket: this instance "
                               "stops using it", app=app, instance=self.instance)
                self._stop(app)
                task = asyncio.get_running_loop().create_task(self.leases.release(app))
                self._claims.add(task)
                task.add_done_callback(self._claims.discard)
            else:
                self.on_event(event)
        return on_event

    def _offer(self, event: dict) -> None:
        channel = (event.get("channel") or {}).get("id")
        if not channel:
            return
        if not self.may_claim() or self.clock() - self._renewed_at > self.lease * 0.5:
            self.claims["declined"] += 1
            return  # not fit to serve a caller now: another instance, or the way out
        task = asyncio.get_running_loop().create_task(self._claim(channel))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)

    async def _claim(self, channel: str) -> None:
        started = time.perf_counter()
        try:
            await self.ari.call(ops.CLAIM, channelId=channel, application=self.home)
        except AriNotFound:
            self.claims["gone"] += 1  # hung up, or the claim window closed
            return
        except AriError as exc:
            if exc.status == 409:
                self.claims["lost"] += 1
                self.events.note(channel, "claim lost", {"app": self.home})
                return
            logger.warning("claim failed", channel=channel, error=str(exc))
            return
        self.claims["won"] += 1
        self.events.note(channel, "claimed", {
            "app": self.home, "instance": self.instance,
            "ms": round((time.perf_counter() - started) * 1000, 1)})


class _Never(asyncio.Event):
    def set(self) -> None:  # noqa: D401 - never set: no home socket
        pass


_NEVER = _Never()
