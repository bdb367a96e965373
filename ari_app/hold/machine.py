"""Hold etiquette for one hold of one call. Pure: events in (each with `now`), actions out, one
deadline (`get_timer`).

The rules decided here:
- the caller hears that they are being put on hold and why (and for how long, when known)
  before the music starts; a hold without a reason still happens but is a breach;
- the check-in cadence: the first check-in comes `check_in_interval` seconds after the music
  started, the next ones `check_in_interval` seconds after the previous one started (start to
  start), never before it has finished and some music has played (calls/pacing.py); the music
  pauses for the check-in ("thank you for waiting ..."), varied, then resumes; the operator gets
  a nudge with the time on hold that the caller does not hear;
- after `fallback_after` seconds on hold the waiting stops: 1 keep holding, 2 voicemail for the
  operator, 3 a callback (own number, or one typed on the keypad); no choice = policy default;
- a menu (the way out, the callback number) never leaves the caller in silence: no key within
  `menu_repeat_after` seconds, it says itself once more (a number half typed is typed again);
  then no key within `choice_timeout` seconds, at most 5, is no choice (calls/pacing.py);
- a number is called back only if it passes the one check (callback/numbers.py, the policy's
  rules in HoldSettings.numbers): a typed number that fails is refused aloud ("we cannot call
  that number") and asked again, twice, then the caller leaves a message instead; a caller ID
  that fails is never offered ("press 1 for your own number") nor used by default: the caller
  is asked to type a number, and no choice means voicemail;
- if the operator leaves, the caller is offered voicemail or a callback at once;
- resume: "thank you for waiting", then back to the operator; music and timers stop at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.callback.numbers import NumberRules, RefusedNumber, check_number
from ari_app.calls.asking import TakingANumber
from ari_app.calls.machine import RuleMachine
from ari_app.calls.pacing import next_check_in
# the words every rule shares (hang-ups, the timer, prompts, music, the end): re-exported, so
# the hold's own names still read `from ari_app.hold.machine import Play`
from ari_app.calls.vocabulary import (CallerHungUp, DetachCaller, Finish, Note, OperatorHungUp,
                                      Play, PromptFinished, ReattachCaller, RecordingFinished,
                                      StartMusic, StopMusic, StopPlayback, TimerFired,
                                      prompt_media)
from ari_app.prompts.catalog import spoken_minutes

__all__ = [
    "HoldState", "HoldMachine", "HoldSettings", "InvalidHoldEvent",
    "HoldRequested", "FallbackRequested", "PromptFinished", "TimerFired", "DigitPressed", "ResumeRequested",
    "CallerHungUp", "OperatorHungUp", "RecordingFinished", "HandedOver", "CallbackSaved", "CallbackRefused",
    "DetachCaller", "ReattachCaller", "StartMusic", "StopMusic", "Play", "StopPlayback",
    "NudgeOperator", "StartVoicemail", "StopVoicemail", "SaveCallback", "SaveVoicemail", "Note", "EndCall",
    "Finish",
]

logger = structlog.get_logger()


class HoldState(Enum):
    ANNOUNCING = "announcing"        # "I'm placing you on hold, because ..."
    HOLDING = "holding"              # music
    CHECKING_IN = "checking_in"      # music paused, check-in playing
    OFFERING = "offering"            # the fallback menu: 1 hold, 2 voicemail, 3 callback
    CALLBACK_NUMBER = "callback_number"  # 1 = own number, or digits then #
    VOICEMAIL = "voicemail"          # intro, beep, recording
    RESUMING = "resuming"            # "thank you for waiting"
    CLOSING = "closing"              # confirmation and goodbye before the call ends
    ENDED = "ended"


END_STATES = frozenset({HoldState.ENDED})
CHECK_INS = ("checkin-1", "checkin-2", "checkin-3")  # varied, in turn


@dataclass(frozen=True)
class HoldSettings:
    check_in_interval: float = 25.0
    fallback_after: float = 150.0
    choice_timeout: float = 8.0         # after the menu's repeat; at most 5 s count (pacing)
    menu_repeat_after: float = 4.0      # a menu with no key is said once more after this
    fallback_default: str = "callback"   # or "voicemail"
    voicemail_max: int = 120             # seconds of message
    max_holds_per_call: int = 1
    numbers: NumberRules = NumberRules()  # what may be called back (none: nothing)


# --- inputs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HoldRequested:
    now: float
    reason: str | None = None       # a reason code from the policy; None is a breach
    reason_prompt: str | None = None
    expected_minutes: int | None = None
    source: str = "rest"            # phone | feature-code | rest
    holds_before: int = 0           # earlier holds in this call
    language: str = "en"            # the caller's: how "N minutes" is said


@dataclass(frozen=True)
class FallbackRequested:
    """No hold, just the way out: the caller cannot be served now (a transfer that did not
    go through, an operator who left). `intro` says why; `preselect` skips the menu."""
    now: float
    intro: tuple[str, ...] = ()
    for_whom: str | None = None     # whom a message or callback is for (default: the operator)
    preselect: str | None = None    # "voicemail" or "callback": that choice, no menu
    operator_present: bool = False
    why: str = ""


@dataclass(frozen=True)
class DigitPressed:
    now: float
    digit: str


@dataclass(frozen=True)
class ResumeRequested:
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class HandedOver:
    """The operator transferred the held caller (their phone holds before it transfers): the
    transfer rule takes the caller from here, without "thank you for waiting"."""
    now: float


@dataclass(frozen=True)
class CallbackSaved:
    """The callback service took the request: `said` is when the call comes, in the words
    the service promised it (media), `data` what the call's events record of it."""
    now: float
    said: tuple[str, ...] = ()
    data: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class CallbackRefused:
    """The callback service refused the number the machine accepted (its rules changed)."""
    now: float
    why: str = ""


# --- outputs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopVoicemail:
    """The caller pressed # to finish their message."""


@dataclass(frozen=True)
class NudgeOperator:
    held_for: int  # whole seconds


@dataclass(frozen=True)
class StartVoicemail:
    max_seconds: int


@dataclass(frozen=True)
class SaveCallback:
    number: str
    own_number: bool
    chosen: str  # "caller" or "default"


@dataclass(frozen=True)
class SaveVoicemail:
    duration: float


@dataclass(frozen=True)
class EndCall:
    """The caller is done (voicemail or callback taken): free the operator, hang up."""
    outcome: str


# Finish(outcome): resumed | handed-over | voicemail | voicemail-failed | callback |
# caller-hung-up


class InvalidHoldEvent(Exception):
    pass



@dataclass
class HoldMachine(TakingANumber, RuleMachine):
    KIND: ClassVar[str] = "hold"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidHoldEvent

    call_id: str
    caller_number: str = ""
    settings: HoldSettings = field(default_factory=HoldSettings)
    state: HoldState = HoldState.ANNOUNCING
    reason: str | None = None
    source: str = ""
    started_at: float | None = None
    operator_present: bool = True
    playing: str | None = None
    next_check_in: float | None = None
    fallback_at: float | None = None
    choice_deadline: float | None = None
    check_ins: list[float] = field(default_factory=list)
    digits: str = ""
    outcome: str | None = None
    plays: int = 0  # playbacks so far: tags them so a restart can find the current one
    recording_since: float | None = None  # the caller's message is being recorded
    for_whom: str | None = None  # a message or callback for someone else than the operator
    refusals: int = 0  # typed numbers refused so far
    menu_repeated: bool = False  # the question waiting for a key was said once more

    @property
    def playing_tag(self) -> str:
        return f"h{self.plays}"


    def get_timer(self) -> float | None:
        """The next moment something must happen without any event."""
        if self.state is HoldState.HOLDING:
            return min(t for t in (self.next_check_in, self.fallback_at) if t is not None)
        if self.state in (HoldState.OFFERING, HoldState.CALLBACK_NUMBER):
            return self.choice_deadline
        return None


    # --- start --------------------------------------------------------------------------------
    def _on_HoldRequested(self, ev: HoldRequested) -> list[object]:
        if self.started_at is not None:
            return []  # already holding: a repeated request is harmless
        self.started_at, self.reason, self.source = ev.now, ev.reason, ev.source
        self.fallback_at = ev.now + self.settings.fallback_after
        notes = [Note("hold started", (("reason", ev.reason), ("source", ev.source),
                                       ("expected_minutes", ev.expected_minutes)))]
        if ev.reason is None:
            notes.append(Note("breach", (("what", "hold without a reason"),)))
        if ev.holds_before + 1 > self.settings.max_holds_per_call:
            notes.append(Note("breach", (("what", "caller put on hold again"),
                                         ("hold_number", ev.holds_before + 1))))
        media = [prompt_media("hold-intro"), prompt_media(ev.reason_prompt or "hold-no-reason")]
        if ev.expected_minutes:
            media += [prompt_media("hold-expected-duration"),
                      *spoken_minutes(ev.expected_minutes, ev.language)]
        return [*notes, DetachCaller(), self._play("hold-intro", tuple(media))]

    def _on_FallbackRequested(self, ev: FallbackRequested) -> list[object]:
        if self.started_at is not None:
            return []
        self.started_at, self.source, self.for_whom = ev.now, "fallback", ev.for_whom
        self.operator_present = ev.operator_present
        note = Note("fallback offered", (("why", ev.why), ("for", ev.for_whom)))
        if ev.preselect == "voicemail":
            return [note, *self._voicemail(ev.now, chosen="caller", intro=ev.intro)]
        self._set_state(HoldState.OFFERING)
        if ev.preselect == "callback":  # chosen already (a consultation's way out): the number
            return [note, *self._choose("3", ev.now)]
        return [note, self._ask("hold-fallback-menu", (*ev.intro, *self._menu_media()))]

    # --- prompts ending ---------------------------------------------------------------------
    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if ev.prompt != self.playing or (ev.tag and ev.tag != self.playing_tag):
            return []
        self.playing = None
        match self.state:
            case HoldState.ANNOUNCING:
                return self._music(ev.now)
            case HoldState.CHECKING_IN:
                if ev.now >= (self.fallback_at or 0):
                    return self._offer(ev.now)
                return self._music(ev.now, after_check_in=True)
            case HoldState.OFFERING | HoldState.CALLBACK_NUMBER:
                self.choice_deadline = ev.now + self._menu_wait()
                return []
            case HoldState.VOICEMAIL:
                if ev.prompt == "voicemail-intro":
                    self.recording_since = ev.now
                    return [StartVoicemail(self.settings.voicemail_max)]
                return []
            case HoldState.RESUMING:
                self._set_state(HoldState.ENDED)
                self.outcome = "resumed"
                return [ReattachCaller(), Note("hold ended", (("outcome", "resumed"),
                                                              ("held_for", self._held(ev.now)))),
                        Finish("resumed")]
            case HoldState.CLOSING:
                self._set_state(HoldState.ENDED)
                return [EndCall(self.outcome or ""), Finish(self.outcome or "")]
        return []

    # --- the clock ----------------------------------------------------------------------------
    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        deadline = self.get_timer()
        if deadline is None or ev.now < deadline:
            return []
        if self.state is HoldState.HOLDING:
            if self.fallback_at is not None and ev.now >= self.fallback_at:
                return [StopMusic(), *self._offer(ev.now)]
            return self._check_in(ev.now)
        if self.state is HoldState.CALLBACK_NUMBER:
            taken = self._number_pause_over(ev.now)  # a lone 1: their own number
            if taken is not None:
                return taken
        self.choice_deadline = None
        if not self.menu_repeated:  # no key yet: the question once more, never silence
            return self._repeat()
        # no choice in time: the policy's default (a callback needs a number we may call)
        own = self._own_number()
        if self.settings.fallback_default == "callback" and own:
            return self._callback(own, own=True, chosen="default", now=ev.now)
        return self._voicemail(ev.now, chosen="default")

    def _check_in(self, now: float) -> list[object]:
        due = self.next_check_in  # when it was due: played at `now` (metrics: the lateness)
        self._set_state(HoldState.CHECKING_IN)
        self.check_ins.append(now)
        prompt = CHECK_INS[(len(self.check_ins) - 1) % len(CHECK_INS)]
        self.next_check_in = None
        actions: list[object] = [StopMusic(), self._play(prompt),
                                 Note("check-in", (("prompt", prompt),
                                                   ("held_for", self._held(now)),
                                                   ("due_at", due)))]
        if self.operator_present:
            actions.append(NudgeOperator(self._held(now)))
        return actions

    # --- the caller's keys ------------------------------------------------------------------
    def _on_DigitPressed(self, ev: DigitPressed) -> list[object]:
        if self.state is HoldState.OFFERING:
            return self._choose(ev.digit, ev.now)
        if self.state is HoldState.CALLBACK_NUMBER:
            return self._number_digit(ev.digit, ev.now)
        if self.state is HoldState.VOICEMAIL and ev.digit == "#" and self.playing is None:
            return [StopVoicemail()]
        return []

    def _choose(self, digit: str, now: float) -> list[object]:
        stop = self._stop_playing()
        self.choice_deadline = None
        if digit == "1" and self.operator_present:
            self.fallback_at = now + self.settings.fallback_after
            return [*stop, Note("fallback choice", (("choice", "keep holding"),)),
                    *self._music(now)]
        if digit == "2":
            return [*stop, *self._voicemail(now, chosen="caller")]
        if digit == "3":
            self._set_state(HoldState.CALLBACK_NUMBER)
            self.digits = ""
            notes = [Note("fallback choice", (("choice", "callback"),))]
            if self._own_number():
                return [*stop, *notes, self._ask("callback-own-number")]
            if self.caller_number:  # never offered: ask for a number we may call
                notes.append(Note("caller id not called back", (("why", self._refusal(
                    self.caller_number)),)))
            return [*stop, *notes, self._ask("callback-enter-number")]
        return [*stop, self._ask("invalid-choice", (prompt_media("invalid-choice"),
                                                    *self._menu_media()))]

    def _refusal(self, number: str) -> str:
        try:
            check_number(number, self.settings.numbers)
        except RefusedNumber as refused:
            return refused.message
        return ""

    # --- outcomes ---------------------------------------------------------------------------
    def _voicemail(self, now: float, chosen: str, intro: tuple[str, ...] = ()) -> list[object]:
        self._set_state(HoldState.VOICEMAIL)
        self.outcome = "voicemail"
        return [Note("fallback choice", (("choice", "voicemail"), ("chosen", chosen))),
                self._play("voicemail-intro", (*intro, prompt_media("voicemail-intro"),
                                               "sound:beep"))]

    def _on_RecordingFinished(self, ev: RecordingFinished) -> list[object]:
        if self.state is not HoldState.VOICEMAIL:
            return []
        if not ev.saved:  # nothing recorded: don't say it was; take the number instead
            note = Note("voicemail failed", (("duration", ev.duration),))
            own = self._own_number()
            if own:
                return [note, *self._callback(own, own=True, chosen="voicemail-failed",
                                              now=ev.now)]
            self._set_state(HoldState.CLOSING)
            self.outcome = "voicemail-failed"
            return [note, self._play("goodbye")]
        self._set_state(HoldState.CLOSING)
        return [Note("hold ended", (("outcome", "voicemail"), ("held_for", self._held(ev.now)))),
                SaveVoicemail(ev.duration),
                self._play("voicemail-saved", (prompt_media("voicemail-saved"),
                                               prompt_media("goodbye")))]

    def _callback(self, number: str, own: bool, chosen: str, now: float) -> list[object]:
        self._set_state(HoldState.CLOSING)
        self.outcome = "callback"
        # the confirmation waits for the saved request (`CallbackSaved`): it says when
        return [SaveCallback(number, own, chosen),
                Note("hold ended", (("outcome", "callback"), ("held_for", self._held(now)),
                                    ("chosen", chosen)))]

    def _on_CallbackSaved(self, ev: CallbackSaved) -> list[object]:
        if self.state is not HoldState.CLOSING or self.outcome != "callback":
            return []
        return [Note("callback requested", ev.data),
                self._play("callback-confirmed", (prompt_media("callback-confirmed"), *ev.said,
                                                  prompt_media("goodbye")))]

    def _on_CallbackRefused(self, ev: CallbackRefused) -> list[object]:
        if self.state is not HoldState.CLOSING or self.outcome != "callback":
            return []  # nothing promised that is not kept
        return [Note("callback refused", (("why", ev.why),)),
                *self._voicemail(ev.now, chosen="number-refused", intro=(
                    prompt_media("callback-number-refused"),
                    prompt_media("callback-voicemail-instead")))]

    # --- resume and hang-ups ------------------------------------------------------------------
    def _on_ResumeRequested(self, ev: ResumeRequested) -> list[object]:
        if self.state in (HoldState.RESUMING, HoldState.VOICEMAIL, HoldState.CLOSING):
            return []  # too late to resume: the caller is leaving a message or being told goodbye
        if not self.operator_present:
            return []
        actions: list[object] = [StopMusic()] if self.state is HoldState.HOLDING else []
        actions += self._stop_playing()
        self.next_check_in = self.fallback_at = self.choice_deadline = None
        self._set_state(HoldState.RESUMING)
        return [*actions, self._play("hold-resume-thanks")]

    def _on_HandedOver(self, ev: HandedOver) -> list[object]:
        actions: list[object] = [StopMusic()] if self.state is HoldState.HOLDING else []
        actions += self._stop_playing()
        self.next_check_in = self.fallback_at = self.choice_deadline = None
        self._set_state(HoldState.ENDED)
        self.outcome = "handed-over"
        return [*actions, Note("hold ended", (("outcome", "transferred"),
                                              ("held_for", self._held(ev.now)))),
                Finish("handed-over")]

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        # callers often hang up instead of pressing #: a message being recorded is kept
        kept = ([SaveVoicemail(round(ev.now - self.recording_since, 1))]
                if self.state is HoldState.VOICEMAIL and self.recording_since is not None else [])
        self._set_state(HoldState.ENDED)
        self.outcome = self.outcome or "caller-hung-up"
        return [*kept, Note("hold ended", (("outcome", "caller hung up"),
                                           ("held_for", self._held(ev.now)))),
                Finish("caller-hung-up")]

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        if not self.operator_present:
            return []
        self.operator_present = False
        if self.state in (HoldState.VOICEMAIL, HoldState.CLOSING, HoldState.CALLBACK_NUMBER):
            return [Note("operator left", ())]
        actions: list[object] = [Note("operator left", ())]
        if self.state is HoldState.HOLDING:
            actions.append(StopMusic())
        actions += self._stop_playing()
        # never leave the caller alone: offer voicemail or a callback right away
        self._set_state(HoldState.OFFERING)
        return [*actions, self._ask("operator-gone", (prompt_media("operator-gone"),
                                                      *self._menu_media()))]

    # --- helpers ------------------------------------------------------------------------------
    def _music(self, now: float, after_check_in: bool = False) -> list[object]:
        """Music from `now`; the next check-in `check_in_interval` after the music started,
        or after the check-in that just ended started (start to start)."""
        self._set_state(HoldState.HOLDING)
        interval = self.settings.check_in_interval
        self.next_check_in = (next_check_in(interval, self.check_ins[-1], now)
                              if after_check_in and self.check_ins else now + interval)
        return [StartMusic()]

    def _offer(self, now: float) -> list[object]:
        self._set_state(HoldState.OFFERING)
        self.next_check_in = None
        return [Note("fallback offered", (("held_for", self._held(now)),)),
                self._ask("hold-fallback-menu", self._menu_media())]

    # --- menus: a question waiting for a key ---------------------------------------------------
    def _repeat(self) -> list[object]:
        """The question again, once: the menu itself (without what led to it), or the
        callback number's question (digits typed so far are typed again)."""
        self.menu_repeated = True
        if self.state is HoldState.CALLBACK_NUMBER:
            prompt, media = self._number_question(), ()
            self.digits = ""
        else:
            prompt, media = "hold-fallback-menu", self._menu_media()
        return [Note("menu repeated", (("prompt", prompt),)), self._play(prompt, media)]

    def _menu_media(self) -> tuple[str, ...]:
        return (prompt_media("hold-fallback-menu" if self.operator_present
                             else "operator-gone-menu"),)

    def _held(self, now: float) -> int:
        return int(round(now - (self.started_at if self.started_at is not None else now)))

    def _number_taken(self, number: str, own: bool, now: float) -> list[object]:
        return self._callback(number, own=own, chosen="caller", now=now)

    def _no_number(self, now: float) -> list[object]:
        return self._voicemail(now, chosen="number-refused", intro=(
            prompt_media("callback-number-refused"), prompt_media("callback-voicemail-instead")))

    # --- persistence --------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict) -> "HoldMachine":
        data = dict(data)
        data["state"] = HoldState(data["state"])
        settings = dict(data["settings"])  # snapshots from before `numbers`: none allowed
        settings["numbers"] = NumberRules.from_dict(settings.get("numbers") or {})
        data["settings"] = HoldSettings(**settings)
        return cls(**data)

    def to_public_dict(self) -> dict:
        return {"status": self.state.value, "reason": self.reason, "source": self.source,
                "started_at": self.started_at, "check_ins": len(self.check_ins),
                "outcome": self.outcome}
