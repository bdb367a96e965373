"""The post-call survey machine alone (ari_app/survey/machine.py). Fake clock in the aioquic
way: `now` starts at 0.0 (the operator's hang-up) and is moved by hand; the deadline is jumped
to and fired. No event loop, no mocks."""

import json

import pytest

from ari_app.survey.machine import (GOODBYE, QUESTION, THANKS, CallerHungUp, DetachCaller,
                                    DigitPressed, Finish, Note, Play, PromptFinished, SaveAnswer,
                                    StopPlayback, SurveyMachine, SurveyStarted, SurveyState,
                                    TimerFired)

OP = "PJSIP/operator1"


def started(now: float = 0.0) -> tuple[SurveyMachine, list[object]]:
    machine = SurveyMachine("call-1")
    return machine, machine.handle(SurveyStarted(now, "sales", OP))


def notes(actions: list[object], label: str) -> list[dict]:
    return [dict(a.data) for a in actions if isinstance(a, Note) and a.event == label]


def fire(machine: SurveyMachine) -> list[object]:
    return machine.handle(TimerFired(machine.get_timer()))


def test_given_operator_hung_up_when_started_then_caller_detached_and_asked():
    machine, actions = started()

    assert actions[1:] == [DetachCaller(), Play(QUESTION, tag="s1")]
    assert notes(actions, "survey started") == [{"queue": "sales", "operator": OP}]
    assert machine.state is SurveyState.ASKING
    assert machine.get_timer() == 8.0  # the answer window, well inside the 10 s bound


def test_given_question_said_when_caller_presses_4_then_answered_thanked_and_ended():
    machine, _ = started()
    assert machine.handle(PromptFinished(5.5, QUESTION, "s1")) == []
    assert machine.state is SurveyState.WAITING

    actions = machine.handle(DigitPressed(6.0, "4"))

    assert notes(actions, "answered") == [{"score": 4, "queue": "sales", "operator": OP}]
    assert SaveAnswer(4, "sales", OP) in actions
    assert actions[-1] == Play(THANKS, tag="s2")
    assert not any(isinstance(a, StopPlayback) for a in actions)  # the question had ended
    assert machine.get_timer() == 10.0  # the hard bound while the thanks plays
    assert machine.handle(PromptFinished(7.5, THANKS, "s2")) == [Finish("answered", {"score": 4})]
    assert machine.state is SurveyState.ENDED


def test_given_question_playing_when_caller_presses_1_then_question_stopped_first():
    machine, _ = started()

    actions = machine.handle(DigitPressed(2.0, "1"))

    assert actions[0] == StopPlayback(QUESTION, "s1")
    assert actions[-1] == Play(THANKS, tag="s2")
    # the stopped question's end is not the thanks' end
    assert machine.handle(PromptFinished(2.1, QUESTION, "s1")) == []
    assert machine.state is SurveyState.CLOSING


@pytest.mark.parametrize("digit", ["#", "0", "9", "*"])
def test_given_a_key_not_1_to_5_when_pressed_then_skipped_with_a_short_goodbye(digit):
    machine, _ = started()
    machine.handle(PromptFinished(5.5, QUESTION, "s1"))

    actions = machine.handle(DigitPressed(6.0, digit))

    assert notes(actions, "skipped") == [{"why": f"key {digit}", "queue": "sales",
                                          "operator": OP}]
    assert not any(isinstance(a, SaveAnswer) for a in actions)
    assert actions[-1] == Play(GOODBYE, tag="s2")
    assert machine.handle(PromptFinished(7.0, GOODBYE, "s2")) == [
        Finish("skipped", {"score": None})]


def test_given_no_key_when_the_answer_window_ends_then_skipped_and_ended_within_10_s():
    machine, _ = started()
    machine.handle(PromptFinished(5.5, QUESTION, "s1"))
    assert machine.handle(TimerFired(7.9)) == []  # early: nothing

    actions = fire(machine)  # at 8.0

    assert notes(actions, "skipped")[0]["why"] == "no key"
    assert actions[-1] == Play(GOODBYE, tag="s2")
    assert machine.handle(PromptFinished(9.2, GOODBYE, "s2"))[-1] == Finish(
        "skipped", {"score": None})


def test_given_goodbye_never_ends_when_the_hard_bound_comes_then_ended_at_10_s():
    machine, _ = started()
    fire(machine)  # 8.0: the question (still playing: a long rendering) is cut, goodbye
    assert machine.get_timer() == 10.0

    actions = fire(machine)

    assert actions[-1] == Finish("skipped", {"score": None})
    assert machine.state is SurveyState.ENDED and machine.get_timer() is None


def test_given_a_question_longer_than_the_window_when_time_is_up_then_it_is_stopped():
    machine, _ = started()

    actions = fire(machine)

    assert actions[0] == StopPlayback(QUESTION, "s1")


@pytest.mark.parametrize("window, limit", [(8.0, 10.0), (12.0, 10.0)])
def test_given_any_settings_when_nothing_happens_then_never_longer_than_the_limit(window, limit):
    machine = SurveyMachine("call-1", answer_window=window, limit=limit)
    machine.handle(SurveyStarted(100.0, "sales", OP))
    ended_at = None
    while machine.state is not SurveyState.ENDED:
        due = machine.get_timer()
        assert due is not None and due <= 100.0 + limit
        if any(isinstance(a, Finish) for a in machine.handle(TimerFired(due))):
            ended_at = due
    assert ended_at is not None and ended_at - 100.0 <= limit


def test_given_the_caller_hangs_up_when_asked_then_skipped_and_ended():
    machine, _ = started()

    actions = machine.handle(CallerHungUp(3.0))

    assert notes(actions, "skipped")[0]["why"] == "caller hung up"
    assert actions[-1] == Finish("caller-hung-up")


def test_given_an_answer_when_the_caller_hangs_up_during_thanks_then_not_skipped():
    machine, _ = started()
    machine.handle(DigitPressed(2.0, "5"))

    actions = machine.handle(CallerHungUp(3.0))

    assert actions == [Finish("caller-hung-up")]


def test_given_an_answer_when_another_key_comes_then_ignored():
    machine, _ = started()
    machine.handle(DigitPressed(2.0, "5"))

    assert machine.handle(DigitPressed(2.5, "1")) == []
    assert machine.score == 5


@pytest.mark.parametrize("through_json", [False, True])
def test_given_a_snapshot_when_restored_then_same_machine(through_json):
    machine, _ = started()
    machine.handle(DigitPressed(2.0, "3"))
    data = machine.to_dict()
    if through_json:
        data = json.loads(json.dumps(data))

    restored = SurveyMachine.from_dict(data)

    assert restored == machine
    assert restored.get_timer() == 10.0
