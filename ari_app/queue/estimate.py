"""An honest estimated wait for a caller in a queue. Pure: samples and `now` in, an estimate out.

- The basis: the talk durations of the last `window` completed calls of the queue, none older
  than `max_age` seconds (`HandleTimes`, fed by the adapter as calls end); the operators logged
  in and not paused; how many of them are free now.
- A caller at position p (1 = next) with f operators free is answered at once when p <= f;
  otherwise they wait for k = p - f calls of the n operators to end: k * AHT / n, with
  AHT the mean handle time (the throughput of n operators is n / AHT calls a second). Counting
  the whole handle time for the first call to end (not half of it) leans towards "sooner than
  said", never later.
- Said as "less than a minute", or "about N minutes" rounded up (to a minute up to 10, to
  5 minutes above, never "about 1 minute": 2 at least), or not at all. No number without a
  basis: no operator logged in, or fewer than `min_samples` recent calls and no policy default;
  and no number above `max_minutes` (too far ahead to keep).
- `WaitEstimate.seconds` is the figure itself, kept with the caller so the actual wait can be
  compared with it later (`estimate_error`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["EstimateSettings", "HandleTimes", "WaitEstimate", "estimate_error", "estimate_wait",
           "LESS_THAN_A_MINUTE", "MINUTES", "NONE"]

# what the caller is told
LESS_THAN_A_MINUTE, MINUTES, NONE = "less-than-a-minute", "minutes", "none"
# why (WaitEstimate.basis)
SAMPLES, POLICY_DEFAULT, FREE_OPERATOR = "samples", "policy-default", "free-operator"
NO_OPERATOR, TOO_FEW_SAMPLES, TOO_LONG = "no-operator", "too-few-samples", "too-long"


@dataclass(frozen=True)
class EstimateSettings:
    window: int = 20                 # the last N completed calls count
    max_age: float = 3600.0          # older ones are aged out (seconds)
    min_samples: int = 5             # fewer: no basis (unless default_handle_time)
    default_handle_time: float | None = None  # the policy's, when it gives one (seconds)
    max_minutes: int = 60            # beyond: no number (not one we could keep)


@dataclass
class HandleTimes:
    """A rolling window of recent talk durations: (ended_at, seconds), oldest first."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def add(self, ended_at: float, seconds: float, settings: EstimateSettings) -> None:
        if seconds < 0:
            return
        self.samples.append((ended_at, seconds))
        self.samples.sort(key=lambda s: s[0])
        del self.samples[:-settings.window]

    def recent(self, now: float, settings: EstimateSettings) -> list[float]:
        """The durations still counted at `now`: the last `window`, none older than max_age."""
        cutoff = now - settings.max_age
        return [seconds for ended, seconds in self.samples[-settings.window:] if ended >= cutoff]

    def to_dict(self) -> dict:
        return {"samples": [list(s) for s in self.samples]}

    @classmethod
    def from_dict(cls, data: dict) -> HandleTimes:
        return cls([(float(a), float(b)) for a, b in data.get("samples", ())])


@dataclass(frozen=True)
class WaitEstimate:
    said: str                  # less-than-a-minute | minutes | none
    minutes: int | None        # "about N minutes" (said == minutes)
    seconds: float | None      # the figure behind it (None: no basis); compare with the wait
    basis: str                 # samples | policy-default | free-operator | no-operator | ...
    handle_time: float | None = None  # the mean handle time used

    def data(self) -> tuple[tuple[str, object], ...]:
        """For a Note: what was said and the figure behind it."""
        return (("estimate", self.said), ("estimate_minutes", self.minutes),
                ("estimate_seconds", None if self.seconds is None else round(self.seconds, 1)),
                ("estimate_basis", self.basis))


def estimate_wait(position: int, *, now: float, handle_times: HandleTimes | Iterable[float],
                  available: int, free: int, settings: EstimateSettings) -> WaitEstimate:
    """The wait of the caller at `position` (1 = next); `available`: operators logged in and not
    paused; `free`: those of them who could take a call now."""
    if available <= 0:
        return WaitEstimate(NONE, None, None, NO_OPERATOR)
    free = max(0, min(free, available))
    if position <= free:
        return WaitEstimate(LESS_THAN_A_MINUTE, None, 0.0, FREE_OPERATOR)
    durations = (handle_times.recent(now, settings) if isinstance(handle_times, HandleTimes)
                 else list(handle_times))
    if len(durations) >= settings.min_samples:
        aht, basis = sum(durations) / len(durations), SAMPLES
    elif settings.default_handle_time:
        aht, basis = float(settings.default_handle_time), POLICY_DEFAULT
    else:
        return WaitEstimate(NONE, None, None, TOO_FEW_SAMPLES)
    # the free ones are taken by the callers ahead; then k calls of the n must end first
    seconds = (position - free) * aht / available
    return _said(seconds, basis, aht, settings)


def _said(seconds: float, basis: str, aht: float, settings: EstimateSettings) -> WaitEstimate:
    if seconds < 60:
        return WaitEstimate(LESS_THAN_A_MINUTE, None, seconds, basis, aht)
    minutes = max(2, math.ceil(seconds / 60))
    if minutes > 10:
        minutes = 5 * math.ceil(minutes / 5)
    if minutes > settings.max_minutes:
        return WaitEstimate(NONE, None, seconds, TOO_LONG, aht)
    return WaitEstimate(MINUTES, minutes, seconds, basis, aht)


def estimate_error(estimate: WaitEstimate, actual_wait: float) -> float | None:
    """Actual minus estimated wait, in seconds (positive: waited longer than said); None
    when no figure was given."""
    if estimate.seconds is None:
        return None
    return actual_wait - estimate.seconds
