"""HoldMachine: events in (each with `now`), actions out, one deadline.

Fake clock in the aioquic way: `now` starts at 0.0, is moved by hand, and timers are fired by
jumping to `get_timer()`. No event loop, no mocks.

The timeline most tests share (SETTINGS: check-in every 20 s, fallback after 60 s, 8 s to choose,
menus said once more after 4 s without a key):
    0.0  HoldRequested        -> hold-intro (h1)
    4.0  intro ends           -> music, next check-in 24.0 (20 s after the music started)
   24.0  timer                -> checkin-1 (h2)
   28.0  check-in ends        -> music, next check-in 44.0 (20 s after checkin-1 started)
   44.0  timer                -> checkin-2 (h3)
   48.0  check-in ends        -> music, next check-in 64.0 (fallback 60.0 comes first)
   60.0  timer                -> hold-fallback-menu (h4)
   66.0  menu ends            -> no key by 70.0: the menu once more
   70.0  timer                -> hold-fallback-menu again (h5)
   76.0  the repeat ends      -> choice deadline 81.0 (8 s to choose, at most 5 s of silence)
"""

import json
from dataclasses import replace

import pytest
import structlog
from structlog.testing import capture_logs

from ari_app.callback.numbers import NumberRules
from ari_app.hold.machine import (
    CallerHungUp,
    DetachCaller,
    DigitPressed,
    EndCall,
    Finish,
    HoldMachine,
    HoldRequested,
    HoldSettings,
    HoldState,
    InvalidHoldEvent,
    Note,
    NudgeOperator,
    OperatorHungUp,
    Play,
    PromptFinished,
    ReattachCaller,
    RecordingFinished,
    ResumeRequested,
    CallbackSaved,
    SaveCallback,
    SaveVoicemail,
    StartMusic,
    StartVoicemail,
    StopMusic,
    StopPlayback,
    StopVoicemail,
    TimerFired,
)
from ari_app.calls import vocabulary
from ari_app.transfer.machine import DigitPressed as TransferDigitPressed

CALL = "call-1"
NUMBER = "+12125550100"
SETTINGS = HoldSettings(check_in_interval=20.0, fallback_after=60.0, choice_timeout=8.0,
                        fallback_default="callback", voicemail_max=120, max_holds_per_call=1,
                        numbers=NumberRules(("US",), ("+1900", "+1976")))  # callbacks to the US
INTRO_END = 4.0
FIRST_CHECK_IN = 24.0
CHECK_IN_LEN = 4.0
MENU_AT = 60.0
MENU_END = 66.0
REPEAT_AT = 70.0
REPEAT_END = 76.0
CHOICE_DEADLINE = 81.0
MENU_TAG = "h4"
REPEAT_TAG = "h5"


def m(*prompts: str) -> tuple[str, ...]:
    """The media of etiquette prompts."""
    return tuple(f"sound:etiquette/{p}" for p in prompts)


MENU = Play("hold-fallback-menu", m("hold-fallback-menu"), MENU_TAG)
MENU_AGAIN = [Note("menu repeated", (("prompt", "hold-fallback-menu"),)),
              Play("hold-fallback-menu", m("hold-fallback-menu"), REPEAT_TAG)]


def make(number: str = NUMBER, **settings) -> HoldMachine:
    return HoldMachine(CALL, caller_number=number, settings=replace(SETTINGS, **settings))


def request(now: float = 0.0, **kwargs) -> HoldRequested:
    kwargs.setdefault("reason", "lookup")
    kwargs.setdefault("reason_prompt", "hold-reason-lookup")
    return HoldRequested(now, **kwargs)


# --- states, reached the way a real hold reaches them --------------------------------------
def announcing(**kwargs) -> HoldMachine:
    """Hold requested at 0.0: hold-intro (h1) playing."""
    machine = make(**kwargs)
    machine.handle(request(0.0))
    assert machine.state is HoldState.ANNOUNCING
    return machine


def holding(**kwargs) -> HoldMachine:
    """Intro ended at 4.0: music, first check-in due at 24.0."""
    machine = announcing(**kwargs)
    assert machine.handle(PromptFinished(INTRO_END, "hold-intro")) == [StartMusic()]
    assert machine.state is HoldState.HOLDING
    return machine


def checking_in(**kwargs) -> HoldMachine:
    """First check-in (checkin-1, h2) playing since 24.0."""
    machine = holding(**kwargs)
    machine.handle(TimerFired(machine.get_timer()))
    assert machine.state is HoldState.CHECKING_IN
    return machine


def offering(**kwargs) -> HoldMachine:
    """Menu (h4) playing since 60.0, after two check-ins."""
    machine = holding(**kwargs)
    while machine.state is not HoldState.OFFERING:
        now = machine.get_timer()
        machine.handle(TimerFired(now))
        if machine.state is HoldState.CHECKING_IN:
            machine.handle(PromptFinished(now + CHECK_IN_LEN, machine.playing))
    assert machine.playing == "hold-fallback-menu" and machine.playing_tag == MENU_TAG
    return machine


def menu_heard(**kwargs) -> HoldMachine:
    """Menu ended at 66.0: with no key by 70.0 it is said once more."""
    machine = offering(**kwargs)
    assert machine.handle(PromptFinished(MENU_END, "hold-fallback-menu")) == []
    assert machine.get_timer() == REPEAT_AT
    return machine


def menu_heard_again(**kwargs) -> HoldMachine:
    """No key by 70.0: the menu said once more (h5), ended at 76.0: the caller has until 81.0
    to choose."""
    machine = menu_heard(**kwargs)
    assert machine.handle(TimerFired(REPEAT_AT)) == MENU_AGAIN
    assert machine.get_timer() is None  # the last wait counts from the repeat's end
    assert machine.handle(PromptFinished(REPEAT_END, "hold-fallback-menu", REPEAT_TAG)) == []
    assert machine.get_timer() == CHOICE_DEADLINE
    return machine


def callback_number(**kwargs) -> HoldMachine:
    """Chose 3 at 68.0: callback-own-number (h5) ended at 72.0; with no key by 76.0 it is
    said once more."""
    machine = menu_heard(**kwargs)
    machine.handle(DigitPressed(68.0, "3"))
    machine.handle(PromptFinished(72.0, "callback-own-number"))
    assert machine.state is HoldState.CALLBACK_NUMBER
    return machine


def voicemail_intro(**kwargs) -> HoldMachine:
    """Chose 2 at 68.0: voicemail-intro (h5) playing."""
    machine = menu_heard(**kwargs)
    machine.handle(DigitPressed(68.0, "2"))
    assert machine.state is HoldState.VOICEMAIL
    return machine


def recording(**kwargs) -> HoldMachine:
    """Voicemail intro ended at 75.0: recording."""
    machine = voicemail_intro(**kwargs)
    assert machine.handle(PromptFinished(75.0, "voicemail-intro")) == [StartVoicemail(120)]
    return machine


def closing(**kwargs) -> HoldMachine:
    """Recording finished at 90.0: voicemail-saved + goodbye (h6) playing."""
    machine = recording(**kwargs)
    machine.handle(RecordingFinished(90.0, 15.0))
    assert machine.state is HoldState.CLOSING
    return machine


def resuming(**kwargs) -> HoldMachine:
    """Resume requested at 10.0 during music: hold-resume-thanks (h2) playing."""
    machine = holding(**kwargs)
    machine.handle(ResumeRequested(10.0))
    assert machine.state is HoldState.RESUMING
    return machine


def ended(**kwargs) -> HoldMachine:
    machine = holding(**kwargs)
    machine.handle(CallerHungUp(10.0))
    assert machine.state is HoldState.ENDED
    return machine


# --- announcing -----------------------------------------------------------------------------
def test_given_reason_and_expected_minutes_when_hold_requested_then_caller_detached_and_told_why_and_how_long():
    machine = make()

    actions = machine.handle(request(0.0, expected_minutes=3, source="phone"))

    assert actions == [
        Note("hold started", (("reason", "lookup"), ("source", "phone"), ("expected_minutes", 3))),
        DetachCaller(),
        Play("hold-intro", (*m("hold-intro", "hold-reason-lookup", "hold-expected-duration"),
                            "number:3", *m("minutes")), "h1"),
    ]
    assert machine.state is HoldState.ANNOUNCING
    assert machine.get_timer() is None


def test_given_one_expected_minute_when_hold_requested_then_singular_minute():
    machine = make()

    actions = machine.handle(request(0.0, expected_minutes=1))

    assert actions[-1] == Play("hold-intro", (*m("hold-intro", "hold-reason-lookup",
                                                 "hold-expected-duration"),
                                              "number:1", *m("minute")), "h1")


def test_given_reason_without_expected_minutes_when_hold_requested_then_only_intro_and_reason():
    machine = make()

    actions = machine.handle(request(0.0))

    assert actions == [
        Note("hold started", (("reason", "lookup"), ("source", "rest"), ("expected_minutes", None))),
        DetachCaller(),
        Play("hold-intro", m("hold-intro", "hold-reason-lookup"), "h1"),
    ]


def test_given_no_reason_when_hold_requested_then_hold_happens_with_no_reason_prompt_and_breach_noted():
    machine = make()

    actions = machine.handle(HoldRequested(0.0, source="feature-code"))

    assert actions == [
        Note("hold started", (("reason", None), ("source", "feature-code"), ("expected_minutes", None))),
        Note("breach", (("what", "hold without a reason"),)),
        DetachCaller(),
        Play("hold-intro", m("hold-intro", "hold-no-reason"), "h1"),
    ]
    assert machine.state is HoldState.ANNOUNCING


def test_given_hold_limit_reached_when_hold_requested_again_then_breach_noted():
    machine = make()

    actions = machine.handle(request(0.0, holds_before=1))

    assert actions == [
        Note("hold started", (("reason", "lookup"), ("source", "rest"), ("expected_minutes", None))),
        Note("breach", (("what", "caller put on hold again"), ("hold_number", 2))),
        DetachCaller(),
        Play("hold-intro", m("hold-intro", "hold-reason-lookup"), "h1"),
    ]


def test_given_hold_within_limit_when_hold_requested_then_no_breach():
    machine = make(max_holds_per_call=2)

    actions = machine.handle(request(0.0, holds_before=1))

    assert not any(isinstance(a, Note) and a.event == "breach" for a in actions)


def test_given_no_reason_and_limit_reached_when_hold_requested_then_both_breaches_noted():
    machine = make()

    actions = machine.handle(HoldRequested(0.0, holds_before=1))

    assert [a.data[0] for a in actions if isinstance(a, Note) and a.event == "breach"] == [
        ("what", "hold without a reason"), ("what", "caller put on hold again")]


def test_given_intro_playing_when_time_passes_then_no_timer_and_no_music():
    machine = announcing()

    assert machine.get_timer() is None
    assert machine.handle(TimerFired(500.0)) == []
    assert machine.state is HoldState.ANNOUNCING


def test_given_intro_playing_when_intro_finishes_then_music_starts_and_check_in_armed():
    machine = announcing()

    assert machine.handle(PromptFinished(INTRO_END, "hold-intro")) == [StartMusic()]
    assert machine.state is HoldState.HOLDING
    assert machine.get_timer() == INTRO_END + 20.0


def test_given_intro_playing_when_another_prompt_finishes_then_ignored():
    machine = announcing()

    assert machine.handle(PromptFinished(2.0, "checkin-1")) == []
    assert machine.state is HoldState.ANNOUNCING
    assert machine.playing == "hold-intro"


def test_given_hold_started_at_nonzero_time_when_hold_requested_again_then_harmless_no_op():
    machine = make()
    machine.handle(request(3.0))

    assert machine.handle(request(5.0)) == []
    assert machine.state is HoldState.ANNOUNCING
    assert machine.handle(PromptFinished(7.0, "hold-intro")) == [StartMusic()]
    assert machine.get_timer() == 27.0


def test_given_hold_started_at_time_zero_when_hold_requested_again_then_harmless_no_op():
    machine = announcing()

    assert machine.handle(request(1.0)) == []
    assert machine.playing_tag == "h1"


def test_given_hold_started_when_intro_ends_then_transitions_logged_through_choke_point():
    machine = make()

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        machine.handle(request(0.0))
        machine.handle(PromptFinished(INTRO_END, "hold-intro"))
        machine.handle(TimerFired(FIRST_CHECK_IN))
        machine.handle(ResumeRequested(25.0))
        machine.handle(PromptFinished(27.0, "hold-resume-thanks"))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "hold transition"]
    assert transitions == [("announcing", "holding"), ("holding", "checking_in"),
                           ("checking_in", "resuming"), ("resuming", "ended")]


# --- check-ins ------------------------------------------------------------------------------
def test_given_music_for_check_in_interval_when_timer_fires_then_music_paused_check_in_noted_and_operator_nudged():
    machine = holding()
    now = machine.get_timer()
    assert now == FIRST_CHECK_IN

    actions = machine.handle(TimerFired(now))

    assert actions == [
        StopMusic(),
        Play("checkin-1", m("checkin-1"), "h2"),
        Note("check-in", (("prompt", "checkin-1"), ("held_for", 24),
                          ("due_at", FIRST_CHECK_IN))),
        NudgeOperator(24),
    ]
    assert machine.state is HoldState.CHECKING_IN
    assert machine.get_timer() is None


def test_given_music_when_timer_fired_before_deadline_then_nothing_happens():
    machine = holding()

    assert machine.handle(TimerFired(FIRST_CHECK_IN - 0.5)) == []
    assert machine.state is HoldState.HOLDING
    assert machine.get_timer() == FIRST_CHECK_IN


def test_given_check_in_playing_when_it_finishes_then_music_again_and_next_check_in_interval_after_it_started():
    machine = checking_in()

    assert machine.handle(PromptFinished(FIRST_CHECK_IN + 7.5, "checkin-1")) == [StartMusic()]
    assert machine.state is HoldState.HOLDING
    assert machine.get_timer() == FIRST_CHECK_IN + 20.0  # start to start, not from its end


def test_given_check_in_longer_than_the_interval_when_it_finishes_then_next_one_after_2s_of_music():
    machine = checking_in()

    assert machine.handle(PromptFinished(FIRST_CHECK_IN + 21.0, "checkin-1")) == [StartMusic()]
    assert machine.get_timer() == FIRST_CHECK_IN + 21.0 + 2.0  # never before it finished


def test_given_check_in_as_long_as_the_interval_when_it_finishes_then_2s_of_music_before_the_next():
    machine = checking_in()

    machine.handle(PromptFinished(FIRST_CHECK_IN + 19.0, "checkin-1"))

    assert machine.get_timer() == FIRST_CHECK_IN + 21.0  # 20 s start to start would be 1 s


def test_given_prompts_of_different_lengths_when_check_ins_come_then_they_start_every_interval():
    machine = holding(fallback_after=1000.0)
    starts = []

    for length in (6.4, 3.0, 9.5, 4.0):
        now = machine.get_timer()
        machine.handle(TimerFired(now))
        starts.append(now)
        machine.handle(PromptFinished(now + length, machine.playing))

    # the first 20 s after the music started (4.0), then 20 s start to start whatever they last
    assert starts == [24.0, 44.0, 64.0, 84.0]
    assert [b - a for a, b in zip(starts, starts[1:])] == [20.0, 20.0, 20.0]


def test_given_check_in_playing_when_stray_prompt_finished_then_check_in_keeps_playing():
    machine = checking_in()

    assert machine.handle(PromptFinished(25.0, "hold-intro")) == []
    assert machine.state is HoldState.CHECKING_IN
    assert machine.get_timer() is None


def test_given_long_hold_when_check_ins_come_then_prompts_vary_in_turn_and_held_time_grows():
    machine = holding(fallback_after=1000.0)
    prompts, nudges = [], []

    for _ in range(5):
        now = machine.get_timer()
        actions = machine.handle(TimerFired(now))
        play = next(a for a in actions if isinstance(a, Play))
        prompts.append(play.prompt)
        nudges.extend(a.held_for for a in actions if isinstance(a, NudgeOperator))
        assert machine.handle(PromptFinished(now + CHECK_IN_LEN, play.prompt)) == [StartMusic()]

    assert prompts == ["checkin-1", "checkin-2", "checkin-3", "checkin-1", "checkin-2"]
    assert nudges == [24, 44, 64, 84, 104]  # every 20 s, start to start


def test_given_operator_left_when_check_in_due_then_no_nudge():
    # Unreachable through events once the operator left (the caller is offered a way out and
    # cannot keep holding); a snapshot that says so must still never nudge.
    data = holding().to_dict()
    data["operator_present"] = False
    machine = HoldMachine.from_dict(data)

    actions = machine.handle(TimerFired(FIRST_CHECK_IN))

    assert actions == [StopMusic(), Play("checkin-1", m("checkin-1"), "h2"),
                       Note("check-in", (("prompt", "checkin-1"), ("held_for", 24),
                                          ("due_at", FIRST_CHECK_IN)))]


# --- fallback menu --------------------------------------------------------------------------
def test_given_music_when_fallback_after_reached_then_music_stops_and_menu_offered():
    machine = holding()
    machine.handle(TimerFired(24.0))
    machine.handle(PromptFinished(28.0, "checkin-1"))
    machine.handle(TimerFired(44.0))
    machine.handle(PromptFinished(48.0, "checkin-2"))
    assert machine.get_timer() == MENU_AT  # the fallback comes before the 64.0 check-in

    actions = machine.handle(TimerFired(MENU_AT))

    assert actions == [StopMusic(), Note("fallback offered", (("held_for", 60),)), MENU]
    assert machine.state is HoldState.OFFERING
    assert machine.get_timer() is None  # the choice timeout starts when the menu ends


def test_given_menu_playing_when_it_ends_then_the_wait_for_a_key_counted_from_its_end():
    machine = offering()

    assert machine.handle(PromptFinished(MENU_END + 1.5, "hold-fallback-menu")) == []
    assert machine.get_timer() == MENU_END + 1.5 + 4.0  # then the menu once more


def test_given_fallback_due_during_check_in_when_check_in_ends_then_menu_right_after_without_music():
    machine = holding(fallback_after=50.0)
    machine.handle(TimerFired(24.0))
    machine.handle(PromptFinished(28.0, "checkin-1"))
    machine.handle(TimerFired(44.0))  # checkin-2, h3, playing past 50.0
    assert machine.get_timer() is None
    assert machine.handle(TimerFired(50.0)) == []  # never cut the check-in
    assert machine.state is HoldState.CHECKING_IN

    actions = machine.handle(PromptFinished(51.0, "checkin-2"))

    assert actions == [Note("fallback offered", (("held_for", 51),)), MENU]
    assert machine.state is HoldState.OFFERING
    assert machine.get_timer() is None


def test_given_check_in_and_fallback_due_together_when_timer_fires_then_only_menu():
    machine = holding(fallback_after=24.0)
    assert machine.get_timer() == 24.0

    actions = machine.handle(TimerFired(24.0))

    assert actions == [StopMusic(), Note("fallback offered", (("held_for", 24),)),
                       Play("hold-fallback-menu", m("hold-fallback-menu"), "h2")]
    assert machine.check_ins == []


def test_given_timer_fired_late_when_both_check_in_and_fallback_passed_then_fallback_wins():
    machine = holding(fallback_after=30.0)

    actions = machine.handle(TimerFired(40.0))

    assert actions == [StopMusic(), Note("fallback offered", (("held_for", 40),)),
                       Play("hold-fallback-menu", m("hold-fallback-menu"), "h2")]


# --- choice 1: keep holding -------------------------------------------------------------------
def test_given_menu_heard_when_caller_presses_1_then_music_again_and_fallback_rearmed():
    machine = menu_heard()

    actions = machine.handle(DigitPressed(70.0, "1"))

    assert actions == [Note("fallback choice", (("choice", "keep holding"),)), StartMusic()]
    assert machine.state is HoldState.HOLDING
    assert machine.get_timer() == 90.0  # next check-in: 20 s after the music started
    machine.handle(TimerFired(90.0))
    machine.handle(PromptFinished(94.0, machine.playing))
    assert machine.get_timer() == 110.0
    machine.handle(TimerFired(110.0))
    machine.handle(PromptFinished(114.0, machine.playing))
    assert machine.get_timer() == 130.0  # 70.0 + fallback_after, with the 130.0 check-in
    assert machine.handle(TimerFired(130.0)) == [
        StopMusic(), Note("fallback offered", (("held_for", 130),)),
        Play("hold-fallback-menu", m("hold-fallback-menu"), "h7")]


def test_given_menu_playing_when_caller_presses_1_then_menu_stopped_with_its_tag_first():
    machine = offering()

    actions = machine.handle(DigitPressed(62.0, "1"))

    assert actions == [StopPlayback("hold-fallback-menu", MENU_TAG),
                       Note("fallback choice", (("choice", "keep holding"),)), StartMusic()]
    assert machine.get_timer() == 82.0


def test_given_menu_stopped_when_its_late_finish_arrives_then_ignored():
    machine = offering()
    machine.handle(DigitPressed(62.0, "1"))

    assert machine.handle(PromptFinished(62.1, "hold-fallback-menu")) == []
    assert machine.state is HoldState.HOLDING
    assert machine.get_timer() == 82.0


# --- choice 2: voicemail ----------------------------------------------------------------------
def test_given_menu_heard_when_caller_chooses_voicemail_then_full_voicemail_flow_to_finish():
    machine = menu_heard()

    assert machine.handle(DigitPressed(68.0, "2")) == [
        Note("fallback choice", (("choice", "voicemail"), ("chosen", "caller"))),
        Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h5"),
    ]
    assert machine.state is HoldState.VOICEMAIL
    assert machine.get_timer() is None

    assert machine.handle(DigitPressed(70.0, "#")) == []  # not recording yet
    assert machine.handle(PromptFinished(75.0, "voicemail-intro")) == [StartVoicemail(120)]
    assert machine.get_timer() is None

    assert machine.handle(DigitPressed(80.0, "5")) == []
    assert machine.handle(DigitPressed(85.0, "#")) == [StopVoicemail()]

    assert machine.handle(RecordingFinished(86.0, 10.5)) == [
        Note("hold ended", (("outcome", "voicemail"), ("held_for", 86))),
        SaveVoicemail(10.5),
        Play("voicemail-saved", m("voicemail-saved", "goodbye"), "h6"),
    ]
    assert machine.state is HoldState.CLOSING
    assert machine.get_timer() is None

    assert machine.handle(PromptFinished(92.0, "voicemail-saved")) == [
        EndCall("voicemail"), Finish("voicemail")]
    assert machine.state is HoldState.ENDED
    assert machine.get_timer() is None
    assert machine.outcome == "voicemail"


def test_given_menu_playing_when_caller_chooses_voicemail_then_menu_stopped_first():
    machine = offering()

    actions = machine.handle(DigitPressed(61.0, "2"))

    assert actions[0] == StopPlayback("hold-fallback-menu", MENU_TAG)
    assert actions[-1] == Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h5")


def test_given_voicemail_when_time_passes_then_no_timer_fires():
    machine = recording()

    assert machine.get_timer() is None
    assert machine.handle(TimerFired(CHOICE_DEADLINE + 100.0)) == []
    assert machine.state is HoldState.VOICEMAIL


def test_given_not_in_voicemail_when_recording_finished_then_ignored():
    machine = holding()

    assert machine.handle(RecordingFinished(10.0, 3.0)) == []
    assert machine.state is HoldState.HOLDING


def test_given_recording_failed_when_recording_finished_then_caller_not_told_message_saved():
    machine = recording()

    actions = machine.handle(RecordingFinished(90.0, 0.0, saved=False))

    assert not any(isinstance(a, SaveVoicemail) for a in actions)
    assert not any(isinstance(a, Play) and m("voicemail-saved")[0] in a.media for a in actions)


# --- choice 3: callback -----------------------------------------------------------------------
def test_given_menu_heard_when_caller_chooses_callback_to_own_number_then_saved_confirmed_and_ended():
    machine = menu_heard()

    assert machine.handle(DigitPressed(68.0, "3")) == [
        Note("fallback choice", (("choice", "callback"),)),
        Play("callback-own-number", m("callback-own-number"), "h5"),
    ]
    assert machine.state is HoldState.CALLBACK_NUMBER
    assert machine.get_timer() is None
    assert machine.handle(PromptFinished(72.0, "callback-own-number")) == []
    assert machine.get_timer() == 76.0  # a new question: said once more after 4 s

    assert machine.handle(DigitPressed(73.0, "1")) == []
    assert machine.get_timer() == 75.0  # a 1 that nothing follows is their own number
    assert machine.handle(TimerFired(75.0)) == [
        SaveCallback(NUMBER, True, "caller"),
        Note("hold ended", (("outcome", "callback"), ("held_for", 75), ("chosen", "caller"))),
    ]
    assert machine.handle(CallbackSaved(99.0)) == [
        Note("callback requested", ()), Play("callback-confirmed", m("callback-confirmed", "goodbye"), "h6")]
    assert machine.state is HoldState.CLOSING
    assert machine.get_timer() is None

    assert machine.handle(PromptFinished(78.0, "callback-confirmed")) == [
        EndCall("callback"), Finish("callback")]
    assert machine.state is HoldState.ENDED
    assert machine.get_timer() is None


def test_given_callback_prompt_playing_when_caller_presses_1_then_prompt_stopped_and_own_number_saved():
    machine = menu_heard()
    machine.handle(DigitPressed(68.0, "3"))

    assert machine.handle(DigitPressed(69.0, "1")) == [StopPlayback("callback-own-number", "h5")]
    actions = machine.handle(DigitPressed(69.5, "#"))  # 1# says so at once

    assert actions[0] == SaveCallback(NUMBER, True, "caller")


def test_given_callback_chosen_when_caller_types_1_and_a_number_then_the_number_typed_is_saved():
    """+1 212 555 0142 keyed with its country code: it starts with 1, and is not the caller's
    own number for it."""
    machine = callback_number()

    for i, digit in enumerate("12125550142"):
        assert machine.handle(DigitPressed(73.0 + i * 0.5, digit)) == []
    actions = machine.handle(DigitPressed(79.0, "#"))

    assert actions[0] == SaveCallback("+12125550142", False, "caller")


def test_given_a_1_then_a_pause_when_more_digits_would_come_later_then_own_number_already_taken():
    machine = callback_number()
    machine.handle(DigitPressed(73.0, "1"))

    assert machine.handle(TimerFired(74.9)) == []  # not yet: a digit may still follow
    assert machine.handle(TimerFired(75.0))[0] == SaveCallback(NUMBER, True, "caller")


def test_given_callback_chosen_when_caller_types_number_then_hash_then_typed_number_saved():
    machine = callback_number()

    for i, digit in enumerate("2125550142"):
        assert machine.handle(DigitPressed(73.0 + i, digit)) == []
        assert machine.get_timer() == 73.0 + i + 4.0  # each key re-arms the wait
    actions = machine.handle(DigitPressed(84.0, "#"))

    assert actions == [
        SaveCallback("+12125550142", False, "caller"),  # checked, as E.164
        Note("hold ended", (("outcome", "callback"), ("held_for", 84), ("chosen", "caller"))),
    ]
    assert machine.handle(CallbackSaved(99.0)) == [
        Note("callback requested", ()), Play("callback-confirmed", m("callback-confirmed", "goodbye"), "h6")]


def test_given_callback_prompt_playing_when_first_digit_typed_then_prompt_stopped_and_digit_kept():
    machine = menu_heard()
    machine.handle(DigitPressed(68.0, "3"))

    assert machine.handle(DigitPressed(69.0, "2")) == [StopPlayback("callback-own-number", "h5")]
    assert machine.handle(DigitPressed(70.0, "1")) == []  # not the first key: a digit
    for digit in "25550142":
        machine.handle(DigitPressed(70.5, digit))
    assert machine.handle(DigitPressed(71.0, "#"))[0] == SaveCallback("+12125550142", False,
                                                                      "caller")


def test_given_callback_chosen_when_more_than_15_digits_typed_then_only_first_15_kept():
    machine = callback_number(numbers=NumberRules(("US", "GB")))

    for i, digit in enumerate("01144207946095899"):  # 17 digits: London from the US, and 99
        machine.handle(DigitPressed(73.0 + i * 0.5, digit))
    actions = machine.handle(DigitPressed(82.0, "#"))

    assert actions[0] == SaveCallback("+442079460958", False, "caller")


def test_given_callback_chosen_when_hash_or_star_without_digits_then_ignored():
    machine = callback_number()

    assert machine.handle(DigitPressed(73.0, "#")) == []
    assert machine.handle(DigitPressed(74.0, "*")) == []
    assert machine.state is HoldState.CALLBACK_NUMBER
    assert machine.digits == ""


def test_given_caller_without_number_when_1_pressed_in_callback_then_it_is_a_typed_digit():
    machine = callback_number(number="")

    assert machine.handle(DigitPressed(73.0, "1")) == [StopPlayback("callback-enter-number", "h5")]
    for digit in "2125550142":
        machine.handle(DigitPressed(73.5, digit))
    assert machine.handle(DigitPressed(74.0, "#"))[0] == SaveCallback("+12125550142", False,
                                                                      "caller")


def test_given_callback_chosen_when_no_key_within_4s_then_the_question_said_once_more():
    machine = callback_number()
    assert machine.get_timer() == 76.0

    assert machine.handle(TimerFired(76.0)) == [
        Note("menu repeated", (("prompt", "callback-own-number"),)),
        Play("callback-own-number", m("callback-own-number"), "h6")]
    assert machine.state is HoldState.CALLBACK_NUMBER
    assert machine.get_timer() is None
    assert machine.handle(PromptFinished(80.0, "callback-own-number", "h6")) == []
    assert machine.get_timer() == 85.0  # choice_timeout 8 s: at most 5 s of silence


def test_given_number_half_typed_when_caller_stops_4s_then_question_again_and_number_typed_again():
    machine = callback_number()
    machine.handle(DigitPressed(73.0, "2"))
    machine.handle(DigitPressed(74.0, "1"))

    assert machine.handle(TimerFired(78.0))[-1] == Play("callback-own-number",
                                                       m("callback-own-number"), "h6")
    assert machine.digits == ""
    for i, digit in enumerate("2125550142"):
        machine.handle(DigitPressed(79.0 + i * 0.5, digit))  # during the repeat: it counts
    assert machine.handle(DigitPressed(84.0, "#"))[0] == SaveCallback("+12125550142", False,
                                                                     "caller")


def test_given_callback_question_said_again_when_no_number_in_time_then_policy_default_callback_to_own_number():
    machine = callback_number()
    machine.handle(TimerFired(76.0))
    machine.handle(PromptFinished(80.0, "callback-own-number", "h6"))
    machine.handle(DigitPressed(81.0, "0"))
    assert machine.get_timer() == 86.0  # after the repeat, each key re-arms at most 5 s

    actions = machine.handle(TimerFired(86.0))

    assert actions == [
        SaveCallback(NUMBER, True, "default"),
        Note("hold ended", (("outcome", "callback"), ("held_for", 86), ("chosen", "default"))),
    ]
    assert machine.handle(CallbackSaved(99.0)) == [
        Note("callback requested", ()), Play("callback-confirmed", m("callback-confirmed", "goodbye"), "h7")]
    assert machine.state is HoldState.CLOSING


# --- invalid and missing choices ------------------------------------------------------------
def test_given_menu_heard_when_other_digit_pressed_then_invalid_choice_and_menu_again():
    machine = menu_heard()

    assert machine.handle(DigitPressed(68.0, "7")) == [
        Play("invalid-choice", m("invalid-choice", "hold-fallback-menu"), "h5")]
    assert machine.state is HoldState.OFFERING
    assert machine.get_timer() is None
    assert machine.handle(PromptFinished(75.0, "invalid-choice")) == []
    assert machine.get_timer() == 79.0  # a new question: said once more after 4 s


def test_given_menu_said_again_when_other_digit_pressed_then_the_new_question_may_be_said_again_too():
    machine = menu_heard_again()
    machine.handle(DigitPressed(78.0, "7"))
    machine.handle(PromptFinished(85.0, "invalid-choice"))

    assert machine.get_timer() == 89.0
    assert machine.handle(TimerFired(89.0)) == [
        Note("menu repeated", (("prompt", "hold-fallback-menu"),)),
        Play("hold-fallback-menu", m("hold-fallback-menu"), "h7")]


def test_given_menu_playing_when_hash_pressed_then_menu_stopped_and_invalid_choice():
    machine = offering()

    assert machine.handle(DigitPressed(61.0, "#")) == [
        StopPlayback("hold-fallback-menu", MENU_TAG),
        Play("invalid-choice", m("invalid-choice", "hold-fallback-menu"), "h5")]


def test_given_invalid_choice_playing_when_another_invalid_digit_then_old_one_stopped_with_its_tag():
    machine = menu_heard()
    machine.handle(DigitPressed(68.0, "7"))

    assert machine.handle(DigitPressed(69.0, "8")) == [
        StopPlayback("invalid-choice", "h5"),
        Play("invalid-choice", m("invalid-choice", "hold-fallback-menu"), "h6")]


def test_given_invalid_choice_replayed_when_stopped_one_reports_finished_then_timeout_not_started():
    machine = menu_heard()
    machine.handle(DigitPressed(68.0, "7"))
    machine.handle(DigitPressed(69.0, "8"))  # stops h5, plays h6

    machine.handle(PromptFinished(69.1, "invalid-choice", "h5"))  # the stopped one

    assert machine.get_timer() is None
    machine.handle(PromptFinished(76.0, "invalid-choice", "h6"))
    assert machine.get_timer() == 80.0


def test_given_menu_heard_when_no_key_within_4s_then_the_menu_said_once_more():
    machine = menu_heard()
    assert machine.handle(TimerFired(REPEAT_AT - 0.5)) == []

    actions = machine.handle(TimerFired(REPEAT_AT))

    assert actions == MENU_AGAIN  # no default yet: never more than 5 s of silence
    assert machine.state is HoldState.OFFERING
    assert machine.playing == "hold-fallback-menu" and machine.playing_tag == REPEAT_TAG
    assert machine.get_timer() is None


def test_given_menu_repeat_after_setting_when_menu_ends_then_repeat_due_that_long_after():
    machine = offering(menu_repeat_after=2.0)

    machine.handle(PromptFinished(MENU_END, "hold-fallback-menu"))

    assert machine.get_timer() == MENU_END + 2.0


def test_given_short_choice_timeout_when_menu_said_again_then_that_timeout_from_its_end():
    machine = menu_heard(choice_timeout=3.0)
    machine.handle(TimerFired(REPEAT_AT))

    machine.handle(PromptFinished(REPEAT_END, "hold-fallback-menu", REPEAT_TAG))

    assert machine.get_timer() == REPEAT_END + 3.0


@pytest.mark.parametrize("digit, state", [("1", HoldState.HOLDING), ("2", HoldState.VOICEMAIL),
                                          ("3", HoldState.CALLBACK_NUMBER)])
def test_given_menu_said_again_when_key_pressed_during_it_then_stopped_and_acted_on(digit, state):
    machine = menu_heard()
    machine.handle(TimerFired(REPEAT_AT))

    actions = machine.handle(DigitPressed(72.0, digit))

    assert actions[0] == StopPlayback("hold-fallback-menu", REPEAT_TAG)
    assert machine.state is state
    assert machine.handle(PromptFinished(72.1, "hold-fallback-menu", REPEAT_TAG)) == []
    assert machine.state is state


def test_given_menu_said_again_when_no_choice_then_default_callback_to_callers_number():
    machine = menu_heard_again()

    actions = machine.handle(TimerFired(CHOICE_DEADLINE))

    assert actions == [
        SaveCallback(NUMBER, True, "default"),
        Note("hold ended", (("outcome", "callback"), ("held_for", 81), ("chosen", "default"))),
    ]
    assert machine.handle(CallbackSaved(99.0)) == [
        Note("callback requested", ()), Play("callback-confirmed", m("callback-confirmed", "goodbye"), "h6")]
    assert machine.state is HoldState.CLOSING
    assert machine.get_timer() is None


def test_given_menu_said_again_when_timer_fired_early_then_nothing_happens():
    machine = menu_heard_again()

    assert machine.handle(TimerFired(CHOICE_DEADLINE - 1.0)) == []
    assert machine.state is HoldState.OFFERING


def test_given_caller_without_number_when_no_choice_then_voicemail():
    machine = menu_heard_again(number="")

    actions = machine.handle(TimerFired(CHOICE_DEADLINE))

    assert actions == [Note("fallback choice", (("choice", "voicemail"), ("chosen", "default"))),
                       Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h6")]
    assert machine.state is HoldState.VOICEMAIL
    assert machine.get_timer() is None


def test_given_voicemail_default_when_no_choice_then_voicemail_even_with_a_number():
    machine = menu_heard_again(fallback_default="voicemail")

    actions = machine.handle(TimerFired(CHOICE_DEADLINE))

    assert actions == [Note("fallback choice", (("choice", "voicemail"), ("chosen", "default"))),
                       Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h6")]
    assert machine.handle(PromptFinished(88.0, "voicemail-intro")) == [StartVoicemail(120)]


# --- resume -----------------------------------------------------------------------------------
def test_given_music_when_resume_requested_then_music_stops_thanks_then_reattached_and_no_timer():
    machine = holding()

    assert machine.handle(ResumeRequested(10.0)) == [
        StopMusic(), Play("hold-resume-thanks", m("hold-resume-thanks"), "h2")]
    assert machine.state is HoldState.RESUMING
    assert machine.get_timer() is None
    assert machine.handle(TimerFired(FIRST_CHECK_IN)) == []
    assert machine.handle(TimerFired(MENU_AT)) == []

    assert machine.handle(PromptFinished(12.0, "hold-resume-thanks")) == [
        ReattachCaller(), Note("hold ended", (("outcome", "resumed"), ("held_for", 12))),
        Finish("resumed")]
    assert machine.state is HoldState.ENDED
    assert machine.get_timer() is None
    assert machine.outcome == "resumed"


def test_given_intro_playing_when_resume_requested_then_intro_stopped_with_its_tag():
    machine = announcing()

    assert machine.handle(ResumeRequested(2.0, source="phone")) == [
        StopPlayback("hold-intro", "h1"), Play("hold-resume-thanks", m("hold-resume-thanks"), "h2")]
    assert machine.get_timer() is None


def test_given_check_in_playing_when_resume_requested_then_check_in_stopped_and_no_music_to_stop():
    machine = checking_in()

    assert machine.handle(ResumeRequested(25.0)) == [
        StopPlayback("checkin-1", "h2"), Play("hold-resume-thanks", m("hold-resume-thanks"), "h3")]
    assert machine.get_timer() is None


def test_given_menu_playing_when_resume_requested_then_menu_stopped():
    machine = offering()

    assert machine.handle(ResumeRequested(61.0)) == [
        StopPlayback("hold-fallback-menu", MENU_TAG),
        Play("hold-resume-thanks", m("hold-resume-thanks"), "h5")]


def test_given_menu_heard_when_resume_requested_then_choice_timeout_gone():
    machine = menu_heard()

    assert machine.handle(ResumeRequested(70.0)) == [
        Play("hold-resume-thanks", m("hold-resume-thanks"), "h5")]
    assert machine.get_timer() is None
    assert machine.handle(TimerFired(CHOICE_DEADLINE)) == []
    assert machine.handle(DigitPressed(71.0, "2")) == []
    assert machine.state is HoldState.RESUMING


def test_given_callback_number_entry_when_resume_requested_then_resumed():
    machine = callback_number()
    machine.handle(DigitPressed(73.0, "0"))

    assert machine.handle(ResumeRequested(74.0)) == [
        Play("hold-resume-thanks", m("hold-resume-thanks"), "h6")]
    assert machine.get_timer() is None
    assert machine.handle(PromptFinished(76.0, "hold-resume-thanks"))[-1] == Finish("resumed")


@pytest.mark.parametrize("reach", [voicemail_intro, recording, closing, resuming],
                         ids=["voicemail-intro", "recording", "closing", "resuming"])
def test_given_voicemail_or_closing_or_resuming_when_resume_requested_then_ignored(reach):
    machine = reach()
    before = machine.to_dict()

    assert machine.handle(ResumeRequested(95.0)) == []
    assert machine.to_dict() == before


def test_given_operator_left_when_resume_requested_then_ignored():
    machine = holding()
    machine.handle(OperatorHungUp(10.0))
    before = machine.to_dict()

    assert machine.handle(ResumeRequested(11.0)) == []
    assert machine.to_dict() == before


# --- the operator leaves ----------------------------------------------------------------------
def test_given_music_when_operator_hangs_up_then_caller_offered_a_way_out_at_once():
    machine = holding()

    actions = machine.handle(OperatorHungUp(10.0))

    assert actions == [Note("operator left", ()), StopMusic(),
                       Play("operator-gone", m("operator-gone", "operator-gone-menu"), "h2")]
    assert machine.state is HoldState.OFFERING
    assert machine.get_timer() is None
    assert machine.handle(TimerFired(FIRST_CHECK_IN)) == []  # the check-in is gone
    assert machine.handle(PromptFinished(16.0, "operator-gone")) == []
    assert machine.get_timer() == 20.0  # no key within 4 s: the way out said once more


def test_given_intro_playing_when_operator_hangs_up_then_intro_stopped_and_way_out_offered():
    machine = announcing()

    assert machine.handle(OperatorHungUp(1.0)) == [
        Note("operator left", ()), StopPlayback("hold-intro", "h1"),
        Play("operator-gone", m("operator-gone", "operator-gone-menu"), "h2")]
    assert machine.state is HoldState.OFFERING


def test_given_check_in_playing_when_operator_hangs_up_then_check_in_stopped_and_way_out_offered():
    machine = checking_in()

    assert machine.handle(OperatorHungUp(25.0)) == [
        Note("operator left", ()), StopPlayback("checkin-1", "h2"),
        Play("operator-gone", m("operator-gone", "operator-gone-menu"), "h3")]


def test_given_menu_playing_when_operator_hangs_up_then_menu_replaced_by_operator_gone_menu():
    machine = offering()

    assert machine.handle(OperatorHungUp(61.0)) == [
        Note("operator left", ()), StopPlayback("hold-fallback-menu", MENU_TAG),
        Play("operator-gone", m("operator-gone", "operator-gone-menu"), "h5")]
    assert machine.get_timer() is None


def test_given_menu_heard_when_operator_hangs_up_then_timeout_waits_for_new_menu():
    machine = menu_heard()

    machine.handle(OperatorHungUp(69.0))

    assert machine.get_timer() is None
    assert machine.handle(TimerFired(CHOICE_DEADLINE)) == []
    assert machine.handle(PromptFinished(76.0, "operator-gone")) == []
    assert machine.get_timer() == 80.0  # a new question: said once more after 4 s


def test_given_resume_thanks_playing_when_operator_hangs_up_then_way_out_offered():
    machine = resuming()

    assert machine.handle(OperatorHungUp(11.0)) == [
        Note("operator left", ()), StopPlayback("hold-resume-thanks", "h2"),
        Play("operator-gone", m("operator-gone", "operator-gone-menu"), "h3")]
    assert machine.state is HoldState.OFFERING


def test_given_operator_gone_when_caller_presses_1_then_invalid_and_operator_gone_menu_again():
    machine = holding()
    machine.handle(OperatorHungUp(10.0))
    machine.handle(PromptFinished(16.0, "operator-gone"))

    assert machine.handle(DigitPressed(17.0, "1")) == [
        Play("invalid-choice", m("invalid-choice", "operator-gone-menu"), "h3")]
    assert machine.state is HoldState.OFFERING
    assert machine.get_timer() is None


def test_given_operator_gone_when_caller_chooses_voicemail_then_voicemail_flow():
    machine = holding()
    machine.handle(OperatorHungUp(10.0))

    assert machine.handle(DigitPressed(12.0, "2")) == [
        StopPlayback("operator-gone", "h2"),
        Note("fallback choice", (("choice", "voicemail"), ("chosen", "caller"))),
        Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h3")]


def test_given_operator_gone_when_no_key_then_only_the_way_out_said_once_more_then_policy_default():
    machine = holding()
    machine.handle(OperatorHungUp(10.0))
    machine.handle(PromptFinished(16.0, "operator-gone"))

    assert machine.handle(TimerFired(20.0)) == [
        Note("menu repeated", (("prompt", "hold-fallback-menu"),)),
        Play("hold-fallback-menu", m("operator-gone-menu"), "h3")]
    machine.handle(PromptFinished(23.0, "hold-fallback-menu", "h3"))
    assert machine.get_timer() == 28.0
    assert machine.handle(TimerFired(28.0))[0] == SaveCallback(NUMBER, True, "default")


@pytest.mark.parametrize("reach, state", [
    (voicemail_intro, HoldState.VOICEMAIL), (recording, HoldState.VOICEMAIL),
    (closing, HoldState.CLOSING), (callback_number, HoldState.CALLBACK_NUMBER)],
    ids=["voicemail-intro", "recording", "closing", "callback-number"])
def test_given_caller_already_on_the_way_out_when_operator_hangs_up_then_only_noted(reach, state):
    machine = reach()
    timer = machine.get_timer()

    assert machine.handle(OperatorHungUp(95.0)) == [Note("operator left", ())]
    assert machine.state is state
    assert machine.get_timer() == timer
    assert machine.handle(OperatorHungUp(96.0)) == []  # a repeat is harmless


def test_given_operator_gone_when_operator_hangs_up_again_then_no_op():
    machine = holding()
    machine.handle(OperatorHungUp(10.0))

    assert machine.handle(OperatorHungUp(11.0)) == []
    assert machine.playing_tag == "h2"


# --- the caller hangs up ----------------------------------------------------------------------
EVERY_STATE = [announcing, holding, checking_in, offering, menu_heard, menu_heard_again,
               callback_number,
               voicemail_intro, recording, closing, resuming]


@pytest.mark.parametrize("reach", EVERY_STATE, ids=lambda f: f.__name__)
def test_given_any_state_when_caller_hangs_up_then_finish_and_nothing_after(reach):
    machine = reach()
    recording_since = machine.recording_since

    # a message being recorded is kept: callers often hang up instead of pressing #
    kept = ([SaveVoicemail(round(100.0 - recording_since, 1))]
            if reach is recording else [])
    assert machine.handle(CallerHungUp(100.0)) == [
        *kept, Note("hold ended", (("outcome", "caller hung up"), ("held_for", 100))),
        Finish("caller-hung-up")]
    assert machine.state is HoldState.ENDED
    assert machine.get_timer() is None
    for event in (TimerFired(200.0), PromptFinished(101.0, machine.playing or "hold-intro"),
                  DigitPressed(102.0, "2"), DigitPressed(102.0, "#"), ResumeRequested(103.0),
                  OperatorHungUp(104.0), RecordingFinished(105.0, 5.0), CallerHungUp(106.0),
                  request(107.0)):
        assert machine.handle(event) == []
    assert machine.state is HoldState.ENDED


# --- timers per state -------------------------------------------------------------------------
@pytest.mark.parametrize("reach, timer", [
    (announcing, None), (holding, FIRST_CHECK_IN), (checking_in, None), (offering, None),
    (menu_heard, REPEAT_AT), (menu_heard_again, CHOICE_DEADLINE), (callback_number, 76.0),
    (voicemail_intro, None),
    (recording, None), (closing, None), (resuming, None), (ended, None)],
    ids=lambda v: getattr(v, "__name__", str(v)))
def test_given_each_state_when_asked_for_timer_then_only_music_and_choices_have_one(reach, timer):
    assert reach().get_timer() == timer


# --- tags -------------------------------------------------------------------------------------
def test_given_a_long_hold_when_prompts_play_and_stop_then_tags_unique_and_stops_name_current_prompt():
    machine = make()
    script = [request(0.0), ResumeRequested(1.0), OperatorHungUp(1.5), DigitPressed(2.0, "9"),
              DigitPressed(2.5, "9"), PromptFinished(5.0, "invalid-choice"), DigitPressed(6.0, "3"),
              *(DigitPressed(6.5, d) for d in "2125550142"), DigitPressed(7.0, "#"),
              CallbackSaved(7.1), PromptFinished(9.0, "callback-confirmed")]
    plays, current = [], None

    for event in script:
        for action in machine.handle(event):
            if isinstance(action, StopPlayback):
                assert (action.prompt, action.tag) == current
                current = None
            if isinstance(action, Play):
                plays.append(action.tag)
                current = (action.prompt, action.tag)
        if isinstance(event, PromptFinished) and current and event.prompt == current[0]:
            current = None

    assert plays == ["h1", "h2", "h3", "h4", "h5", "h6", "h7"]
    assert machine.outcome == "callback"
    assert machine.state is HoldState.ENDED


def test_given_restored_hold_when_next_prompt_plays_then_tag_continues_after_the_stored_ones():
    machine = HoldMachine.from_dict(json.loads(json.dumps(checking_in().to_dict())))

    assert machine.handle(ResumeRequested(25.0)) == [
        StopPlayback("checkin-1", "h2"), Play("hold-resume-thanks", m("hold-resume-thanks"), "h3")]


# --- persistence ------------------------------------------------------------------------------
def drive(machine: HoldMachine, now: float, digits: str) -> list[tuple]:
    """Play the rest of the hold: prompts end 3 s after they start, digits 1 s apart, messages
    last 10 s, timers fire on time. Returns what happened at each step."""
    keys, trace = list(digits), []
    for _ in range(100):
        if machine.state is HoldState.ENDED:
            return trace
        if machine.playing:
            now += 3.0
            event = PromptFinished(now, machine.playing)
        elif keys and machine.state in (HoldState.OFFERING, HoldState.CALLBACK_NUMBER,
                                        HoldState.VOICEMAIL):
            now += 1.0
            event = DigitPressed(now, keys.pop(0))
        elif machine.state is HoldState.VOICEMAIL:
            now += 10.0
            event = RecordingFinished(now, 10.0)
        elif machine.state is HoldState.CLOSING and machine.outcome == "callback":
            event = CallbackSaved(now)  # the request is saved
        else:
            now = max(now, machine.get_timer())
            event = TimerFired(now)
        trace.append((event, machine.handle(event), machine.get_timer(), machine.state))
    raise AssertionError("the hold never ended")


@pytest.mark.parametrize("reach, now, digits", [
    (announcing, 0.0, "1"), (holding, INTRO_END, "1"), (checking_in, FIRST_CHECK_IN, "2#"),
    (offering, MENU_AT, "3"), (menu_heard, MENU_END, "31"), (menu_heard_again, REPEAT_END, ""),
    (callback_number, 72.0, "0301#"),
    (voicemail_intro, 68.0, "#"), (recording, 75.0, "#"), (closing, 90.0, ""),
    (resuming, 10.0, "")], ids=lambda v: getattr(v, "__name__", None))
def test_given_hold_stored_mid_way_when_restored_then_it_continues_identically(reach, now, digits):
    original = reach()
    restored = HoldMachine.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original

    expected = drive(original, now, digits)
    actual = drive(restored, now, digits)

    assert actual == expected
    assert isinstance(expected[-1][1][-1], Finish)


# --- unknown events ---------------------------------------------------------------------------
@pytest.mark.parametrize("event", [object(), "TimerFired", {"now": 1.0}, Finish("resumed")],
                         ids=["object", "str", "dict", "an-output"])
def test_given_hold_when_unknown_event_then_invalid_hold_event(event):
    machine = holding()

    with pytest.raises(InvalidHoldEvent):
        machine.handle(event)


def test_given_hold_ended_when_unknown_event_then_invalid_hold_event():
    machine = ended()

    with pytest.raises(InvalidHoldEvent):
        machine.handle(object())


def test_given_hold_when_inbound_machine_event_with_same_name_then_invalid_hold_event():
    machine = holding()

    with pytest.raises(InvalidHoldEvent):
        machine.handle(TransferDigitPressed(FIRST_CHECK_IN, vocabulary.CALLER, "1"))


def test_given_hold_when_shared_words_used_then_they_are_the_call_core_s():
    """The core feeds any rule one TimerFired, one CallerHungUp: the hold's names are those."""
    shared = (CallerHungUp, DetachCaller, Finish, Note, OperatorHungUp, Play, PromptFinished,
              ReattachCaller, RecordingFinished, StartMusic, StopMusic, StopPlayback, TimerFired)

    assert all(getattr(vocabulary, word.__name__) is word for word in shared)
    assert holding().handle(vocabulary.TimerFired(FIRST_CHECK_IN))[0] == StopMusic()


def test_given_callback_saved_when_window_said_then_confirmation_says_when_before_goodbye():
    machine = menu_heard_again()
    machine.handle(TimerFired(CHOICE_DEADLINE))

    said = ("sound:etiquette/callback-window-prefix", "number:15", "sound:minutes")
    actions = machine.handle(CallbackSaved(82.0, said, (("request", "r1"),)))

    assert actions == [
        Note("callback requested", (("request", "r1"),)),
        Play("callback-confirmed", (*m("callback-confirmed"), *said, *m("goodbye")), "h6")]


def test_given_no_callback_pending_when_callback_saved_then_nothing_is_said():
    machine = menu_heard()

    assert machine.handle(CallbackSaved(75.0, (), ())) == []
