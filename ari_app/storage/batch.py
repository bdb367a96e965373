"""Commands of concurrent requests sent to Redis together (group commit).

redis-py spends most of a small request's CPU per round trip, not per command: a pool
checkout, a timeout, a retry wrapper, a read loop. At 2,000 web requests a second that was
most of the intake's CPU. Here every request that reaches Redis while a round trip is out
joins the next one, so under load a round trip carries tens of requests' commands, and a lone
request still goes at once. Each request waits for its own replies, so nothing is answered
before Redis has it.

    batch = Batched(redis)
    incr, ttl = await batch.send(("INCR", key), ("EXPIRE", key, 60))
    reply, = await batch.send(batch.script(LUA).call(keys=[...], args=[...]))
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["Batched", "BatchedScript"]

Command = tuple  # ("INCR", key), ("EVALSHA", sha, n, *keys, *args): one Redis command


@dataclass(frozen=True)
class BatchedScript:
    """A Lua script sent by its digest; Batched loads it again where Redis lost it."""
    sha: str

    def call(self, *, keys: Sequence[str], args: Sequence = ()) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


class Batched:
    def __init__(self, redis: Redis, *, most: int = 500) -> None:
        self.redis, self.most = redis, most  # `most` commands in one round trip
        self._waiting: list[tuple[tuple[Command, ...], asyncio.Future]] = []
        self._sender: asyncio.Task | None = None
        self._scripts: dict[str, str] = {}   # digest -> text, to load again
        self._digests: dict[str, BatchedScript] = {}
        self.round_trips = 0  # how many went out, for the benches

    def script(self, text: str) -> BatchedScript:
        """`text` by its digest, hashed once: a form's script is named thousands of times a
        second."""
        known = self._digests.get(text)
        if known is None:
            known = self._digests[text] = BatchedScript(hashlib.sha1(text.encode()).hexdigest())
            self._scripts[known.sha] = text
        return known

    async def send(self, *commands: Command) -> list:
        """Each command's reply, in order, once Redis has answered them all; the first
        command's error is raised (the others' replies are then lost, not undone)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((commands, future))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_waiting())
        return await future

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                taken, size = 0, 0
                while taken < len(self._waiting) and (not taken or size < self.most):
                    size += len(self._waiting[taken][0])
                    taken += 1
                batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
                await self._send(batch)
        finally:
            self._sender = None
            left, self._waiting = self._waiting, []  # only when cancelled (the app stops)
            for _, future in left:
                future.cancel()

    async def _send(self, batch: list[tuple[tuple[Command, ...], asyncio.Future]]) -> None:
        self.round_trips += 1
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for commands, _ in batch:
                    for command in commands:
                        pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
            replies = await self._load_lost_scripts(batch, replies)
        except BaseException as exc:  # Redis away: every request in this round trip learns
            for _, future in batch:
                if not future.done():
                    future.set_exception(_copy(exc))
            if not isinstance(exc, Exception):
                raise
            return
        at = 0
        for commands, future in batch:
            mine, at = replies[at:at + len(commands)], at + len(commands)
            if future.done():  # its request went away; its commands were still sent
                continue
            error = next((r for r in mine if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(mine)

    async def _load_lost_scripts(self, batch, replies: list) -> list:
        """A script Redis does not know (restarted, SCRIPT FLUSH) did not run: load it and run
        that command again, alone."""
        lost = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if not lost:
            return replies
        commands = [c for cs, _ in batch for c in cs]
        for i in lost:
            sha = commands[i][1]
            if sha in self._scripts:
                await self.redis.script_load(self._scripts[sha])
                try:
                    replies[i] = await self.redis.execute_command(*commands[i])
                except Exception as exc:  # noqa: BLE001 - the request that sent it learns
                    replies[i] = exc
        return replies


def _copy(exc: BaseException) -> BaseException:
    """One exception object per waiting request (a shared one would gather every request's
    traceback), with the original's traceback: it says the error came from inside redis-py
    (storage/faults.py)."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:  # noqa: BLE001 - an exception type that wants other arguments
        return exc
    copy.__cause__ = exc.__cause__
    return copy.with_traceback(exc.__traceback__)
