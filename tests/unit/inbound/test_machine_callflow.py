"""InboundMachine hands the caller to the survey (the operator hung up first, in a queue with a
survey) and to the warning (the operator warned an abusive caller), and takes them back.

Fake clock: `now` starts at 0.0 and is moved by hand. The rules themselves are not run
(tests/unit/survey/, tests/unit/warning/): their outcome comes back as RuleEnded."""

import pytest

from ari_app.inbound.machine import (CALLER, Ask, OPERATOR, TALK_BRIDGE, CallerHungUp, DestroyBridge,
                                     Finish, HandTo, HangUp, InboundMachine, InboundState,
                                     InvalidTransition, OperatorAnswered, OperatorDigit,
                                     OperatorFound, OperatorHungUp, PutOnHold, ReleaseOperator,
                                     RuleEnded, WarnCaller)

from test_machine_queue import OP1, greeted

CHANNEL = "call-1~op1"


def connected(queue: str | None = "sales", survey: tuple[str, ...] = ("sales",)
              ) -> tuple[InboundMachine, float]:
    machine = InboundMachine("call-1", survey_queues=list(survey))
    now = greeted(machine, queue=queue)
    machine.handle(OperatorFound(now, OP1))
    machine.handle(OperatorAnswered(now + 2.0, CHANNEL))
    assert machine.state is InboundState.CONNECTED
    return machine, now + 2.0


# --- the survey -----------------------------------------------------------------------------
def test_given_a_survey_queue_when_the_operator_hangs_up_first_then_freed_and_caller_surveyed():
    machine, now = connected()

    actions = machine.handle(OperatorHungUp(now + 60.0))

    assert actions == [ReleaseOperator(OP1, "call"),
                       HandTo("survey", {"queue": "sales", "operator": OP1})]
    assert machine.state is InboundState.SURVEYING and machine.rule == "survey"
    assert machine.operator == OP1 and machine.operator_channel is None  # the answer is theirs


def test_given_the_survey_ended_when_back_then_caller_hung_up_and_operator_not_freed_twice():
    machine, now = connected()
    machine.handle(OperatorHungUp(now + 60.0))

    actions = machine.handle(RuleEnded(now + 68.0, "survey", "answered", {"score": 4}))

    assert actions == [HangUp(CALLER), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_the_caller_hangs_up_during_the_survey_then_ended_without_a_second_release():
    machine, now = connected()
    machine.handle(OperatorHungUp(now + 60.0))
    assert machine.handle(RuleEnded(now + 62.0, "survey", "caller-hung-up")) == []

    actions = machine.handle(CallerHungUp(now + 62.0))

    assert actions == [DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_a_second_operator_hang_up_event_when_surveying_then_nothing():
    machine, now = connected()
    machine.handle(OperatorHungUp(now + 60.0))

    assert machine.handle(OperatorHungUp(now + 60.1)) == []


@pytest.mark.parametrize("queue, survey", [("sales", ()), (None, ("sales",)),
                                           ("support", ("sales",))])
def test_given_no_survey_for_the_call_when_the_operator_hangs_up_then_the_call_ends(queue, survey):
    machine, now = connected(queue, survey)

    actions = machine.handle(OperatorHungUp(now + 60.0))

    assert actions[0] == HangUp(CALLER) and actions[-1] == Finish()


def test_given_a_survey_queue_when_the_caller_hangs_up_first_then_no_survey():
    machine, now = connected()

    actions = machine.handle(CallerHungUp(now + 60.0))

    assert HangUp(OPERATOR) in actions and actions[-1] == Finish()
    assert not any(isinstance(a, HandTo) for a in actions)


# --- the warning ----------------------------------------------------------------------------
def test_given_talk_when_warned_then_the_warning_rule_has_the_call_and_back_to_talk():
    machine, now = connected()

    assert machine.handle(WarnCaller(now + 10.0, "rest")) == [
        HandTo("warning", {"count": 1, "source": "rest"})]
    assert machine.state is InboundState.WARNING

    assert machine.handle(RuleEnded(now + 14.0, "warning", "warned", {"count": 1})) == []
    assert machine.state is InboundState.CONNECTED and machine.warnings == 1


def test_given_warned_once_when_warned_again_then_the_call_ends_and_operator_to_wrap_up():
    machine, now = connected()
    machine.handle(WarnCaller(now + 10.0))
    machine.handle(RuleEnded(now + 14.0, "warning", "warned"))

    assert machine.handle(WarnCaller(now + 30.0)) == [
        HandTo("warning", {"count": 2, "source": "rest"})]
    actions = machine.handle(RuleEnded(now + 34.0, "warning", "ended", {"count": 2}))

    assert actions == [HangUp(CALLER), HangUp(OPERATOR), ReleaseOperator(OP1, "call"),
                       DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_the_operator_feature_code_when_keyed_then_warned():
    machine, now = connected()

    machine.handle(OperatorDigit(now, "*"))
    actions = machine.handle(OperatorDigit(now + 0.2, "5"))

    assert actions == [HandTo("warning", {"count": 1, "source": "feature-code"})]


def test_given_on_hold_when_warned_then_taken_off_hold_first_then_warned():
    machine, now = connected()
    machine.handle(PutOnHold(now))

    assert machine.handle(WarnCaller(now + 5.0, "rest")) == [
        Ask("hold", "resume", {"source": "warning"})]
    assert machine.state is InboundState.HELD  # "thank you for waiting" first
    with pytest.raises(InvalidTransition, match="cannot warn"):
        machine.handle(WarnCaller(now + 5.5, "rest"))  # one warning at a time

    actions = machine.handle(RuleEnded(now + 8.0, "hold", "resumed"))

    assert actions == [HandTo("warning", {"count": 1, "source": "rest"})]
    assert machine.state is InboundState.WARNING and machine.pending_warning is None


@pytest.mark.parametrize("setup", ["greeting", "warning"])
def test_given_no_talk_when_warned_then_refused(setup):
    if setup == "greeting":
        machine, now = InboundMachine("call-1"), 0.0
    else:
        machine, now = connected()
        machine.handle(WarnCaller(now))

    with pytest.raises(InvalidTransition, match="cannot warn"):
        machine.handle(WarnCaller(now + 1.0))


def test_given_the_operator_left_during_the_warning_when_it_ends_then_the_caller_is_let_go():
    machine, now = connected()
    machine.handle(WarnCaller(now + 10.0))
    assert machine.handle(OperatorHungUp(now + 11.0)) == [ReleaseOperator(OP1, "call")]

    actions = machine.handle(RuleEnded(now + 14.0, "warning", "warned"))

    assert actions[0] == HangUp(CALLER) and actions[-1] == Finish()
