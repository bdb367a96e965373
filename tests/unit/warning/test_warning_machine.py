"""The abusive-caller warning machine alone (ari_app/warning/machine.py). Fake clock: `now`
starts at 0.0 and is moved by hand. No event loop, no mocks."""

import json

import pytest

from ari_app.calls.vocabulary import CALLER, OPERATOR
from ari_app.warning.machine import (GOODBYE, WARNING, CallerHungUp, Finish, Note,
                                     OperatorHungUp, Play, PromptFinished, SaveWarning,
                                     TimerFired, WarningMachine, WarningStarted, WarningState)


def both(prompt: str, tag: str) -> list[Play]:
    """The prompt on each leg: the caller's and the operator's."""
    return [Play(prompt, tag=tag, party=CALLER), Play(prompt, tag=tag, party=OPERATOR)]


def test_given_a_first_warning_when_started_then_both_hear_it_and_it_is_recorded():
    machine = WarningMachine("call-1")

    actions = machine.handle(WarningStarted(0.0, 1, "rest"))

    assert actions == [Note("warned", (("count", 1), ("source", "rest"))), SaveWarning(1),
                       *both(WARNING, "w1")]
    assert machine.state is WarningState.WARNING


def test_given_the_warning_said_when_it_ends_on_both_legs_then_back_to_talk():
    machine = WarningMachine("call-1")
    machine.handle(WarningStarted(0.0, 1))

    assert machine.handle(PromptFinished(4.0, WARNING, "w1", CALLER)) == []
    assert machine.handle(PromptFinished(4.0, WARNING, "w1", CALLER)) == []  # a repeat
    assert machine.handle(PromptFinished(4.1, WARNING, "w1", OPERATOR)) == [
        Finish("warned", {"count": 1})]
    assert machine.state is WarningState.ENDED


def test_given_a_second_warning_when_started_then_goodbye_then_the_call_ends():
    machine = WarningMachine("call-1")

    actions = machine.handle(WarningStarted(10.0, 2, "feature-code"))

    assert actions == [Note("call ended", (("count", 2), ("source", "feature-code"))),
                       SaveWarning(2), *both(GOODBYE, "w2")]
    assert machine.state is WarningState.ENDING
    machine.handle(PromptFinished(13.0, GOODBYE, "w2", OPERATOR))
    assert machine.handle(PromptFinished(13.0, GOODBYE, "w2", CALLER)) == [
        Finish("ended", {"count": 2})]


def test_given_another_prompt_ends_when_warning_then_nothing():
    machine = WarningMachine("call-1")
    machine.handle(WarningStarted(0.0, 1))

    assert machine.handle(PromptFinished(1.0, "greeting", "call1")) == []
    assert machine.handle(PromptFinished(1.0, WARNING, "w9")) == []


def test_given_the_prompt_end_is_lost_when_the_bound_comes_then_finished_anyway():
    machine = WarningMachine("call-1")
    machine.handle(WarningStarted(0.0, 2))
    assert machine.handle(TimerFired(machine.get_timer() - 0.1)) == []

    actions = machine.handle(TimerFired(machine.get_timer()))

    assert actions[-1] == Finish("ended", {"count": 2})


def test_given_the_caller_hangs_up_when_warned_then_the_call_ends_it():
    machine = WarningMachine("call-1")
    machine.handle(WarningStarted(0.0, 1))

    assert machine.handle(CallerHungUp(1.0)) == [Finish("caller-hung-up")]


def test_given_the_operator_hangs_up_when_warned_then_the_caller_still_hears_it_out():
    machine = WarningMachine("call-1")
    machine.handle(WarningStarted(0.0, 1))

    assert machine.handle(OperatorHungUp(1.0)) == []
    assert not machine.operator_present and machine.state is WarningState.WARNING
    assert machine.handle(PromptFinished(4.0, WARNING, "w1", CALLER)) == [
        Finish("warned", {"count": 1})]


@pytest.mark.parametrize("through_json", [False, True])
def test_given_a_snapshot_when_restored_then_same_machine(through_json):
    machine = WarningMachine("call-1")
    machine.handle(WarningStarted(0.0, 2))
    data = machine.to_dict()
    if through_json:
        data = json.loads(json.dumps(data))

    assert WarningMachine.from_dict(data) == machine
