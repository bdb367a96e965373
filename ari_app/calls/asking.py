"""What every machine that speaks to the caller and waits for a key does alike: play a prompt
under a tag that tells its playbacks apart, stop it, ask a question that may be said once
more (calls/pacing.py times it), take a number to call back. Pure; mixed into a rule's machine, which keeps `playing`,
`plays`, `menu_repeated`, `choice_deadline`, its own `playing_tag`, and `settings` with
`menu_repeat_after` and `choice_timeout`."""

from __future__ import annotations

from typing import Any

from ari_app.callback.numbers import RefusedNumber, check_number
from ari_app.calls.pacing import menu_wait
from ari_app.calls.vocabulary import Note, Play, StopPlayback, prompt_media

__all__ = ["Asking", "MAX_NUMBER_DIGITS", "MAX_NUMBER_TRIES", "OWN_NUMBER_PAUSE", "TakingANumber"]


class Asking:
    playing: str | None
    plays: int
    menu_repeated: bool
    choice_deadline: float | None
    playing_tag: str
    settings: Any

    def _play(self, prompt: str, media: tuple[str, ...] = ()) -> Play:
        self.playing = prompt
        self.plays += 1
        return Play(prompt, media or (prompt_media(prompt),), self.playing_tag)

    def _stop_playing(self) -> list[object]:
        if not self.playing:
            return []
        stop = StopPlayback(self.playing, self.playing_tag)
        self.playing = None
        return [stop]

    def _ask(self, prompt: str, media: tuple[str, ...] = ()) -> Play:
        """A new question for the caller: its time to answer counts once it has been said,
        and it may be said once more."""
        self.menu_repeated = False
        self.choice_deadline = None
        return self._play(prompt, media)

    def _menu_wait(self) -> float:
        return menu_wait(self.menu_repeated, self.settings.menu_repeat_after,
                         self.settings.choice_timeout)


MAX_NUMBER_DIGITS = 15  # E.164
MAX_NUMBER_TRIES = 3    # a refused typed number is asked again twice, then a message instead
# s after a lone 1 before it counts as "my own number": a number typed with its country code
# starts with 1 too (+1 212 ...), and its next digit comes well within this
OWN_NUMBER_PAUSE = 2.0


class TakingANumber(Asking):
    """The number to call the caller back on: 1 for their caller ID (offered only when it may
    be called back), or digits then #. A 1 is their own number once nothing follows it for
    OWN_NUMBER_PAUSE s (or # follows it): a typed number may start with 1 too. Every number
    passes the one check (callback/numbers.py); a refused one is said so and asked again,
    twice, then the machine's `_no_number`. A number taken goes to the machine's
    `_number_taken`; the machine's timer calls `_number_pause_over` first at its deadline."""
    caller_number: str
    digits: str
    refusals: int

    def _number_taken(self, number: str, own: bool, now: float) -> list[object]:
        raise NotImplementedError

    def _no_number(self, now: float) -> list[object]:
        raise NotImplementedError

    def _number_question(self) -> str:
        return "callback-own-number" if self._own_number() else "callback-enter-number"

    def _own_number(self) -> str | None:
        """The caller ID as the number to call back, if it passes the check; else None."""
        if not self.caller_number:
            return None
        try:
            return check_number(self.caller_number, self.settings.numbers)
        except RefusedNumber:
            return None

    def _number_digit(self, digit: str, now: float) -> list[object]:
        stop = self._stop_playing()
        self.choice_deadline = now + self._menu_wait()
        if digit == "#" and self.digits == "1" and self._own_number():
            return [*stop, *self._own_number_taken(now)]
        if digit == "#" and self.digits:
            try:
                number = check_number(self.digits, self.settings.numbers)
            except RefusedNumber as refused:
                return [*stop, *self._refused(refused, now)]
            return [*stop, *self._number_taken(number, False, now)]
        if digit.isdigit() and len(self.digits) < MAX_NUMBER_DIGITS:
            self.digits += digit
            if self.digits == "1" and self._own_number():  # theirs, unless a digit follows
                self.choice_deadline = now + OWN_NUMBER_PAUSE
        return stop

    def _number_pause_over(self, now: float) -> list[object] | None:
        """At the deadline: a lone 1 that nothing followed is the caller's own number; None
        when the deadline is the question's own (said again, or the default)."""
        if self.digits == "1" and self._own_number():
            return self._own_number_taken(now)
        return None

    def _own_number_taken(self, now: float) -> list[object]:
        self.digits = ""
        return self._number_taken(self._own_number() or "", True, now)

    def _refused(self, refused: RefusedNumber, now: float) -> list[object]:
        """A typed number we may not call: said why, asked again; the third time, no number."""
        self.refusals += 1
        note = Note("callback number refused", (("digits", self.digits), ("why", refused.message),
                                                ("try", self.refusals)))
        self.digits = ""
        if self.refusals >= MAX_NUMBER_TRIES:
            return [note, *self._no_number(now)]
        return [note, self._ask("callback-number-refused", (
            prompt_media("callback-number-refused"), prompt_media(self._number_question())))]
