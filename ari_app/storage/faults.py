"""What "storage is away" looks like to the rest of the app (Redis restarting, stopped,
loading, read-only during a failover, or unreachable), so call lanes, the dialer and the API
treat it as one condition: wait and retry for calls, a clear 503 for requests, never a crash.

A Redis answer that says our command was wrong (WRONGTYPE, a script error) is not storage
being away: retrying it would never end, so it stays a bug that is logged and answered 500.
"""

from __future__ import annotations

from redis import exceptions as redis_errors

__all__ = ["NoReplicasError", "STORAGE_ERRORS", "storage_away"]


class NoReplicasError(redis_errors.ResponseError):
    """The master refuses writes while fewer replicas than `min-replicas-to-write` are in
    sync (a Sentinel group bounding what a failover can lose): nothing was written, and it
    passes like a failover, so it is storage away, not a bug."""


try:  # redis-py answers it as a plain ResponseError unless told its prefix
    from redis._parsers.base import BaseParser
    BaseParser.EXCEPTION_CLASSES.setdefault("NOREPLICAS", NoReplicasError)
except (ImportError, AttributeError):  # pragma: no cover - another redis-py layout
    pass

STORAGE_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,   # refused, reset, auth lost, BusyLoadingError (loading)
    redis_errors.TimeoutError,      # stopped or overloaded: no answer within redis_timeout
    redis_errors.ReadOnlyError,     # a replica during a Sentinel failover
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.OutOfMemoryError,  # full: nothing was written
    NoReplicasError,                # too few replicas in sync: nothing was written
)


def storage_away(exc: BaseException) -> bool:
    """One of STORAGE_ERRORS, or an OSError raised inside redis-py itself (a socket error can
    leak out of it unwrapped; ARI's aiohttp errors are not storage's)."""
    if isinstance(exc, STORAGE_ERRORS):
        return True
    if not isinstance(exc, OSError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").partition(".")[0] == "redis":
            return True
        tb = tb.tb_next
    return False
