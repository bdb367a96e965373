"""When a callback may ring, and the window a customer is promised. Pure: time passed in.

The rules decided here:
- never during quiet hours in the customer's local time (default 21:00-09:00), never outside
  the company's business hours;
- the promise is a concrete window (earliest .. latest), after the backlog already waiting
  (requests ahead x minutes per call / operators on duty), or after the customer's preferred
  time; it is what the web page shows and what the dialer is held to;
- the customer's time zone: the one they gave, else the one their number belongs to; a number
  whose country spans several zones (a Russian mobile, US toll-free) takes the company's zone
  when it is one of them, else the zone where business hours and quiet hours overlap most.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ari_app.policy import BusinessHours, QuietHours
from ari_app.prompts.catalog import hours_prompt, spoken_minutes

__all__ = ["PromiseWindow", "spoken_window", "callable_at", "next_callable", "promise_window", "customer_zone"]

STEP = timedelta(minutes=5)
HORIZON = timedelta(days=8)  # a week of closed days and a holiday still finds a slot


@dataclass(frozen=True)
class PromiseWindow:
    earliest: datetime  # UTC
    latest: datetime

    def as_epochs(self) -> tuple[float, float]:
        """Whole seconds: a promise is not more precise than that."""
        return float(round(self.earliest.timestamp())), float(round(self.latest.timestamp()))


def customer_zone(candidates: tuple[str, ...], given: str | None, company: ZoneInfo, *,
                  business: BusinessHours | None = None,
                  quiet: QuietHours | None = None) -> ZoneInfo:
    if given:
        return ZoneInfo(given)
    if company.key in candidates or not candidates:
        return company
    if len(candidates) > 1 and business is not None and quiet is not None:
        # a region of several zones (US toll-free +1 800): the one where the business hours
        # and the customer's quiet hours overlap most, never a refusal that is not true
        return ZoneInfo(_most_callable(candidates, business, quiet))
    return ZoneInfo(candidates[0])


_WEEK = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday: the reference week
_SLOT = timedelta(minutes=30)


@lru_cache(maxsize=256)
def _most_callable(candidates: tuple[str, ...], business: BusinessHours,
                   quiet: QuietHours) -> str:
    """The candidate with the most callable half hours in a week (the first on a tie)."""
    slots = [_WEEK + i * _SLOT for i in range(7 * 48)]
    scores = [sum(callable_at(s, ZoneInfo(z), business, quiet) for s in slots) for z in candidates]
    return candidates[scores.index(max(scores))]


def callable_at(moment: datetime, zone: ZoneInfo, business: BusinessHours,
                quiet: QuietHours) -> bool:
    """May a callback ring the customer at `moment` (timezone-aware)?"""
    return business.is_open(moment) and not quiet.contains(moment.astimezone(zone).time())


def next_callable(start: datetime, zone: ZoneInfo, business: BusinessHours,
                  quiet: QuietHours) -> datetime | None:
    """The first moment at or after `start` when a callback may ring (None: none within 8 days)."""
    moment = start
    while moment - start <= HORIZON:
        if callable_at(moment, zone, business, quiet):
            return moment
        # jump to the next 5-minute mark so windows start at round times
        moment = (moment + STEP).replace(minute=(moment + STEP).minute // 5 * 5, second=0,
                                         microsecond=0)
    return None


def promise_window(now: float, *, zone: ZoneInfo, business: BusinessHours, quiet: QuietHours,
                   backlog: int, operators: int, minutes_per_call: int, width_minutes: int,
                   preferred: float | None = None) -> PromiseWindow | None:
    """The window to promise a new request, `backlog` requests being ahead of it."""
    queue = now + 60 * backlog * minutes_per_call / max(1, operators)  # the ones ahead first
    start = datetime.fromtimestamp(max(queue, preferred or now), timezone.utc)
    earliest = next_callable(start, zone, business, quiet)
    if earliest is None:
        return None
    return PromiseWindow(earliest, earliest + timedelta(minutes=width_minutes))


def spoken_window(latest_at: float, now: float, language: str) -> tuple[str, ...]:
    """What a caller hears about when the callback comes: "we will call you back within 30
    minutes" (or hours, when it is later than two hours away: at night, over a weekend)."""
    minutes = max(1, -(-int(latest_at - now) // 60))
    said = ("sound:etiquette/callback-window-prefix", "sound:etiquette/callback-within")
    if minutes <= 120:
        return (*said, *spoken_minutes(minutes, language))
    count = -(-minutes // 60)
    return (*said, f"number:{count}", f"sound:etiquette/{hours_prompt(count, language)}")
