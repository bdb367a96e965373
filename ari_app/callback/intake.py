"""What a "call me back" request must be before it may reach a dialer: checked input, with a
message a customer can act on for each problem, and limits against abuse. Pure, but for the
rate limits, which count in Redis."""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from redis.asyncio import Redis

from ari_app.callback.numbers import NumberRules, RefusedNumber, check_number
from ari_app.policy import CallbackPolicy
from ari_app.storage.batch import Batched
from ari_app.storage.keyspace import Keyspace

__all__ = ["CallbackForm", "Counted", "InvalidField", "RateLimited", "check_form", "RateLimits",
           "to_e164"]

MAX_NAME, MAX_TOPIC, MAX_NUMBER = 80, 300, 32


class InvalidField(ValueError):
    def __init__(self, field: str, message: str, error_id: str = "invalid-request") -> None:
        super().__init__(message)
        self.field, self.message, self.error_id = field, message, error_id


class RateLimited(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


@dataclass(frozen=True)
class CallbackForm:
    number: str              # E.164
    name: str = ""
    topic: str = ""
    preferred_at: float | None = None
    time_zone: str | None = None
    language: str = "en"


def to_e164(raw: str, region: str | None) -> str:
    """A caller ID as the web form would store it (+12125550100), so the same customer is
    one card and one open callback whichever way they reached us; left as it is when it is
    not a number that can be called back (an extension, "anonymous")."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_valid_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _text(body: dict, field: str, limit: int) -> str:
    value = body.get(field) or ""
    if not isinstance(value, str):
        raise InvalidField(field, f"{field} must be text")
    # control characters (NUL, escape sequences, bidi overrides) are never stored: a name or
    # topic is shown to operators and in logs, where they would hide or reorder text. A text
    # isprintable() has none, and no space but " " (the one pass most forms need).
    if not value.isprintable():
        value = "".join(_printable(c) for c in value)
    value = " ".join(value.split())
    if len(value) > limit:
        raise InvalidField(field, f"{field} is too long (at most {limit} characters)")
    return value


def _printable(char: str) -> str:
    if char.isspace():
        return " "
    if unicodedata.category(char)[0] == "C" and char not in _JOINERS:
        return ""  # Cc, Cf (bidi overrides, zero-width), Cs, Co, Cn
    return char


_JOINERS = "\u200c\u200d"  # needed by some scripts and emoji sequences


def check_form(body: dict, policy: CallbackPolicy, languages: tuple[str, ...],
               now: float | None = None) -> CallbackForm:
    """A submitted form -> a request that may be dialled, or InvalidField naming what to fix."""
    name, topic = _text(body, "name", MAX_NAME), _text(body, "topic", MAX_TOPIC)
    raw = _text(body, "number", MAX_NUMBER)
    if not raw:
        raise InvalidField("number", "Please enter the phone number to call back.")
    try:  # the one check every number passes (callback/numbers.py)
        e164 = check_number(raw, NumberRules.from_policy(policy))
    except RefusedNumber as refused:
        raise InvalidField("number", refused.message, refused.error_id) from None
    zone = body.get("time_zone") or None
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            zone = None  # the browser's guess is only a hint; the number's zone is used
    preferred = _preferred(body.get("preferred_time"), now or time.time())
    language = body.get("language") if body.get("language") in languages else languages[0]
    return CallbackForm(e164, name, topic, preferred, zone, language)


def _preferred(value: object, now: float) -> float | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidField("preferred_time", "preferred_time must be a date and time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField("preferred_time", "Please give the preferred time as a date and "
                           "time, for example 2026-11-24T15:30.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    at = moment.timestamp()
    if at < now - 300:
        raise InvalidField("preferred_time", "The preferred time is in the past.")
    if at > now + 30 * 86400:
        raise InvalidField("preferred_time", "Please choose a time within the next 30 days.")
    return at


# One count on each counter (KEYS[i], its window ARGV[i] seconds), as the form's own script
# counts them (callback/service.py). A counter gets its ttl from the count that creates it, in
# the same script, so it always has one, and each later count is one write, not two: its key
# names its window, so it is gone when the window is.
_COUNT = """
local counts = {}
for i = 1, #KEYS do
  counts[i] = redis.call('incr', KEYS[i])
  if counts[i] == 1 then redis.call('expire', KEYS[i], ARGV[i]) end
end
return counts
"""


class RateLimits:
    """Fixed-window counters in Redis, so every app instance counts together. A form's two
    counters (its sender's and its number's) are counted by the script that stores it
    (`for_form`)."""

    def __init__(self, redis: Redis, policy: CallbackPolicy, *, keys: Keyspace,
                 batch: Batched | None = None) -> None:
        self.redis, self.policy, self.keys = redis, policy, keys
        self.batch = batch or Batched(redis)

    def _sender(self, ip: str, server: bool) -> tuple[str, int, int, str]:
        if server:  # a caller with the bearer token: its own, larger, per-address limit
            return (f"server:{ip}", self.policy.requests_per_server_per_hour, 3600,
                    "from this server")
        return f"ip:{ip}", self.policy.requests_per_ip_per_hour, 3600, "from here"

    def _number(self, number: str) -> tuple[str, int, int, str]:
        return (f"number:{number}", self.policy.requests_per_number_per_day, 86400,
                "for this number")

    async def _hit(self, *counters: tuple[str, int, int, str]) -> None:
        """Count one request on each counter (one round trip); RateLimited names the first
        one past its limit."""
        counted = Counted(self.keys, counters, time.time())
        counted.check(await self.batch.send(counted.command(self.batch)))

    def for_form(self, ip: str, number: str, *, server: bool = False) -> Counted:
        """A form that passed check_form: its sender's and its number's counters, to be
        counted by the script that stores it (CallbackRequests.accept)."""
        return Counted(self.keys, (self._sender(ip, server), self._number(number)),
                       time.time())

    async def check_sender(self, ip: str, *, server: bool = False) -> None:
        """A request refused before it had a number (bad input) still counts for its sender."""
        await self._hit(self._sender(ip, server))


@dataclass(frozen=True)
class Counted:
    """Counters to count once each, by commands or a script someone else sends, then judge."""
    keys: Keyspace
    counters: tuple[tuple[str, int, int, str], ...]
    now: float

    def _keys(self) -> list[str]:
        return [self.keys.rate(key, int(self.now // window)) for key, _, window, _ in self.counters]

    def command(self, batch: Batched) -> tuple:
        """The script that counts them, for `check`."""
        keys, windows, _ = self.parts()
        return batch.script(_COUNT).call(keys=keys, args=windows)

    def parts(self) -> tuple[list[str], list[int], list[int]]:
        """The counters' keys, windows and limits, for a script that counts them."""
        return (self._keys(), [window for _, _, window, _ in self.counters],
                [limit for _, limit, _, _ in self.counters])

    def check(self, replies: list) -> None:
        """`replies`: one reply, the script's counts, as `Batched.send` gives it."""
        counts, = replies
        for i, (count, (_, limit, _, _)) in enumerate(zip(counts, self.counters)):
            if count > limit:
                self.refuse(i)

    def refuse(self, i: int) -> None:
        """RateLimited, naming counter `i` and when its window ends."""
        _, _, window, what = self.counters[i]
        raise RateLimited(f"Too many callback requests {what}. Please try again later.",
                          window - int(self.now) % window)
