"""How long a caller waits between words, as every rule's machine times it. Pure: seconds in,
seconds out.

- Check-ins come every `interval` seconds start to start ("every 25 s" as callers and admins
  read it), but never before the previous prompt has finished and `MIN_MUSIC` seconds of music
  have played (a prompt longer than the interval).
- A menu that gets no key within `repeat_after` seconds says itself once more; after the repeat
  the caller has `choice_timeout` seconds, but never more than `MAX_SILENCE` of silence, then
  the menu's no-key default. So nobody hears more than `MAX_SILENCE` seconds of silence.
"""

from __future__ import annotations

__all__ = ["MAX_SILENCE", "MIN_MUSIC", "menu_wait", "next_check_in"]

MAX_SILENCE = 5.0  # seconds of silence a caller may hear while a menu waits for a key
MIN_MUSIC = 2.0    # seconds of music at least between two check-ins


def next_check_in(interval: float, started: float, ended: float) -> float:
    """When the check-in after one that started at `started` and ended at `ended` is due."""
    return max(started + interval, ended + MIN_MUSIC)


def menu_wait(repeated: bool, repeat_after: float, choice_timeout: float) -> float:
    """How long a menu that has just been said waits for a key: until it is said once more
    (`repeated` False), or until the no-key default (`repeated` True)."""
    return min(choice_timeout if repeated else repeat_after, MAX_SILENCE)
