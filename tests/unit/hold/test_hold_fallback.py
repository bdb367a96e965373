"""HoldMachine's FallbackRequested: the way out (voicemail or callback) without a hold, as after
a transfer that did not go through.

Fake clock in the aioquic way: `now` starts at 0.0, is moved by hand, and timers are fired by
jumping to `get_timer()`. No event loop, no mocks.

The timeline these tests share (SETTINGS: 8 s to choose, menus said once more after 4 s):
    0.0  FallbackRequested    -> intro, then the menu (h1)
    6.0  menu ends            -> no key by 10.0: the menu once more
   10.0  timer                -> the menu again, without the intro (h2)
   13.0  the repeat ends      -> choice deadline 18.0 (8 s to choose, at most 5 s of silence)
"""

import json
from dataclasses import replace

import pytest

from ari_app.callback.numbers import NumberRules
from ari_app.hold.machine import (
    CallerHungUp,
    DigitPressed,
    EndCall,
    FallbackRequested,
    Finish,
    HoldMachine,
    HoldRequested,
    HoldSettings,
    HoldState,
    Note,
    OperatorHungUp,
    Play,
    PromptFinished,
    RecordingFinished,
    ResumeRequested,
    CallbackSaved,
    SaveCallback,
    SaveVoicemail,
    StartMusic,
    StartVoicemail,
    StopPlayback,
    StopVoicemail,
    TimerFired,
)

CALL = "call-1"
NUMBER = "+12125550100"
SETTINGS = HoldSettings(check_in_interval=20.0, fallback_after=60.0, choice_timeout=8.0,
                        fallback_default="callback", voicemail_max=120, max_holds_per_call=1,
                        numbers=NumberRules(("US",), ("+1900", "+1976")))  # callbacks to the US
INTRO = ("sound:etiquette/transfer-unavailable", "sound:etiquette/directory-billing",
         "sound:etiquette/direct-number-is", "digits:12125550199")
MENU_END = 6.0
REPEAT_AT = 10.0
REPEAT_END = 13.0
CHOICE_DEADLINE = 18.0


def m(*prompts: str) -> tuple[str, ...]:
    """The media of etiquette prompts."""
    return tuple(f"sound:etiquette/{p}" for p in prompts)


def make(number: str = NUMBER, **settings) -> HoldMachine:
    return HoldMachine(CALL, caller_number=number, settings=replace(SETTINGS, **settings))


def fallback(now: float = 0.0, **kwargs) -> FallbackRequested:
    kwargs.setdefault("intro", INTRO)
    kwargs.setdefault("for_whom", "billing")
    kwargs.setdefault("why", "transfer unavailable")
    return FallbackRequested(now, **kwargs)


def offered(number: str = NUMBER, **kwargs) -> HoldMachine:
    """Fallback requested at 0.0, the operator gone: intro and menu (h1) playing."""
    machine = make(number)
    machine.handle(fallback(0.0, **kwargs))
    assert machine.state is HoldState.OFFERING
    return machine


def menu_heard(number: str = NUMBER, **kwargs) -> HoldMachine:
    """The menu ended at 6.0: with no key by 10.0 it is said once more."""
    machine = offered(number, **kwargs)
    assert machine.handle(PromptFinished(MENU_END, "hold-fallback-menu", "h1")) == []
    assert machine.get_timer() == REPEAT_AT
    return machine


def menu_heard_again(number: str = NUMBER, **kwargs) -> HoldMachine:
    """No key by 10.0: the menu said once more (h2), ended at 13.0: the caller has until 18.0
    to choose."""
    machine = menu_heard(number, **kwargs)
    machine.handle(TimerFired(REPEAT_AT))
    assert machine.handle(PromptFinished(REPEAT_END, "hold-fallback-menu", "h2")) == []
    assert machine.get_timer() == CHOICE_DEADLINE
    return machine


def message(**kwargs) -> HoldMachine:
    """The caller chose a message for billing: intro, voicemail-intro and the tone (h1)."""
    machine = make()
    machine.handle(fallback(0.0, preselect="voicemail", operator_present=True,
                            why="transfer message", **kwargs))
    assert machine.state is HoldState.VOICEMAIL
    return machine


# --- the offer ---------------------------------------------------------------------------------
def test_given_no_hold_when_fallback_requested_then_intro_then_operator_gone_menu_without_a_hold():
    machine = make()

    actions = machine.handle(fallback(0.0))

    assert actions == [
        Note("fallback offered", (("why", "transfer unavailable"), ("for", "billing"))),
        Play("hold-fallback-menu", (*INTRO, *m("operator-gone-menu")), "h1"),
    ]
    assert machine.state is HoldState.OFFERING
    assert machine.source == "fallback"
    assert machine.for_whom == "billing"
    assert machine.operator_present is False
    assert machine.get_timer() is None  # the choice timeout starts when the menu ends


def test_given_operator_present_when_fallback_requested_then_the_ordinary_menu():
    machine = make()

    actions = machine.handle(fallback(0.0, operator_present=True, intro=()))

    assert actions[-1] == Play("hold-fallback-menu", m("hold-fallback-menu"), "h1")


def test_given_fallback_offered_when_requested_again_then_no_op():
    machine = offered()
    before = machine.to_dict()

    assert machine.handle(fallback(2.0, for_whom="sales", preselect="voicemail")) == []
    assert machine.to_dict() == before


def test_given_hold_running_when_fallback_requested_then_no_op():
    machine = make()
    machine.handle(HoldRequested(0.0, "lookup", "hold-reason-lookup"))
    before = machine.to_dict()

    assert machine.handle(fallback(2.0)) == []
    assert machine.to_dict() == before


def test_given_fallback_offered_when_hold_requested_then_no_op():
    machine = offered()

    assert machine.handle(HoldRequested(1.0, "lookup", "hold-reason-lookup")) == []
    assert machine.state is HoldState.OFFERING


def test_given_fallback_menu_heard_when_callback_chosen_then_own_number_saved():
    machine = menu_heard()

    assert machine.handle(DigitPressed(8.0, "3")) == [
        Note("fallback choice", (("choice", "callback"),)),
        Play("callback-own-number", m("callback-own-number"), "h2")]
    machine.handle(PromptFinished(12.0, "callback-own-number", "h2"))
    assert machine.handle(DigitPressed(13.0, "1")) == []
    actions = machine.handle(TimerFired(15.0))  # nothing after the 1: their own number

    assert actions == [
        SaveCallback(NUMBER, True, "caller"),
        Note("hold ended", (("outcome", "callback"), ("held_for", 15), ("chosen", "caller"))),
    ]
    assert machine.handle(CallbackSaved(99.0)) == [
        Note("callback requested", ()), Play("callback-confirmed", m("callback-confirmed", "goodbye"), "h3")]
    assert machine.state is HoldState.CLOSING
    assert machine.for_whom == "billing"
    assert machine.handle(PromptFinished(17.0, "callback-confirmed", "h3")) == [
        EndCall("callback"), Finish("callback")]


def test_given_fallback_menu_playing_when_callback_chosen_then_menu_stopped():
    machine = offered()

    assert machine.handle(DigitPressed(2.0, "3"))[0] == StopPlayback("hold-fallback-menu", "h1")


def test_given_fallback_menu_heard_when_voicemail_chosen_then_voicemail_for_the_target():
    machine = menu_heard()

    assert machine.handle(DigitPressed(8.0, "2")) == [
        Note("fallback choice", (("choice", "voicemail"), ("chosen", "caller"))),
        Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h2")]
    assert machine.state is HoldState.VOICEMAIL
    assert machine.for_whom == "billing"


def test_given_operator_gone_when_caller_presses_1_then_invalid_choice_and_menu_again():
    machine = menu_heard()

    assert machine.handle(DigitPressed(8.0, "1")) == [
        Play("invalid-choice", m("invalid-choice", "operator-gone-menu"), "h2")]
    assert machine.state is HoldState.OFFERING


def test_given_fallback_menu_heard_when_no_key_within_4s_then_only_the_menu_said_once_more():
    machine = menu_heard()
    assert machine.handle(TimerFired(REPEAT_AT - 0.5)) == []

    actions = machine.handle(TimerFired(REPEAT_AT))

    assert actions == [Note("menu repeated", (("prompt", "hold-fallback-menu"),)),
                       Play("hold-fallback-menu", m("operator-gone-menu"), "h2")]  # no intro
    assert machine.state is HoldState.OFFERING
    assert machine.get_timer() is None


def test_given_fallback_menu_said_again_when_caller_presses_2_during_it_then_voicemail():
    machine = menu_heard()
    machine.handle(TimerFired(REPEAT_AT))

    assert machine.handle(DigitPressed(11.0, "2")) == [
        StopPlayback("hold-fallback-menu", "h2"),
        Note("fallback choice", (("choice", "voicemail"), ("chosen", "caller"))),
        Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h3")]


def test_given_fallback_menu_said_again_when_no_choice_then_policy_default_callback():
    machine = menu_heard_again()

    assert machine.handle(TimerFired(CHOICE_DEADLINE - 0.5)) == []
    actions = machine.handle(TimerFired(CHOICE_DEADLINE))

    assert actions == [
        SaveCallback(NUMBER, True, "default"),
        Note("hold ended", (("outcome", "callback"), ("held_for", 18), ("chosen", "default"))),
    ]
    assert machine.handle(CallbackSaved(99.0)) == [
        Note("callback requested", ()), Play("callback-confirmed", m("callback-confirmed", "goodbye"), "h3")]
    assert machine.state is HoldState.CLOSING


@pytest.mark.parametrize("number, default", [("", "callback"), (NUMBER, "voicemail")],
                         ids=["no-caller-number", "voicemail-default"])
def test_given_fallback_menu_heard_when_no_choice_then_voicemail_by_policy_or_for_lack_of_number(
        number, default):
    machine = make(number, fallback_default=default)
    machine.handle(fallback(0.0))
    machine.handle(PromptFinished(MENU_END, "hold-fallback-menu", "h1"))
    machine.handle(TimerFired(REPEAT_AT))
    machine.handle(PromptFinished(REPEAT_END, "hold-fallback-menu", "h2"))

    assert machine.handle(TimerFired(CHOICE_DEADLINE)) == [
        Note("fallback choice", (("choice", "voicemail"), ("chosen", "default"))),
        Play("voicemail-intro", (*m("voicemail-intro"), "sound:beep"), "h3")]


def test_given_operator_gone_when_resume_requested_then_ignored():
    machine = menu_heard()

    assert machine.handle(ResumeRequested(8.0)) == []
    assert machine.state is HoldState.OFFERING


def test_given_operator_gone_from_the_start_when_operator_hangs_up_then_no_op():
    machine = offered()

    assert machine.handle(OperatorHungUp(2.0)) == []


# --- a message the caller chose ---------------------------------------------------------------
def test_given_message_preselected_when_fallback_requested_then_straight_to_voicemail_after_intro():
    machine = make()

    actions = machine.handle(fallback(0.0, preselect="voicemail", operator_present=True,
                                      why="transfer message"))

    assert actions == [
        Note("fallback offered", (("why", "transfer message"), ("for", "billing"))),
        Note("fallback choice", (("choice", "voicemail"), ("chosen", "caller"))),
        Play("voicemail-intro", (*INTRO, *m("voicemail-intro"), "sound:beep"), "h1"),
    ]
    assert machine.state is HoldState.VOICEMAIL
    assert machine.for_whom == "billing"
    assert machine.get_timer() is None


def test_given_callback_preselected_when_fallback_requested_then_the_number_asked_at_once():
    """A caller who chose a callback while their transfer's consultation lasted is not asked
    to choose again: straight to their number (the own-number offer first)."""
    machine = make()

    actions = machine.handle(fallback(0.0, intro=(), preselect="callback",
                                      why="transfer caller-left"))

    assert actions == [
        Note("fallback offered", (("why", "transfer caller-left"), ("for", "billing"))),
        Note("fallback choice", (("choice", "callback"),)),
        Play("callback-own-number", m("callback-own-number"), "h1"),
    ]
    assert machine.state is HoldState.CALLBACK_NUMBER and machine.for_whom == "billing"


def test_given_message_preselected_when_tone_ends_then_recording_and_message_saved():
    machine = message()

    assert machine.handle(PromptFinished(12.0, "voicemail-intro", "h1")) == [StartVoicemail(120)]
    assert machine.handle(DigitPressed(30.0, "#")) == [StopVoicemail()]
    actions = machine.handle(RecordingFinished(30.2, 18.0))

    assert actions == [
        Note("hold ended", (("outcome", "voicemail"), ("held_for", 30))),
        SaveVoicemail(18.0),
        Play("voicemail-saved", m("voicemail-saved", "goodbye"), "h2"),
    ]
    assert machine.handle(PromptFinished(34.0, "voicemail-saved", "h2")) == [
        EndCall("voicemail"), Finish("voicemail")]


def test_given_message_preselected_when_resume_requested_then_too_late():
    machine = message()

    assert machine.handle(ResumeRequested(3.0)) == []
    assert machine.state is HoldState.VOICEMAIL


def test_given_message_preselected_when_requested_again_then_no_op():
    machine = message()

    assert machine.handle(fallback(1.0)) == []
    assert machine.playing_tag == "h1"


def test_given_message_being_recorded_when_caller_hangs_up_then_message_kept():
    machine = message()
    machine.handle(PromptFinished(12.0, "voicemail-intro", "h1"))

    assert machine.handle(CallerHungUp(20.0))[0] == SaveVoicemail(8.0)


def test_given_no_preselect_when_fallback_requested_then_no_music_and_no_hold_timer():
    machine = offered()

    assert not any(isinstance(a, StartMusic) for a in machine.handle(DigitPressed(2.0, "7")))
    assert machine.fallback_at is None


# --- persistence ------------------------------------------------------------------------------
@pytest.mark.parametrize("reach", [offered, menu_heard, menu_heard_again, message],
                         ids=lambda v: v.__name__)
def test_given_fallback_when_restored_through_json_then_for_whom_and_state_kept(reach):
    original = reach()

    restored = HoldMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored == original
    assert (restored.for_whom, restored.source) == ("billing", "fallback")
    assert restored.get_timer() == original.get_timer()
