"""Queue etiquette for one caller waiting for an operator. Pure: events in (each with `now`),
actions out, one deadline (`get_timer`).

The rules decided here:
- the caller enters the queue after the greeting (never an immediate "please hold"): why they
  wait, their place in line and the estimated wait when there is one (estimate.py); with no
  operator logged in: "we cannot say how long" and the way out at once;
- music, and a check-in every `check_in_interval` seconds start to start (calls/pacing.py):
  the new place when it changed since last said, else that they are still in line; varied,
  never the same sentence twice in a row;
- at `threshold` seconds in the queue and every `threshold` after: 1 keep waiting, 2 a voice
  message for the department, 3 a callback that keeps their place (own number or typed, through
  callback/numbers.py); a menu with no key is said once more after `menu_repeat_after`, then no
  key is: keep waiting, or after `max_wait` the policy's default (a callback);
- an operator found: "connecting you now" to the caller and the whisper to the operator, then
  the caller leaves the queue;
- overflow (closed, full): told so, and voicemail or a callback offered at once;
- a hang-up while waiting is an abandon, with the wait and the place.

A voice message is not recorded here: the machine ends with `Finish("voicemail")` and the call
hands the caller to the hold's way out (preselected voicemail for the department). A callback
that keeps the place is `KeepPlace`: the adapter turns the caller's queue entry into a callback
entry at the same arrival time and answers `PlaceKept` / `PlaceNotKept`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.callback.numbers import NumberRules
from ari_app.calls.asking import TakingANumber
from ari_app.calls.machine import RuleMachine
from ari_app.calls.pacing import next_check_in
from ari_app.calls.vocabulary import (OPERATOR, CallerHungUp, Finish, Note, OperatorHungUp, Play,
                                      PromptFinished, StartMusic, StopMusic, StopPlayback,
                                      TimerFired, prompt_media)
from ari_app.prompts.catalog import spoken_minutes
from ari_app.queue.estimate import LESS_THAN_A_MINUTE, MINUTES, WaitEstimate

__all__ = [
    "QueueState", "QueueMachine", "QueueSettings", "InvalidQueueEvent",
    "QueueJoin", "QueueEntered", "QueueRefused", "PositionChanged", "OperatorOffered",
    "OperatorFound", "OperatorMissed", "DigitPressed", "PlaceKept", "PlaceNotKept",
    "PromptFinished", "TimerFired", "CallerHungUp", "OperatorHungUp",
    "StartMusic", "StopMusic", "Play", "StopPlayback", "Note", "Finish",
    "JoinQueue", "LookUpPosition", "DialOperator", "HangUpOperator", "PutBack", "LeaveLine",
    "KeepPlace", "Whisper", "ReleaseOperator", "minutes_media",
]

logger = structlog.get_logger()


class QueueState(Enum):
    ANNOUNCING = "announcing"            # why they wait, their place, the estimate
    WAITING = "waiting"                  # music
    CHECKING_IN = "checking_in"          # music paused, a check-in playing
    OFFERING = "offering"                # 1 keep waiting, 2 voicemail, 3 callback (or 2/3)
    CALLBACK_NUMBER = "callback_number"  # 1 = own number, or digits then #
    KEEPING_PLACE = "keeping_place"      # waiting for the queue to keep the place, then goodbye
    CONNECTING = "connecting"            # "connecting you now" + the whisper
    ENDED = "ended"


END_STATES = frozenset({QueueState.ENDED})
CHECK_INS = {  # varied, in turn; never the same one twice in a row
    "moved": ("queue-checkin-moved-1", "queue-checkin-moved-2"),
    # a place later than the one said (a caller whose operator rang out is put back ahead,
    # a returning caller rejoins): said plainly, never as moving up
    "place": ("queue-checkin-place-1", "queue-checkin-place-2"),
    "next": ("queue-checkin-next-1", "queue-checkin-next-2"),
    "still": ("queue-checkin-still-1", "queue-checkin-still-2", "queue-checkin-still-3"),
}
WHISPER = "queue-whisper"


@dataclass(frozen=True)
class QueueSettings:
    queue: str = ""
    department: str | None = None          # whom a voice message is for (a directory id)
    name_prompt: str | None = None         # the department's name, said in the whisper
    check_in_interval: float = 25.0
    threshold: float = 90.0                # the way out is offered at this and every later
    max_wait: float = 600.0                # after this, no key = default_after_max_wait
    default_after_max_wait: str = "callback"  # or "voicemail"
    choice_timeout: float = 8.0            # after the menu's repeat; at most 5 s count
    menu_repeat_after: float = 4.0
    language: str = "en"
    numbers: NumberRules = NumberRules()   # what may be called back (none: nothing)
    service_level: float = 20.0            # answered within this: counted as such


# --- inputs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueJoin:
    """The call hands the caller to the queue (the greeting is over, nobody was free)."""
    now: float


@dataclass(frozen=True)
class QueueEntered:
    """The greeting is over and the caller is in line at `position` (1 = next)."""
    now: float
    position: int
    estimate: WaitEstimate
    operators: int             # logged in and not paused (0: no estimate, the way out at once)
    returning: bool = False    # back at their old place (a "welcome back" was the greeting)
    arrival: float | None = None  # their place: when they first came (None: now)


@dataclass(frozen=True)
class QueueRefused:
    """Overflow: the queue is closed (outside its hours) or full. `said`: the hours or the
    wait, as media, said after why."""
    now: float
    why: str                   # closed | full
    said: tuple[str, ...] = ()


@dataclass(frozen=True)
class PositionChanged:
    """The caller's place now (None: not known, e.g. Redis did not answer: the last one
    stands)."""
    now: float
    position: int | None


@dataclass(frozen=True)
class OperatorOffered:
    """The caller reached the head and `operator` was reserved for them: dial them (the caller
    keeps their music and check-ins while the phone rings)."""
    now: float
    operator: str


@dataclass(frozen=True)
class OperatorFound:
    """The operator offered answered their phone."""
    now: float
    operator: str
    calling_again: bool = False
    last_topic: str | None = None


@dataclass(frozen=True)
class OperatorMissed:
    """The operator offered did not answer (rang out: `missed`), was busy or unreachable:
    the caller keeps their place."""
    now: float
    operator: str
    missed: bool = False
    why: str = ""


@dataclass(frozen=True)
class DigitPressed:
    now: float
    digit: str


@dataclass(frozen=True)
class PlaceKept:
    """The queue turned the caller's entry into a callback at their arrival time. `said`:
    when it comes (media), `data` what the call's events record of it."""
    now: float
    said: tuple[str, ...] = ()
    data: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class PlaceNotKept:
    """The callback was refused (the number's rules changed, the queue is gone)."""
    now: float
    why: str = ""


# --- outputs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JoinQueue:
    """Put the caller in line; answered by QueueEntered or QueueRefused."""


@dataclass(frozen=True)
class LookUpPosition:
    """A check-in is due: answered by PositionChanged (said in it)."""


@dataclass(frozen=True)
class DialOperator:
    """Ring the operator reserved for the caller, on the call's leg `leg`."""
    operator: str
    leg: str


@dataclass(frozen=True)
class HangUpOperator:
    """Let go of the operator's leg (the caller left while it rang or heard the whisper)."""
    leg: str


@dataclass(frozen=True)
class PutBack:
    """Back in line at the caller's own place (an operator who did not take the call)."""


@dataclass(frozen=True)
class LeaveLine:
    """Out of line for good; `abandoned`: the caller hung up while waiting (a call back within
    the policy's window returns them to this place)."""
    abandoned: bool = False
    waited: int = 0
    position: int | None = None


@dataclass(frozen=True)
class KeepPlace:
    """Turn the caller's entry into a callback to `number` at its arrival time."""
    number: str
    own_number: bool
    chosen: str  # caller | default


@dataclass(frozen=True)
class Whisper:
    """Said to the operator only, before the caller is put through (a Play on their leg)."""
    operator: str
    department: str | None
    waited: int                  # whole seconds in the queue
    calling_again: bool
    last_topic: str | None
    media: tuple[str, ...]
    tag: str = ""
    prompt: str = WHISPER
    party: str = OPERATOR


@dataclass(frozen=True)
class ReleaseOperator:
    """An operator who will not talk with this caller: back to the pool (`missed`: their
    phone rang out, they are paused as missed)."""
    operator: str
    after: str = "unused"


# Finish(outcome, data): connected {operator, leg, waited, queue} | voicemail {for, waited} | callback
# {waited} | abandoned {waited, position}


class InvalidQueueEvent(Exception):
    pass


def minutes_media(count: int, language: str) -> tuple[str, ...]:
    """"N minutes" as media (prompts/catalog.py: Russian's feminine one and two)."""
    return spoken_minutes(count, language)


@dataclass
class QueueMachine(TakingANumber, RuleMachine):
    KIND: ClassVar[str] = "queue"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidQueueEvent

    call_id: str
    caller_number: str = ""
    settings: QueueSettings = field(default_factory=QueueSettings)
    state: QueueState = QueueState.ANNOUNCING
    entered_at: float | None = None
    arrival: float | None = None         # the place in line (a returning caller's old one)
    position: int | None = None
    told_position: int | None = None     # the place last said to the caller
    estimate_seconds: float | None = None
    can_wait: bool = True                # False: no operator, closed, full: 2/3 only
    playing: str | None = None
    plays: int = 0
    next_check_in: float | None = None
    check_ins: list[float] = field(default_factory=list)
    last_check_in: str | None = None
    offer_at: float | None = None        # the next threshold
    offers: int = 0
    final_offer: bool = False            # the offer now on: after max_wait
    choice_deadline: float | None = None
    menu_repeated: bool = False
    digits: str = ""
    refusals: int = 0
    operator: str | None = None          # offered (ringing) or found (answered)
    leg: str | None = None               # the operator's leg: `qop<attempt>`
    answered: bool = False
    attempt: int = 0
    checking_in: bool = False            # a check-in waits for the caller's place
    waiting_for: list[str] = field(default_factory=list)  # prompts before connecting ends
    outcome: str | None = None

    @property
    def playing_tag(self) -> str:
        return f"q{self.plays}"

    def get_timer(self) -> float | None:
        if self.state is QueueState.WAITING:
            return min((t for t in (self.next_check_in, self.offer_at) if t is not None),
                       default=None)
        if self.state in (QueueState.OFFERING, QueueState.CALLBACK_NUMBER):
            return self.choice_deadline
        return None

    # --- start --------------------------------------------------------------------------------
    def _on_QueueJoin(self, ev: QueueJoin) -> list[object]:
        return [] if self.entered_at is not None else [JoinQueue()]

    def _on_QueueEntered(self, ev: QueueEntered) -> list[object]:
        if self.entered_at is not None:
            return []  # a repeat is harmless
        self.entered_at, self.position = ev.now, ev.position
        self.arrival = ev.arrival if ev.arrival is not None else ev.now
        self.estimate_seconds = ev.estimate.seconds
        note = Note("queue entered", (("queue", self.settings.queue), ("position", ev.position),
                                      *ev.estimate.data(), ("operators", ev.operators),
                                      ("returning", ev.returning)))
        if ev.operators <= 0:
            self.can_wait = False
            self._set_state(QueueState.OFFERING)
            return [note, Note("way out offered", (("why", "no operator"),)),
                    self._ask("queue-way-out-menu", (prompt_media("queue-no-operator"),
                                                     *self._menu_media()))]
        self.told_position = ev.position
        media = [prompt_media("all-operators-busy")]
        if ev.position <= 1:
            media.append(prompt_media("queue-next-in-line"))
        else:
            media += [prompt_media("queue-position"), f"number:{ev.position}"]
        if ev.estimate.said == MINUTES and ev.estimate.minutes:
            media += [prompt_media("queue-wait-about"),
                      *minutes_media(ev.estimate.minutes, self.settings.language)]
        elif ev.estimate.said == LESS_THAN_A_MINUTE:
            media.append(prompt_media("queue-wait-under-a-minute"))
        return [note, self._play("queue-entered", tuple(media))]

    def _on_QueueRefused(self, ev: QueueRefused) -> list[object]:
        if self.entered_at is not None:
            return []
        self.entered_at, self.can_wait = ev.now, False
        self.arrival = ev.now
        self._set_state(QueueState.OFFERING)
        why = "queue-closed" if ev.why == "closed" else "queue-full"
        return [Note("overflow", (("queue", self.settings.queue), ("why", ev.why))),
                self._ask("queue-way-out-menu", (prompt_media(why), *ev.said,
                                                 *self._menu_media()))]

    # --- prompts ending -----------------------------------------------------------------------
    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if self.state is QueueState.CONNECTING:
            if ev.prompt in self.waiting_for:
                self.waiting_for.remove(ev.prompt)
            if self.waiting_for:
                return []
            return self._connected(ev.now)
        if ev.prompt != self.playing or (ev.tag and ev.tag != self.playing_tag):
            return []
        self.playing = None
        match self.state:
            case QueueState.ANNOUNCING:
                self.offer_at = self._next_offer(ev.now)
                return self._music(ev.now)
            case QueueState.CHECKING_IN:
                if self.offer_at is not None and ev.now >= self.offer_at:
                    return self._offer(ev.now)
                return self._music(ev.now, after_check_in=True)
            case QueueState.OFFERING | QueueState.CALLBACK_NUMBER:
                self.choice_deadline = ev.now + self._menu_wait()
                return []
            case QueueState.KEEPING_PLACE:
                self._set_state(QueueState.ENDED)
                return [Finish(self.outcome or "callback", {"waited": self._waited(ev.now)})]
        return []

    # --- the clock ----------------------------------------------------------------------------
    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        deadline = self.get_timer()
        if deadline is None or ev.now < deadline:
            return []
        if self.state is QueueState.WAITING:
            if self.offer_at is not None and ev.now >= self.offer_at:
                return [StopMusic(), *self._offer(ev.now)]
            # the check-in says the place as it is now: asked first, played on the answer
            self._set_state(QueueState.CHECKING_IN)
            self.checking_in = True
            return [LookUpPosition()]
        if self.state is QueueState.CALLBACK_NUMBER:
            taken = self._number_pause_over(ev.now)  # a lone 1: their own number
            if taken is not None:
                return taken
        self.choice_deadline = None
        if not self.menu_repeated:
            return self._repeat()
        return self._default(ev.now)

    def _default(self, now: float) -> list[object]:
        """No key after the repeat: keep waiting at a first offer; after max_wait, or when the
        caller cannot wait, the policy's default (a callback needs a number we may call)."""
        if self.can_wait and not self.final_offer:
            self.digits = ""
            return [Note("queue choice", (("choice", "keep waiting"), ("chosen", "default"))),
                    *self._keep_waiting(now)]
        own = self._own_number()
        if self.settings.default_after_max_wait == "callback" and own:
            return [Note("queue choice", (("choice", "callback"), ("chosen", "default"))),
                    *self._keep_place(own, own=True, chosen="default")]
        return self._voicemail(now, chosen="default")

    def _check_in(self, now: float) -> list[object]:
        due = self.next_check_in
        self.checking_in = False
        self.check_ins.append(now)
        self.next_check_in = None
        position = self.position or 1
        if position != self.told_position and position <= 1:
            kind, media = "next", ()
        elif position != self.told_position:
            moved_up = self.told_position is None or position < self.told_position
            kind, media = "moved" if moved_up else "place", (f"number:{position}",)
        else:
            kind, media = "still", ()
        choices = [p for p in CHECK_INS[kind] if p != self.last_check_in]
        prompt = choices[(len(self.check_ins) - 1) % len(choices)]
        self.last_check_in, self.told_position = prompt, position
        return [StopMusic(), self._play(prompt, (prompt_media(prompt), *media)),
                Note("check-in", (("prompt", prompt), ("position", position),
                                  ("waited", self._waited(now)), ("due_at", due)))]

    # --- news from the queue ------------------------------------------------------------------
    def _on_PositionChanged(self, ev: PositionChanged) -> list[object]:
        if self.state in (QueueState.CONNECTING, QueueState.KEEPING_PLACE, QueueState.ENDED):
            return []
        if ev.position is not None:
            self.position = ev.position  # said at the next check-in
        if self.state is QueueState.CHECKING_IN and self.checking_in:
            return self._check_in(ev.now)
        return []

    def _on_OperatorOffered(self, ev: OperatorOffered) -> list[object]:
        """Reserved for this caller: ring them; the caller waits on as before meanwhile."""
        if (self.state in (QueueState.CONNECTING, QueueState.KEEPING_PLACE, QueueState.ENDED)
                or self.entered_at is None or self.operator is not None):
            return [Note("operator released", (("operator", ev.operator),
                                               ("state", self.state.value))),
                    ReleaseOperator(ev.operator)]
        self.attempt += 1
        self.operator, self.leg, self.answered = ev.operator, f"qop{self.attempt}", False
        return [Note("operator offered", (("operator", ev.operator), ("attempt", self.attempt),
                                          ("waited", self._waited(ev.now)))),
                DialOperator(ev.operator, self.leg)]

    def _on_OperatorMissed(self, ev: OperatorMissed) -> list[object]:
        """The operator's phone did not take the call: they go back (paused when it rang out),
        the caller keeps their place and the next operator is tried."""
        if ev.operator != self.operator or self.answered:
            return []
        self.operator = self.leg = None
        actions: list[object] = [
            Note("operator missed", (("operator", ev.operator), ("missed", ev.missed),
                                     ("why", ev.why))),
            ReleaseOperator(ev.operator, "missed" if ev.missed else "unused")]
        if self.state in (QueueState.KEEPING_PLACE, QueueState.ENDED):
            return actions
        return [*actions, PutBack()]

    def _on_OperatorFound(self, ev: OperatorFound) -> list[object]:
        if ev.operator != self.operator or self.answered:
            return []
        self.answered = True
        if self.state in (QueueState.CONNECTING, QueueState.KEEPING_PLACE, QueueState.ENDED):
            return [Note("operator released", (("operator", ev.operator),
                                               ("state", self.state.value))),
                    HangUpOperator(self.leg or ""), ReleaseOperator(ev.operator)]
        # music plays while waiting, and while a check-in waits for the caller's place
        music = self.state is QueueState.WAITING or (
            self.state is QueueState.CHECKING_IN and self.checking_in)
        actions: list[object] = [StopMusic()] if music else []
        actions += self._stop_playing()
        self.next_check_in = self.offer_at = self.choice_deadline = None
        self.checking_in = False
        self._set_state(QueueState.CONNECTING)
        waited = self._waited(ev.now)
        self.waiting_for = ["queue-connecting", WHISPER]
        whisper = Whisper(ev.operator, self.settings.department, waited, ev.calling_again,
                          ev.last_topic, self._whisper_media(waited, ev.calling_again),
                          tag=f"q{self.plays + 1}w")
        return [*actions, self._play("queue-connecting"), whisper]

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        """The operator found left before the caller was put through: back in line at their
        place, never left in silence."""
        if self.state is not QueueState.CONNECTING:
            return []
        operator = self.operator or ""
        note = Note("operator left before connect", (("operator", operator),))
        self.operator = self.leg = None
        self.answered, self.waiting_for = False, []
        stop = self._stop_playing()
        self.offer_at = self._next_offer(ev.now)
        return [note, ReleaseOperator(operator), *stop, *self._music(ev.now), PutBack()]

    def _connected(self, now: float) -> list[object]:
        self._set_state(QueueState.ENDED)
        self.waiting_for = []
        self.outcome = "connected"
        waited = self._waited(now)
        error = (None if self.estimate_seconds is None
                 else round(waited - self.estimate_seconds, 1))
        return [Note("connected", (("operator", self.operator), ("waited", waited),
                                   ("queue", self.settings.queue),
                                   ("within_service_level",
                                    waited <= self.settings.service_level),
                                   ("estimate_error", error))),
                Finish("connected", {"operator": self.operator, "leg": self.leg,
                                     "waited": waited, "queue": self.settings.queue})]

    # --- the caller's keys --------------------------------------------------------------------
    def _on_DigitPressed(self, ev: DigitPressed) -> list[object]:
        if self.state is QueueState.OFFERING:
            return self._choose(ev.digit, ev.now)
        if self.state is QueueState.CALLBACK_NUMBER:
            return self._number_digit(ev.digit, ev.now)
        return []  # keys while waiting mean nothing: the menu comes at the threshold

    def _choose(self, digit: str, now: float) -> list[object]:
        stop = self._stop_playing()
        self.choice_deadline = None
        if digit == "1" and self.can_wait:
            return [*stop, Note("queue choice", (("choice", "keep waiting"), ("chosen", "caller"))),
                    *self._keep_waiting(now)]
        if digit == "2":
            return [*stop, *self._voicemail(now, chosen="caller")]
        if digit == "3":
            self._set_state(QueueState.CALLBACK_NUMBER)
            self.digits = ""
            notes = [Note("queue choice", (("choice", "callback"), ("chosen", "caller")))]
            if self._own_number():
                return [*stop, *notes, self._ask("callback-own-number")]
            if self.caller_number:
                notes.append(Note("caller id not called back", ()))
            return [*stop, *notes, self._ask("callback-enter-number")]
        menu = self._menu_prompt()
        return [*stop, self._ask(menu, (prompt_media("invalid-choice"), *self._menu_media()))]

    # --- outcomes -----------------------------------------------------------------------------
    def _keep_waiting(self, now: float) -> list[object]:
        self.offer_at = self._next_offer(now)
        return self._music(now)

    def _voicemail(self, now: float, chosen: str) -> list[object]:
        self._set_state(QueueState.ENDED)
        self.outcome = "voicemail"
        waited = self._waited(now)
        return [Note("queue choice", (("choice", "voicemail"), ("chosen", chosen))),
                Note("queue left", (("outcome", "voicemail"), ("waited", waited))),
                *self._let_operator_go(), LeaveLine(),
                Finish("voicemail", {"for": self.settings.department, "waited": waited})]

    def _let_operator_go(self) -> list[object]:
        """An operator offered or found who will not talk with this caller now."""
        if self.operator is None:
            return []
        operator, leg = self.operator, self.leg
        self.operator = self.leg = None
        return [HangUpOperator(leg or ""), ReleaseOperator(operator)]

    def _keep_place(self, number: str, own: bool, chosen: str) -> list[object]:
        self._set_state(QueueState.KEEPING_PLACE)
        self.outcome = "callback"
        self.choice_deadline = None
        return [*self._let_operator_go(), KeepPlace(number, own, chosen)]  # the confirmation waits for PlaceKept

    def _on_PlaceKept(self, ev: PlaceKept) -> list[object]:
        if self.state is not QueueState.KEEPING_PLACE or self.playing:
            return []
        return [Note("place kept", (("waited", self._waited(ev.now)), ("position", self.position),
                                    *ev.data)),
                self._play("queue-place-kept", (prompt_media("queue-place-kept"), *ev.said,
                                                prompt_media("goodbye")))]

    def _on_PlaceNotKept(self, ev: PlaceNotKept) -> list[object]:
        if self.state is not QueueState.KEEPING_PLACE or self.playing:
            return []
        return [Note("callback refused", (("why", ev.why),)),
                *self._voicemail(ev.now, chosen="number-refused")]

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        waited = self._waited(ev.now)
        if self.state is QueueState.KEEPING_PLACE:  # the place is kept: not an abandon
            self._set_state(QueueState.ENDED)
            return [Finish("callback", {"waited": waited})]
        if self.state is QueueState.ENDED:
            return []
        actions = self._let_operator_go()
        self._set_state(QueueState.ENDED)
        self.outcome = "abandoned"
        return [*actions, Note("abandoned", (("waited", waited), ("position", self.position),
                                             ("queue", self.settings.queue))),
                LeaveLine(abandoned=True, waited=waited, position=self.position),
                Finish("abandoned", {"waited": waited, "position": self.position})]

    # --- helpers ------------------------------------------------------------------------------
    def _music(self, now: float, after_check_in: bool = False) -> list[object]:
        self._set_state(QueueState.WAITING)
        interval = self.settings.check_in_interval
        self.next_check_in = (next_check_in(interval, self.check_ins[-1], now)
                              if after_check_in and self.check_ins else now + interval)
        return [StartMusic()]

    def _next_offer(self, now: float) -> float:
        """The next threshold after `now` (counted from entering the queue), or the max wait
        when it comes first and has not been offered yet."""
        start = self.entered_at if self.entered_at is not None else now
        step = self.settings.threshold
        k = max(1, int((now - start) // step) + 1)
        at = start + k * step
        max_at = start + self.settings.max_wait
        if not self.final_offer and now < max_at < at:
            return max_at
        return at

    def _offer(self, now: float) -> list[object]:
        self._set_state(QueueState.OFFERING)
        self.next_check_in = self.offer_at = None
        self.offers += 1
        waited = self._waited(now)
        self.final_offer = self.entered_at is not None and (
            now - self.entered_at >= self.settings.max_wait)
        return [Note("threshold offered", (("waited", waited), ("offer", self.offers),
                                           ("position", self.position),
                                           ("final", self.final_offer))),
                self._ask(self._menu_prompt(), self._menu_media())]

    def _repeat(self) -> list[object]:
        self.menu_repeated = True
        if self.state is QueueState.CALLBACK_NUMBER:
            prompt, media = self._number_question(), ()
            self.digits = ""
        else:
            prompt, media = self._menu_prompt(), self._menu_media()
        return [Note("menu repeated", (("prompt", prompt),)), self._play(prompt, media)]

    def _menu_prompt(self) -> str:
        return "queue-menu" if self.can_wait else "queue-way-out-menu"

    def _menu_media(self) -> tuple[str, ...]:
        return (prompt_media(self._menu_prompt()),)

    def _whisper_media(self, waited: int, calling_again: bool) -> tuple[str, ...]:
        name = self.settings.name_prompt
        media = [prompt_media(WHISPER), prompt_media(name)] if name else [
            prompt_media("queue-whisper-plain")]
        if waited < 60:
            media.append(prompt_media("queue-whisper-waited-short"))
        else:
            media += [prompt_media("queue-whisper-waited"),
                      *minutes_media(waited // 60, self.settings.language)]
        if calling_again:
            media.append(prompt_media("queue-whisper-calling-again"))
        return tuple(media)

    def _waited(self, now: float) -> int:
        return int(round(now - (self.entered_at if self.entered_at is not None else now)))

    def _number_taken(self, number: str, own: bool, now: float) -> list[object]:
        return self._keep_place(number, own=own, chosen="caller")

    def _no_number(self, now: float) -> list[object]:
        return self._voicemail(now, chosen="number-refused")

    # --- persistence --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> "QueueMachine":
        data = dict(data)
        data["state"] = QueueState(data["state"])
        settings = dict(data["settings"])
        settings["numbers"] = NumberRules.from_dict(settings.get("numbers") or {})
        data["settings"] = QueueSettings(**settings)
        return cls(**data)

    def to_public_dict(self) -> dict:
        return {"status": self.state.value, "queue": self.settings.queue,
                "entered_at": self.entered_at, "position": self.position,
                "estimate_seconds": self.estimate_seconds, "check_ins": len(self.check_ins),
                "offers": self.offers, "outcome": self.outcome}
