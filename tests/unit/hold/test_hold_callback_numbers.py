"""HoldMachine: only a number that passes the one check (callback/numbers.py) is ever saved for
a callback. A typed number that fails is refused aloud and asked again, twice, then the caller
leaves a message; a caller ID that fails is never offered nor used by default.

Fake clock as in test_hold_machine.py: the fallback menu from a FallbackRequested at 0.0, heard
by 6.0 (said once more at 10.0 if no key comes); the caller chooses 3 at 7.0 (h2), the question
ends at 10.0."""

import json
from dataclasses import replace

import pytest

from ari_app.callback.numbers import NumberRules
from ari_app.hold.machine import (
    CallbackRefused,
    DigitPressed,
    FallbackRequested,
    HoldMachine,
    HoldSettings,
    HoldState,
    Note,
    Play,
    PromptFinished,
    RecordingFinished,
    SaveCallback,
    StopPlayback,
    TimerFired,
)

US = NumberRules(("US",), ("+1900", "+1976"))
SETTINGS = HoldSettings(choice_timeout=8.0, fallback_default="callback", numbers=US)
CALLER = "+12125550123"
PREMIUM_CALLER = "+19005550100"


def m(*prompts: str) -> tuple[str, ...]:
    return tuple(f"sound:etiquette/{p}" for p in prompts)


def menu_heard(caller: str = CALLER, **settings) -> HoldMachine:
    machine = HoldMachine("call-1", caller_number=caller, settings=replace(SETTINGS, **settings))
    machine.handle(FallbackRequested(0.0, why="test"))
    machine.handle(PromptFinished(6.0, "hold-fallback-menu"))
    assert machine.state is HoldState.OFFERING and machine.get_timer() == 10.0
    return machine


def no_key(machine: HoldMachine) -> list[object]:
    """No key at all: the question said once more (it lasts 3 s), then the no-key default."""
    repeat = machine.handle(TimerFired(machine.get_timer() or 0.0))
    assert isinstance(repeat[-1], Play) and machine.menu_repeated
    machine.handle(PromptFinished(20.0, repeat[-1].prompt, repeat[-1].tag))
    return machine.handle(TimerFired(machine.get_timer() or 0.0))


def asked_for_number(caller: str = CALLER) -> HoldMachine:
    machine = menu_heard(caller)
    machine.handle(DigitPressed(7.0, "3"))
    machine.handle(PromptFinished(10.0, machine.playing or ""))
    assert machine.state is HoldState.CALLBACK_NUMBER
    return machine


def type_number(machine: HoldMachine, keys: str, at: float) -> list[object]:
    actions: list[object] = []
    for i, key in enumerate(keys):
        actions += machine.handle(DigitPressed(at + i * 0.1, key))
    return actions


def saved(actions: list[object]) -> list[SaveCallback]:
    return [a for a in actions if isinstance(a, SaveCallback)]


@pytest.mark.parametrize("keys,why", [
    ("911#", "emergency"),
    ("9005550100#", "premium-rate"),
    ("011881612345678#", "satellite"),
    ("8762345678#", "Caribbean"),
    ("011442079460958#", "US"),          # another country
])
def test_given_number_asked_when_refused_number_typed_then_refused_aloud_asked_again_not_saved(
        keys, why):
    machine = asked_for_number()

    actions = type_number(machine, keys, 11.0)

    assert saved(actions) == []
    note = next(a for a in actions if isinstance(a, Note))
    assert note.event == "callback number refused" and why in dict(note.data)["why"]
    # asked again: the caller ID may still be chosen with 1
    assert actions[-1] == Play("callback-number-refused",
                               m("callback-number-refused", "callback-own-number"), "h3")
    assert machine.state is HoldState.CALLBACK_NUMBER and machine.digits == ""
    assert machine.get_timer() is None  # the time to answer starts when the question ends
    machine.handle(PromptFinished(15.0, "callback-number-refused", "h3"))
    assert machine.get_timer() == 19.0  # no key within 4 s: the question once more


def test_given_premium_caller_id_when_typed_number_refused_then_asked_to_type_again_only():
    machine = asked_for_number(PREMIUM_CALLER)

    actions = type_number(machine, "911#", 11.0)

    assert actions[-1].media == m("callback-number-refused", "callback-enter-number")


def test_given_refused_number_when_a_good_one_typed_next_then_that_one_saved():
    machine = asked_for_number()
    type_number(machine, "911#", 11.0)

    actions = type_number(machine, "2125550142#", 16.0)

    assert saved(actions) == [SaveCallback("+12125550142", False, "caller")]


def test_given_three_refused_numbers_when_typed_then_voicemail_instead_and_nothing_saved():
    machine = asked_for_number()
    actions = type_number(machine, "911#", 11.0) + type_number(machine, "9005550100#", 16.0)
    assert machine.state is HoldState.CALLBACK_NUMBER

    actions += type_number(machine, "911#", 21.0)

    assert saved(actions) == []
    assert machine.state is HoldState.VOICEMAIL and machine.outcome == "voicemail"
    assert actions[-1] == Play("voicemail-intro", (
        *m("callback-number-refused", "callback-voicemail-instead", "voicemail-intro"),
        "sound:beep"), "h5")


def test_given_premium_caller_id_when_no_key_pressed_then_not_called_back_but_voicemail():
    machine = menu_heard(PREMIUM_CALLER)

    actions = no_key(machine)

    assert saved(actions) == []
    assert machine.state is HoldState.VOICEMAIL


def test_given_premium_caller_id_when_callback_chosen_then_asked_to_type_a_number_not_offered_1():
    machine = menu_heard(PREMIUM_CALLER)

    actions = machine.handle(DigitPressed(7.0, "3"))

    assert actions[-1] == Play("callback-enter-number", m("callback-enter-number"), "h2")
    assert any(isinstance(a, Note) and a.event == "caller id not called back" for a in actions)
    # "1" is the first digit of a number, not "my own number"
    assert machine.handle(DigitPressed(8.0, "1")) == [StopPlayback("callback-enter-number", "h2")]
    assert saved(type_number(machine, "#", 9.0)) == []  # "1" alone: refused, not the caller ID
    assert machine.digits == ""


def test_given_premium_caller_id_when_number_asked_and_no_key_then_voicemail_not_caller_id():
    machine = asked_for_number(PREMIUM_CALLER)

    actions = no_key(machine)

    assert saved(actions) == [] and machine.state is HoldState.VOICEMAIL


def test_given_caller_id_of_another_country_when_no_key_pressed_then_not_called_back():
    machine = menu_heard("+442079460958")

    assert saved(no_key(machine)) == []


def test_given_national_caller_id_when_no_key_pressed_then_called_back_as_e164():
    machine = menu_heard("2125550123")

    assert saved(no_key(machine)) == [SaveCallback(CALLER, True, "default")]


def test_given_no_rules_when_no_key_pressed_then_nothing_may_be_called_back():
    machine = menu_heard(CALLER, numbers=NumberRules())

    assert saved(no_key(machine)) == []


def test_given_premium_caller_id_when_voicemail_not_saved_then_goodbye_not_a_callback():
    machine = menu_heard(PREMIUM_CALLER)
    machine.handle(DigitPressed(7.0, "2"))
    machine.handle(PromptFinished(12.0, "voicemail-intro"))

    actions = machine.handle(RecordingFinished(13.0, 0.0, saved=False))

    assert saved(actions) == [] and actions[-1] == Play("goodbye", m("goodbye"), "h3")


def test_given_callback_saved_when_service_refuses_it_then_voicemail_instead_of_confirmation():
    machine = menu_heard()
    assert saved(no_key(machine))
    assert machine.state is HoldState.CLOSING

    actions = machine.handle(CallbackRefused(25.1, "We cannot call a premium-rate number."))

    assert machine.state is HoldState.VOICEMAIL
    assert actions[-1].prompt == "voicemail-intro"
    assert actions[-1].media[0] == "sound:etiquette/callback-number-refused"


def test_given_refusals_and_rules_when_snapshot_restored_then_both_kept():
    machine = asked_for_number()
    type_number(machine, "911#", 11.0)

    restored = HoldMachine.from_dict(json.loads(json.dumps(machine.to_dict())))

    assert restored.settings.numbers == US and restored.refusals == 1
    assert restored == machine


def test_given_snapshot_from_before_the_rules_when_restored_then_nothing_may_be_called():
    data = json.loads(json.dumps(menu_heard().to_dict()))
    del data["settings"]["numbers"], data["refusals"]
    del data["settings"]["menu_repeat_after"], data["menu_repeated"]  # and before menu repeats

    restored = HoldMachine.from_dict(data)

    assert restored.settings.numbers == NumberRules() and restored.refusals == 0
    assert restored.settings.menu_repeat_after == 4.0 and restored.menu_repeated is False
    assert saved(no_key(restored)) == []
