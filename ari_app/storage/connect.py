"""The app's Redis client: the one Redis at `redis_url`, or the master a group of Sentinels
names (`redis_sentinels`, `redis_master`), followed through a failover.

Either way every command is bounded (`redis_timeout`): a Redis stopped, unreachable, or a
master not yet elected is an error within about two timeouts, which the API answers 503
`storage-unavailable` and the calls wait out with their music on (storage/faults.py). Under
Sentinel each new connection asks the sentinels where the master is now, and a connection to a
master that became a replica is dropped on its first READONLY answer: after a failover the
next command goes to the new master, with nobody restarting anything.

What a failover may lose: Redis replicates asynchronously, so a write acknowledged in the last
milliseconds before the master died may not have reached the replica that is promoted (on one
machine or a LAN the stream to the replicas trails by well under a millisecond). Redis'
`min-replicas-to-write` / `min-replicas-max-lag` would bound it to a second, but its NOREPLICAS
refusal is not a storage error redis-py names: not used yet.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] brings it
    hiredis = None

from ari_app.settings import Settings

__all__ = ["MAX_CONNECTIONS", "redacted", "storage_client", "where"]

MAX_CONNECTIONS = 10_000  # Redis' own maxclients: the server's limit, not the pool's


def redacted(url: str) -> str:
    """A URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def storage_client(settings: Settings, *, timeout: float | None = None) -> Redis:
    """Redis with every call bounded; one quick retry covers a connection dropped by a Redis
    restart or a failover."""
    timeout = settings.redis_timeout if timeout is None else timeout
    bounded: dict[str, Any] = dict(
        socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30,
        protocol=2,  # RESP2's replies, as every reader here expects (redis-py 8 asks RESP3)
        # redis-py 8 caps a pool at 100 connections and fails the next command at once ("Too
        # many connections"): 100 callers hanging up together need more, as 7 allowed
        max_connections=MAX_CONNECTIONS,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=1,
                    supported_errors=(RedisConnectionError,)))
    sentinels = settings.sentinels()
    if not sentinels:
        return _packed_in_c(Redis.from_url(settings.redis_url, **bounded))
    url = parse_url(settings.redis_url)  # the password, user and database; not the host
    auth = {k: url[k] for k in ("username", "password", "db") if url.get(k) is not None}
    group = Sentinel(sentinels, sentinel_kwargs={"socket_connect_timeout": timeout,
                                                 "socket_timeout": timeout})
    return _packed_in_c(group.master_for(settings.redis_master, redis_class=Redis, **auth,
                                         **bounded))


def _packed_in_c(client: Redis) -> Redis:
    """Commands packed by hiredis alone: redis-py encodes each argument in Python first (8.2
    hands hiredis only the joining), a tenth of a web form's CPU (two scripts of 10-20
    arguments). The same bytes (str, int, float, bytes); any other value is a DataError, as
    before. The pool's own class (plain, TLS, socket, Sentinel's) is kept underneath."""
    if hiredis is not None:
        pool = client.connection_pool
        pool.connection_class = _hiredis_packing(pool.connection_class)
    return client


@lru_cache(maxsize=None)
def _hiredis_packing(base: type) -> type:
    return type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "CONFIG GET": the words apart, as redis-py does
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a bytearray is bytes to redis-py; anything else is refused
            args = tuple(bytes(a) if isinstance(a, bytearray) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(f"{exc} (a bool, None or other value Redis cannot take)") from exc


def where(settings: Settings) -> str:
    """Where the app's Redis is, for messages (no password)."""
    sentinels = settings.sentinels()
    if not sentinels:
        return redacted(settings.redis_url)
    listed = ", ".join(f"{host}:{port}" for host, port in sentinels)
    return f"the master {settings.redis_master!r} of the sentinels at {listed}"
