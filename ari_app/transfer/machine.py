"""An announced, verified transfer of one call. Pure: events in (each with `now`), actions out,
one deadline (`get_timer`).

The five steps, decided here:
1. the caller hears to whom they are being transferred and why, and may decline
   (1 continue, 2 stay with the operator, 3 leave a message instead; no key = continue);
2. they hear the target's direct number, in case the call drops;
3. they hear what to expect (a moment of music), then music with the hold rule's check-ins
   while the target rings;
4. the target is introduced before anyone is connected: `announced` plays who is calling and
   why, then 1 accept / 2 decline, and frees the operator at once; `attended` bridges the
   operator with the target to consult, and the operator completes or cancels;
5. it is verified: no answer, busy, declined, or no key pressed (a machine or voicemail) is a
   failed transfer: back to the operator if they are still there, otherwise the caller hears
   that the person is not available and their direct number again, and the call ends in the
   hold rule's voicemail-or-callback offer (outcome `unavailable`).
A transfer the caller accepts is thanked ("thank you for your patience") before connecting.

A consultation has no time limit of its own, so the hold rule's way out holds there too: once
the caller has waited `way_out_after` seconds since the target was dialed, they hear that the
operator is still speaking with the target and that 2 leaves a message, 3 a callback (for the
target); no key is staying on the line, and every check-in after it says the keys again. On
2 or 3 the consultation ends, the operator and the target each hear that the caller chose not
to wait and are then let go, and the call goes on in the hold rule's voicemail or callback
(outcome `caller-left`), the caller on music meanwhile.

While the caller waits on music, check-ins come as on hold: `check_in_interval` seconds after
the music started, then start to start (calls/pacing.py). The caller's menu (step 1) and the
target's (step 4) are never followed by long silence: no key within `menu_repeat_after`
seconds, the menu is said once more; then no key within the choice or accept timeout, at most
5 s, is no key (continue; not verified).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.calls.machine import RuleMachine
from ari_app.calls.pacing import menu_wait, next_check_in
# the words every rule shares (hang-ups, the timer, prompts, music, the end): re-exported
from ari_app.calls.vocabulary import (CALLER, OPERATOR, TARGET, CallerHungUp, DetachCaller,
                                      Finish, Note, OperatorHungUp, Play, PromptFinished,
                                      ReattachCaller, StartMusic, StopMusic, StopPlayback,
                                      TimerFired, prompt_media)

__all__ = [
    "TransferState", "TransferMachine", "TransferSettings", "TransferTarget", "InvalidTransferEvent",
    "TransferRequested", "PromptFinished", "DigitPressed", "TimerFired", "TargetAnswered",
    "TargetFailed", "TargetHungUp", "CallerHungUp", "OperatorHungUp", "CompleteRequested",
    "CancelRequested",
    "DetachCaller", "ReattachCaller", "StartMusic", "StopMusic", "Play", "StopPlayback",
    "DialTarget", "HangUpTarget", "HangUpOperator", "StartConsultation", "EndConsultation",
    "ConnectTarget", "AnnounceRecording", "Note", "Finish",
    "CALLER", "TARGET", "OPERATOR",
]

logger = structlog.get_logger()


class TransferState(Enum):
    ANNOUNCING = "announcing"    # caller: to whom, why, the direct number, 1/2/3
    RINGING = "ringing"          # caller: what to expect, then music; the target rings
    INTRODUCING = "introducing"  # announced: the target hears who and why, 1 accept / 2 decline
    CONSULTING = "consulting"    # attended: the operator talks with the target
    CONNECTING = "connecting"    # caller: "thank you for your patience", then the target
    LEAVING = "leaving"          # the caller chose not to wait: operator and target are told
    RETURNING = "returning"      # caller: not available, back to your operator
    ENDED = "ended"


END_STATES = frozenset({TransferState.ENDED})
# while the caller waits for the target: varied, in turn, and true at every step (the operator
# may be free already: announced mode lets them go once the target rings)
CHECK_INS = ("transfer-checkin-1", "transfer-checkin-2", "transfer-checkin-3")
WAY_OUT = "transfer-way-out"  # a long consultation: a message or a callback instead
WAY_OUT_KEYS = {"2": "voicemail", "3": "callback"}  # the hold rule's keys for the same choice
LEAVE_WITHIN = 15.0            # s the operator's and the target's goodbyes may take, at most


@dataclass(frozen=True)
class TransferSettings:
    ring_timeout: float = 20.0     # how long the target rings
    choice_timeout: float = 6.0    # caller's 1/2/3 after the announcement; no key = continue
    accept_timeout: float = 10.0   # target's 1/2 after the introduction; no key = not verified
    menu_repeat_after: float = 4.0  # either menu, no key: said once more (then the timeouts
    #                                 above count, at most 5 s: calls/pacing.py)
    check_in_interval: float = 25.0  # the hold rule's cadence, while the caller waits
    way_out_after: float = 150.0   # the hold rule's way out, counted from the target's dial
    recording_notice: bool = True  # repeat the disclosure to the new pair
    complete_code: str = "*2"      # attended: the operator completes (the transfer code again)
    cancel_code: str = "*8"        # attended: the operator takes the caller back (resume code)


@dataclass(frozen=True)
class TransferTarget:
    """A directory entry, as far as a call needs it."""
    id: str
    endpoint: str
    name_prompt: str               # a prompt that says the name ("the billing department")
    direct_number: str = ""


# --- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferRequested:
    now: float
    target: TransferTarget
    mode: str = "announced"        # or "attended"
    reason: str | None = None
    reason_prompt: str | None = None   # said to the target: why the caller is coming
    source: str = "rest"           # rest | feature-code | phone | escalation
    transfers_before: int = 0
    caller_number: str = ""
    operator_present: bool = True


@dataclass(frozen=True)
class DigitPressed:
    now: float
    party: str
    digit: str


@dataclass(frozen=True)
class TargetAnswered:
    now: float
    channel: str


@dataclass(frozen=True)
class TargetFailed:
    """The target's leg ended before it answered (busy, no answer, unreachable)."""
    now: float
    cause: str


@dataclass(frozen=True)
class TargetHungUp:
    now: float


@dataclass(frozen=True)
class CompleteRequested:
    now: float
    source: str = "rest"


@dataclass(frozen=True)
class CancelRequested:
    now: float
    source: str = "rest"


# --- outputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DialTarget:
    endpoint: str
    timeout: int


@dataclass(frozen=True)
class HangUpTarget:
    pass


@dataclass(frozen=True)
class HangUpOperator:
    """The operator's part is over (they were told so)."""


@dataclass(frozen=True)
class StartConsultation:
    """Attended: the operator leaves the caller's bridge and talks with the target."""


@dataclass(frozen=True)
class EndConsultation:
    """The consultation bridge goes; the operator goes back to the caller's bridge, or not
    (they completed the transfer, or hung up)."""
    operator_back: bool = True


@dataclass(frozen=True)
class ConnectTarget:
    """The target joins the caller's bridge: from now on they are the call's operator."""


@dataclass(frozen=True)
class AnnounceRecording:
    """The recording disclosure, to both caller and target once they are connected."""


# Finish(outcome, data): connected | declined | returned | unavailable | operator-gone |
# message | caller-left | caller-hung-up; data holds only what is set of "intro" (said before
# the hold rule's way out), "for_whom" (the target: a message or callback is for them) and
# "preselect" (caller-left: "voicemail" or "callback", already chosen)


class InvalidTransferEvent(Exception):
    pass



@dataclass
class TransferMachine(RuleMachine):
    KIND: ClassVar[str] = "transfer"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidTransferEvent

    call_id: str
    settings: TransferSettings = field(default_factory=TransferSettings)
    state: TransferState = TransferState.ANNOUNCING
    target: TransferTarget | None = None
    mode: str = "announced"
    reason: str | None = None
    reason_prompt: str | None = None
    caller_number: str = ""
    started_at: float | None = None
    operator_present: bool = True
    target_leg: str = ""               # the id the target's channel gets when dialed
    target_channel: str | None = None  # set once it answered
    # what each party hears now: party -> [prompt, tag] (a stopped playback also reports
    # finished, so the tag tells the current one from an old one)
    playing: dict[str, list[str]] = field(default_factory=dict)
    music: bool = False
    next_check_in: float | None = None
    check_ins: int = 0
    check_in_at: float | None = None   # when the last check-in started (start to start)
    waiting_since: float | None = None  # the target was dialed: the caller waits from here
    way_out_offered: bool = False
    menu_repeated: bool = False        # the menu waiting for a key was said once more
    deadline: float | None = None      # choice, ring or accept timeout (wall clock)
    keys: str = ""                     # operator's keys during a consultation
    failure: str | None = None
    outcome: str | None = None
    leaving_choice: str | None = None  # the caller's way out of a consultation
    plays: int = 0


    def get_timer(self) -> float | None:
        times = [t for t in (self.deadline, self.next_check_in if self.music else None,
                             self._way_out_due()) if t is not None]
        return min(times) if times else None

    def _way_out_due(self) -> float | None:
        """Only while the caller is on music: a check-in playing says itself to its end."""
        return self._way_out_at() if self.music else None

    def _way_out_at(self) -> float | None:
        """Once per consultation, `way_out_after` from the target's dial."""
        if (self.state is not TransferState.CONSULTING or self.way_out_offered
                or self.waiting_since is None):
            return None
        return self.waiting_since + self.settings.way_out_after


    # --- step 1 and 2: tell the caller, let them decline -----------------------------------------
    def _on_TransferRequested(self, ev: TransferRequested) -> list[object]:
        if self.started_at is not None:
            return []  # a repeated request is harmless
        self.started_at, self.target, self.mode = ev.now, ev.target, ev.mode
        self.reason, self.reason_prompt = ev.reason, ev.reason_prompt
        self.caller_number, self.operator_present = ev.caller_number, ev.operator_present
        notes = [Note("transfer started", (("target", ev.target.id), ("mode", ev.mode),
                                           ("reason", ev.reason), ("source", ev.source)))]
        if ev.transfers_before:
            notes.append(Note("breach", (("what", "caller transferred again"),
                                         ("transfer_number", ev.transfers_before + 1))))
        media = [prompt_media("transfer-announce"), prompt_media(ev.target.name_prompt),
                 prompt_media("transfer-why"), *self._direct_number("transfer-direct-number"),
                 prompt_media("transfer-menu")]
        return [*notes, DetachCaller(), self._play(CALLER, "transfer-announce", media)]

    def _direct_number(self, lead: str) -> tuple[str, ...]:
        number = self.target.direct_number if self.target else ""
        return (prompt_media(lead), f"digits:{number.lstrip('+')}") if number else ()

    def _caller_choice(self, digit: str, now: float) -> list[object]:
        stop = self._stop(CALLER)
        self.deadline = None
        if digit == "2" and not self.operator_present:
            return [*stop, Note("transfer choice", (("choice", "stay"),)),
                    *self._finish("operator-gone")]  # they left meanwhile: the hold rule's offer
        if digit == "2":
            return [*stop, Note("transfer choice", (("choice", "stay"),)),
                    *self._finish("declined", ReattachCaller(),
                                  *self._tell_operator("transfer-declined-operator"))]
        if digit == "3":
            return [*stop, Note("transfer choice", (("choice", "message"),)),
                    *self._finish("message")]
        return [*stop, Note("transfer choice", (("choice", "continue"), ("key", digit or None))),
                *self._ring(now)]

    # --- step 3: what to expect, music, the target rings -------------------------------------------
    def _ring(self, now: float) -> list[object]:
        assert self.target is not None
        self._set_state(TransferState.RINGING)
        self.deadline = now + self.settings.ring_timeout + 2.0  # Asterisk's own timeout first
        self.waiting_since = now
        actions: list[object] = [
            self._play(CALLER, "transfer-expect",
                       (prompt_media("transfer-expect"), prompt_media("transfer-thanks"))),
            DialTarget(self.target.endpoint, int(self.settings.ring_timeout)),
            Note("target dialed", (("endpoint", self.target.endpoint),)),
        ]
        if self.mode == "announced" and self.operator_present:
            # the system introduces the caller: the operator is free at once, and from now on
            # a failed transfer never comes back to them (they were told they are free)
            actions.append(self._play(OPERATOR, "operator-freed-transfer"))
            self.operator_present = False
        return actions

    def _on_TargetAnswered(self, ev: TargetAnswered) -> list[object]:
        if self.state is not TransferState.RINGING:
            return [HangUpTarget()]  # too late: we gave up on that leg
        self.target_channel = ev.channel
        self.deadline = None
        note = Note("target answered", (("channel", ev.channel),))
        if self.mode == "attended" and self.operator_present:
            self._set_state(TransferState.CONSULTING)
            self.keys = ""
            if self.waiting_since is None:
                self.waiting_since = ev.now
            return [note, StartConsultation()]
        # step 4, announced: who is calling and why, then 1 accept / 2 decline
        self._set_state(TransferState.INTRODUCING)
        self.menu_repeated = False
        media = [prompt_media("transfer-intro-to-target")]
        media += [f"digits:{self.caller_number.lstrip('+')}"] if self.caller_number else \
            [prompt_media("transfer-caller-unknown")]
        if self.reason_prompt:
            media.append(prompt_media(self.reason_prompt))
        media.append(prompt_media("transfer-target-menu"))
        return [note, self._play(TARGET, "transfer-intro-to-target", tuple(media))]

    def _on_TargetFailed(self, ev: TargetFailed) -> list[object]:
        if self.state is not TransferState.RINGING:
            return []
        return self._failed(ev.now, ev.cause)

    def _on_TargetHungUp(self, ev: TargetHungUp) -> list[object]:
        self.target_channel = None
        if self.state is TransferState.LEAVING:
            self.playing.pop(TARGET, None)
            return self._left_when_told()
        if self.state is TransferState.CONNECTING:
            return self._failed(ev.now, "target hung up before connecting", hang_up=False)
        if self.state in (TransferState.INTRODUCING, TransferState.CONSULTING):
            return self._failed(ev.now, "target hung up", hang_up=False)
        if self.state is TransferState.RINGING:
            return self._failed(ev.now, "no answer", hang_up=False)
        return []

    # --- step 4: the target's answer ----------------------------------------------------------
    def _target_choice(self, digit: str, now: float) -> list[object]:
        if digit == "1":
            stop = self._stop(TARGET)
            return [*stop, Note("target accepted", ()), *self._connect(now)]
        if digit == "2":
            return [*self._stop(TARGET), *self._failed(now, "declined by the target")]
        return []

    def _on_CompleteRequested(self, ev: CompleteRequested) -> list[object]:
        if self.state is not TransferState.CONSULTING:
            raise InvalidTransferEvent(f"nothing to complete: the transfer is {self.state.value}")
        self.operator_present = False  # their part is done: they leave, the target stays
        return [Note("transfer completed", (("source", ev.source),)), EndConsultation(False),
                HangUpOperator(), *self._connect(ev.now)]

    def _on_CancelRequested(self, ev: CancelRequested) -> list[object]:
        if self.state in (TransferState.CONNECTING, TransferState.RETURNING,
                          TransferState.LEAVING):
            raise InvalidTransferEvent(f"too late to cancel: the transfer is {self.state.value}")
        actions: list[object] = [Note("transfer cancelled", (("source", ev.source),))]
        if self.state is TransferState.CONSULTING:
            actions.append(EndConsultation(True))
        if self.target_channel or self.state is TransferState.RINGING:
            actions.append(HangUpTarget())
        self.target_channel = None
        actions += [*self._stop(CALLER), *self._stop(TARGET), *self._stop_music()]
        if not self.operator_present:
            return [*actions, *self._finish("unavailable")]
        return [*actions, *self._finish("returned", ReattachCaller())]

    def _connect(self, now: float) -> list[object]:
        self._set_state(TransferState.CONNECTING)
        self.deadline = None
        actions = [*self._stop_music(), *self._stop(CALLER)]
        return [*actions, self._play(CALLER, "transfer-connecting")]

    # --- step 5: it did not go through ----------------------------------------------------------
    def _failed(self, now: float, cause: str, hang_up: bool = True) -> list[object]:
        self.failure = cause
        self.deadline = None
        actions: list[object] = [Note("transfer failed", (("cause", cause),))]
        if hang_up and (self.target_channel or self.state is TransferState.RINGING):
            actions.append(HangUpTarget())
        if self.state is TransferState.CONSULTING:
            actions.append(EndConsultation(self.operator_present))
        self.target_channel = None
        actions += [*self._stop_music(), *self._stop(CALLER)]
        if not self.operator_present:
            # nobody to go back to: the hold rule offers voicemail or a callback, after
            # "not available" and the direct number again (the inbound call starts it)
            return [*actions, *self._finish("unavailable")]
        self._set_state(TransferState.RETURNING)
        media = (prompt_media("transfer-unavailable"),
                 *self._direct_number("transfer-direct-number-again"),
                 prompt_media("transfer-back-to-operator"))
        return [*actions, *self._tell_operator("transfer-failed-operator"),
                self._play(CALLER, "transfer-back-to-operator", media)]

    # --- prompts ending, keys, the clock --------------------------------------------------------
    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        current = self.playing.get(ev.party)
        if current is None or current[0] != ev.prompt or (ev.tag and ev.tag != current[1]):
            return []  # an old or stopped playback
        del self.playing[ev.party]
        if ev.party == OPERATOR:
            if self.state is TransferState.LEAVING:
                self.operator_present = False
                return [HangUpOperator(), *self._left_when_told()]
            if ev.prompt == "operator-freed-transfer":
                return [HangUpOperator()]
            return []
        if ev.party == TARGET:
            if self.state is TransferState.LEAVING:
                self.target_channel = None
                return [HangUpTarget(), *self._left_when_told()]
            if self.state is TransferState.INTRODUCING:
                self.deadline = ev.now + self._menu_wait(self.settings.accept_timeout)
            return []
        match self.state:
            case TransferState.ANNOUNCING:
                self.deadline = ev.now + self._menu_wait(self.settings.choice_timeout)
                return []
            case TransferState.CONSULTING if self._way_out_now(ev.now):
                return self._offer_way_out(ev.now)
            case TransferState.RINGING | TransferState.INTRODUCING | TransferState.CONSULTING:
                return self._start_music(ev.now,
                                         after_check_in=ev.prompt in (*CHECK_INS, WAY_OUT))
            case TransferState.CONNECTING:
                actions: list[object] = [ConnectTarget(), ReattachCaller()]
                if self.settings.recording_notice:
                    actions.append(AnnounceRecording())
                return [*actions, *self._finish("connected")]
            case TransferState.RETURNING:
                return self._finish("returned", ReattachCaller())
        return []

    def _on_DigitPressed(self, ev: DigitPressed) -> list[object]:
        if ev.party == CALLER and self.state is TransferState.ANNOUNCING:
            if ev.digit not in ("1", "2", "3"):
                return []  # not on the menu; no key at all still means "continue"
            return self._caller_choice(ev.digit, ev.now)
        if ev.party == TARGET and self.state is TransferState.INTRODUCING:
            return self._target_choice(ev.digit, ev.now)
        if (ev.party == CALLER and self.state is TransferState.CONSULTING
                and self.way_out_offered and ev.digit in WAY_OUT_KEYS):
            return self._caller_leaves(WAY_OUT_KEYS[ev.digit], ev.now)
        if ev.party == OPERATOR and self.state is TransferState.CONSULTING:
            self.keys = (self.keys + ev.digit)[-4:]
            if self.keys.endswith(self.settings.complete_code):
                return self._on_CompleteRequested(CompleteRequested(ev.now, "feature-code"))
            if self.keys.endswith(self.settings.cancel_code):
                return self._on_CancelRequested(CancelRequested(ev.now, "feature-code"))
        return []

    def _on_TimerFired(self, ev: TimerFired) -> list[object]:
        if self.deadline is not None and ev.now >= self.deadline:
            self.deadline = None
            match self.state:
                case TransferState.ANNOUNCING if not self.menu_repeated:  # no key yet: again
                    return self._repeat(CALLER, "transfer-announce", "transfer-menu")
                case TransferState.ANNOUNCING:  # no key: continue, as announced
                    return self._caller_choice("", ev.now)
                case TransferState.RINGING:
                    return self._failed(ev.now, "no answer")
                case TransferState.INTRODUCING if not self.menu_repeated:
                    return self._repeat(TARGET, "transfer-intro-to-target",
                                        "transfer-target-menu")
                case TransferState.INTRODUCING:  # nobody pressed a key: not verified
                    return [*self._stop(TARGET), *self._failed(ev.now, "not verified (no key)")]
                case TransferState.LEAVING:  # a goodbye that never ended: let them go anyway
                    return self._caller_left()
        if self.music and self._way_out_now(ev.now):
            return self._offer_way_out(ev.now)
        if self.music and self.next_check_in is not None and ev.now >= self.next_check_in:
            return self._check_in(ev.now)
        return []

    def _check_in(self, now: float) -> list[object]:
        self.check_ins += 1
        prompt = CHECK_INS[(self.check_ins - 1) % len(CHECK_INS)]
        due = self.next_check_in  # when it was due: played at `now` (metrics: the lateness)
        self.music, self.next_check_in, self.check_in_at = False, None, now
        started = now if self.started_at is None else self.started_at  # 0.0 is a start time
        media = (prompt_media(prompt), prompt_media("operator-gone-menu")) \
            if self._keys_still_offered() else ()
        return [StopMusic(), self._play(CALLER, prompt, media),
                Note("check-in", (("prompt", prompt), ("waited", int(now - started)),
                                  ("due_at", due)))]

    # --- the caller's way out of a long consultation -----------------------------------------
    def _way_out_now(self, now: float) -> bool:
        due = self._way_out_at()
        return due is not None and now >= due

    def _keys_still_offered(self) -> bool:
        """After the offer, every check-in says the keys again (a menu is never said once)."""
        return self.way_out_offered and self.state is TransferState.CONSULTING

    def _offer_way_out(self, now: float) -> list[object]:
        """Music stops for the offer, which counts as a check-in for the next one's time."""
        self.way_out_offered = True
        stop = self._stop_music()
        self.check_in_at = now
        waited = int(now - (self.waiting_since if self.waiting_since is not None else now))
        media = (prompt_media(WAY_OUT), prompt_media("operator-gone-menu"))
        return [*stop, self._play(CALLER, WAY_OUT, media),
                Note("way out offered", (("waited", waited),))]

    def _caller_leaves(self, choice: str, now: float) -> list[object]:
        """The consultation ends; the operator and the target each hear why, and are let go
        when that ends (`_left_when_told`); the caller has music until the hold rule takes
        them."""
        self._set_state(TransferState.LEAVING)
        self.deadline = now + LEAVE_WITHIN
        self.leaving_choice = choice
        actions: list[object] = [Note("transfer choice", (("choice", choice),
                                                          ("during", "consultation"))),
                                 *self._stop(CALLER), EndConsultation(False)]
        if not self.music:
            actions.append(StartMusic())
        self.music, self.next_check_in = True, None
        actions += [self._play(OPERATOR, "transfer-caller-left-operator")]
        if self.target_channel:
            actions.append(self._play(TARGET, "transfer-caller-left-target"))
        return actions

    def _left_when_told(self) -> list[object]:
        if OPERATOR in self.playing or TARGET in self.playing:
            return []
        return self._caller_left()

    def _caller_left(self) -> list[object]:
        """Whoever is still there is let go (their goodbye cut short only by LEAVE_WITHIN)."""
        actions: list[object] = []
        if self.playing.pop(OPERATOR, None) and self.operator_present:
            actions.append(HangUpOperator())
        if self.playing.pop(TARGET, None) and self.target_channel:
            actions.append(HangUpTarget())
        self.operator_present, self.target_channel = False, None
        return self._finish("caller-left", *actions, preselect=self.leaving_choice)

    # --- hang-ups -------------------------------------------------------------------------------
    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        actions: list[object] = [Note("transfer ended", (("outcome", "caller hung up"),))]
        if self.state is TransferState.CONSULTING:
            actions.append(EndConsultation())
        if self.state is TransferState.LEAVING and self.operator_present:
            actions.append(HangUpOperator())  # out of every bridge, hearing why: let them go
        if self.target_channel or self.state is TransferState.RINGING:
            actions.append(HangUpTarget())  # caller gone while the target rings: cancel it
        self.target_channel = None
        self._set_state(TransferState.ENDED)
        self.outcome = "caller-hung-up"
        self.deadline, self.music, self.next_check_in = None, False, None
        return [*actions, Finish("caller-hung-up")]

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        if not self.operator_present:
            return []
        self.operator_present = False
        self.playing.pop(OPERATOR, None)
        if self.state is TransferState.LEAVING:
            return [Note("operator left", (("during", "leaving"),)), *self._left_when_told()]
        if self.state is TransferState.CONSULTING:
            # the operator hung up while consulting: as on any PBX, that completes the transfer
            return [Note("operator left", (("during", "consultation"),)), EndConsultation(False),
                    Note("transfer completed", (("source", "operator hung up"),)),
                    *self._connect(ev.now)]
        note = Note("operator left", (("during", self.state.value),))
        if self.state is TransferState.RETURNING:  # nobody to go back to any more
            return [note, *self._stop(CALLER), *self._finish("operator-gone")]
        return [note]

    # --- helpers --------------------------------------------------------------------------------
    def _play(self, party: str, prompt: str, media: tuple[str, ...] | list[str] = ()) -> Play:
        self.plays += 1
        tag = f"t{self.plays}"
        self.playing[party] = [prompt, tag]
        return Play(prompt, tuple(media) or (prompt_media(prompt),), tag, party)

    def _stop(self, party: str) -> list[object]:
        playing = self.playing.pop(party, None)
        return [StopPlayback(*playing, party)] if playing else []

    def _start_music(self, now: float, after_check_in: bool = False) -> list[object]:
        """Music from `now`; the next check-in `check_in_interval` after the music started,
        or after the check-in that just ended started (start to start)."""
        self.music = True
        interval = self.settings.check_in_interval
        self.next_check_in = (next_check_in(interval, self.check_in_at, now)
                              if after_check_in and self.check_in_at is not None
                              else now + interval)
        return [StartMusic()]

    def _menu_wait(self, timeout: float) -> float:
        return menu_wait(self.menu_repeated, self.settings.menu_repeat_after, timeout)

    def _repeat(self, party: str, prompt: str, menu: str) -> list[object]:
        """No key yet: the menu once more (only the question, under the prompt's name: its
        PromptFinished arms the last wait), a key during it counts as during the first."""
        self.menu_repeated = True
        return [Note("menu repeated", (("party", party), ("prompt", prompt))),
                self._play(party, prompt, (prompt_media(menu),))]

    def _stop_music(self) -> list[object]:
        if not self.music:
            return []
        self.music, self.next_check_in = False, None
        return [StopMusic()]

    def _tell_operator(self, prompt: str) -> list[object]:
        return [self._play(OPERATOR, prompt)] if self.operator_present else []

    def _finish(self, outcome: str, *actions: object, preselect: str | None = None
                ) -> list[object]:
        self._set_state(TransferState.ENDED)
        self.outcome = outcome
        self.deadline = None
        self.music, self.next_check_in = False, None
        if self.playing.get(OPERATOR, [""])[0] == "operator-freed-transfer":
            # ended before the operator heard they are free (a dial that failed at once): no
            # PromptFinished is handled after ENDED, so free them now, as they are being told
            actions = (*actions, HangUpOperator())
        intro: tuple[str, ...] = ()
        if outcome == "unavailable":  # not available; their direct number once more
            intro = (prompt_media("transfer-unavailable"),
                     *self._direct_number("transfer-direct-number-again"))
        elif outcome == "operator-gone":
            intro = (prompt_media("operator-gone"),)
        for_whom = self.target.id if self.target else None
        data = {k: v for k, v in (("intro", intro), ("for_whom", for_whom),
                                  ("preselect", preselect)) if v}
        return [*actions, Note("transfer ended", (("outcome", outcome), ("cause", self.failure))),
                Finish(outcome, data)]

    # --- persistence ----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict) -> "TransferMachine":
        data = dict(data)
        data.pop("way_out_at", None)  # stored by 52c55c1 and before: now worked out
        data["state"] = TransferState(data["state"])
        data["settings"] = TransferSettings(**data["settings"])
        data["target"] = TransferTarget(**data["target"]) if data.get("target") else None
        return cls(**data)

    def to_public_dict(self) -> dict:
        return {"status": self.state.value, "target": self.target.id if self.target else None,
                "mode": self.mode, "reason": self.reason, "started_at": self.started_at,
                "outcome": self.outcome, "failure": self.failure}
