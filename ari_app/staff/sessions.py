"""Signed-in sessions in Redis, so every instance knows them and a restart keeps them.

The cookie holds a random token; Redis holds only its SHA-256 with the account and the
session's CSRF token. A session ends after `idle` seconds without a request (each request
renews it) and at the latest `longest` seconds after sign-in. Wrong passwords are counted per
user name: past `MAX_FAILURES` in `FAILURE_WINDOW` seconds, sign-in waits out the window.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from ari_app.storage.keyspace import Keyspace

__all__ = ["FAILURE_WINDOW", "MAX_FAILURES", "Session", "Sessions"]

MAX_FAILURES = 10
FAILURE_WINDOW = 300


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: str
    operator: str | None
    csrf: str
    started: float

    def public(self) -> dict:
        return {"user": self.user, "role": self.role, "operator": self.operator,
                "csrf": self.csrf, "started": round(self.started, 3)}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions:
    def __init__(self, redis: Redis, *, keys: Keyspace, idle: float, longest: float) -> None:
        self.redis, self.keys = redis, keys
        self.idle, self.longest = idle, longest

    async def start(self, user: str, role: str, operator: str | None) -> tuple[str, Session]:
        """A new session: (the cookie's token, the session)."""
        token = secrets.token_urlsafe(32)
        session = Session(user, role, operator, secrets.token_urlsafe(24), time.time())
        key = self.keys.session(_digest(token))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"user": user, "role": role, "operator": operator or "",
                                    "csrf": session.csrf, "started": repr(session.started)})
            pipe.expire(key, int(self.idle))
            pipe.delete(self.keys.sign_in_failures(user))
            await pipe.execute()
        return token, session

    async def find(self, token: str) -> Session | None:
        """The live session of a cookie's token, renewed; None when it expired or never was."""
        key = self.keys.session(_digest(token))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, int(self.idle), xx=True)
            found, _ = await pipe.execute()
        if not found:
            return None
        value = {(k.decode() if isinstance(k, bytes) else k):
                 (v.decode() if isinstance(v, bytes) else v) for k, v in found.items()}
        started = float(value.get("started", 0))
        if time.time() - started > self.longest:
            await self.redis.delete(key)
            return None
        return Session(value["user"], value["role"], value.get("operator") or None,
                       value["csrf"], started)

    async def end(self, token: str) -> None:
        await self.redis.delete(self.keys.session(_digest(token)))

    async def failures(self, user: str) -> int:
        return int(await self.redis.get(self.keys.sign_in_failures(user)) or 0)

    async def failed(self, user: str) -> None:
        key = self.keys.sign_in_failures(user)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, FAILURE_WINDOW, nx=True)
            await pipe.execute()
