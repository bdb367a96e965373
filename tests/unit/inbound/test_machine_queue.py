"""InboundMachine hands a caller nobody can take at once to the queue rule, and takes them back.

Fake clock in the aioquic way: `now` starts at 0.0 and is moved by hand. No event loop, no mocks.
The queue rule itself is not run (tests/unit/queue/): the call hands the caller to it by name
(HandTo("queue", ...)) and its outcome comes back as RuleEnded("queue", ...).
"""

import json

import pytest

from ari_app.inbound.machine import (
    CALLER,
    HOLD_BRIDGE,
    OPERATOR,
    TALK_BRIDGE,
    AddToBridge,
    Answer,
    CallerArrived,
    CallerDigit,
    CallerHungUp,
    CreateBridge,
    DestroyBridge,
    FindOperator,
    Finish,
    HandTo,
    HangUp,
    InboundMachine,
    InboundState,
    NoOperatorFree,
    Note,
    OperatorAnswered,
    OperatorFailed,
    OperatorFound,
    OperatorHungUp,
    Play,
    PromptFinished,
    ReleaseOperator,
    RuleEnded,
    StartBridgeMoh,
    StopPlayback,
    StopRinging,
    TimerFired,
)

NUMBER = "+12125550100"
QUEUE = "sales"
OP1, OP2 = "PJSIP/op1", "PJSIP/op2"
QOP_CHANNEL = "call-1;qop1"
TALK = [CreateBridge(TALK_BRIDGE, "mixing"), AddToBridge(TALK_BRIDGE, CALLER),
        AddToBridge(TALK_BRIDGE, OPERATOR)]
TO_QUEUE = HandTo("queue", {"queue": QUEUE, "returning": False})


def make(**kwargs) -> InboundMachine:
    kwargs.setdefault("seek_retry", 3.0)
    return InboundMachine("call-1", **kwargs)


def greeted(machine: InboundMachine, now: float = 0.0, queue: str | None = QUEUE,
            returning: bool = False) -> float:
    """The caller arrives for `queue` at `now` and hears the greeting (or the welcome back) and
    the recording notice: SEEKING_OPERATOR; returns the new `now`."""
    machine.handle(CallerArrived(now, NUMBER, "Ada", "en", queue, returning))
    now += 4.0
    machine.handle(PromptFinished(now, machine.playing))
    now += 5.0
    machine.handle(PromptFinished(now, "recording-notice"))
    assert machine.state is InboundState.SEEKING_OPERATOR
    return now


def queued(machine: InboundMachine, now: float = 0.0) -> float:
    """Greeted, nobody free: the queue has the caller; returns the new `now`."""
    now = greeted(machine, now)
    assert machine.handle(NoOperatorFree(now)) == [TO_QUEUE]
    return now


# --- nobody free: the queue has the caller --------------------------------------------------
def test_given_a_queue_when_nobody_free_after_the_greeting_then_handed_to_the_queue():
    machine = make()
    now = greeted(machine)

    actions = machine.handle(NoOperatorFree(now))

    assert actions == [TO_QUEUE]  # no busy prompt, no music of the call's own: the queue's
    assert machine.state is InboundState.QUEUED and machine.rule == "queue"
    assert machine.bridges == [] and machine.get_timer() is None
    assert machine.to_public_dict()["status"] == "queued"


def test_given_a_queue_when_an_operator_is_free_then_put_through_and_the_queue_told():
    """Nobody waits and an operator of the queue is free: straight to them (no line), and
    the queue's figures hear of it (answered, in the service level)."""
    machine = make()
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))

    actions = machine.handle(OperatorAnswered(now + 3.0, "call-1~op1"))

    assert actions[:2] == [StopRinging(), Note("put through", (("queue", QUEUE),
                                                                ("waited", 12.0)))]
    assert machine.state is InboundState.CONNECTED
    # answered again later (back from a hold or a transfer): not put through again
    assert not [a for a in machine.handle(OperatorAnswered(now + 60, "x")) if isinstance(a, Note)]


def test_given_a_queue_when_the_only_operator_fails_then_ringback_stops_and_queue_has_them():
    machine = make()
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))

    actions = machine.handle(OperatorFailed(now + 20.0, "no answer", missed=True))

    assert actions == [ReleaseOperator(OP1, "missed"), StopRinging(), TO_QUEUE]
    assert machine.state is InboundState.QUEUED and machine.operator is None
    assert machine.get_timer() is None  # the queue finds the operator, not the call's timer


def test_given_a_queue_when_every_operator_tried_and_failed_then_handed_to_the_queue():
    machine = make(operator_count=2)
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))
    assert machine.handle(OperatorFailed(now + 20.0, "busy")) == [
        ReleaseOperator(OP1), FindOperator((OP1,))]
    machine.handle(OperatorFound(now + 20.0, OP2))

    actions = machine.handle(OperatorFailed(now + 40.0, "no answer"))

    assert actions == [ReleaseOperator(OP2), StopRinging(), TO_QUEUE]
    assert machine.state is InboundState.QUEUED and machine.tried == []


def test_given_a_queue_when_the_second_operator_is_not_free_then_handed_to_the_queue():
    machine = make(operator_count=2)
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))
    machine.handle(OperatorFailed(now + 20.0, "busy"))

    assert machine.handle(NoOperatorFree(now + 20.0)) == [StopRinging(), TO_QUEUE]
    assert machine.state is InboundState.QUEUED


@pytest.mark.parametrize("how", ["nobody-free", "operator-failed"])
def test_given_no_queue_when_nobody_can_take_the_caller_then_busy_prompt_and_music(how):
    machine = make()
    now = greeted(machine, queue=None)
    if how == "nobody-free":
        actions = machine.handle(NoOperatorFree(now))
        assert actions == [Play("all-operators-busy")]
    else:
        machine.handle(OperatorFound(now, OP1))
        actions = machine.handle(OperatorFailed(now + 20.0, "no answer"))
        assert actions == [ReleaseOperator(OP1), StopRinging(), Play("all-operators-busy")]

    assert machine.state is InboundState.WAITING and machine.rule is None
    assert machine.get_timer() == now + (20.0 if how == "operator-failed" else 0.0) + 3.0
    assert machine.handle(PromptFinished(now + 22.0, "all-operators-busy")) == [
        CreateBridge(HOLD_BRIDGE, "holding"), AddToBridge(HOLD_BRIDGE, CALLER),
        StartBridgeMoh(HOLD_BRIDGE)]


# --- a returning caller ----------------------------------------------------------------------
def test_given_a_returning_caller_when_they_arrive_then_welcomed_back_not_greeted():
    machine = make()

    actions = machine.handle(CallerArrived(0.0, NUMBER, "Ada", "en", QUEUE, returning=True))

    assert actions == [Answer(), Play("queue-welcome-back")]
    assert machine.handle(PromptFinished(4.0, "queue-welcome-back")) == [Play("recording-notice")]
    assert machine.handle(PromptFinished(9.0, "recording-notice")) == [FindOperator(())]
    assert machine.handle(NoOperatorFree(9.0)) == [
        HandTo("queue", {"queue": QUEUE, "returning": True})]


def test_given_no_queue_when_marked_returning_then_greeted_as_usual():
    machine = make()

    actions = machine.handle(CallerArrived(0.0, NUMBER, "Ada", "en", None, returning=True))

    assert actions == [Answer(), Play("greeting")]
    assert machine.returning is False


# --- the queue hands the caller back ---------------------------------------------------------
def test_given_queued_when_the_queue_connected_an_operator_then_talk_bridge_with_their_leg():
    machine = make()
    now = queued(machine) + 60.0

    actions = machine.handle(RuleEnded(now, "queue", "connected", {
        "operator": OP2, "leg": "qop1", "waited": 60, "queue": QUEUE, "channel": QOP_CHANNEL}))

    assert actions == TALK
    assert machine.state is InboundState.CONNECTED and machine.rule is None
    assert (machine.operator, machine.operator_channel) == (OP2, QOP_CHANNEL)
    assert machine.bridges == [TALK_BRIDGE]
    # from now on the operator the queue found is the call's: their hang-up ends it
    assert machine.handle(OperatorHungUp(now + 120.0)) == [
        HangUp(CALLER), ReleaseOperator(OP2, "call"), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_connected_from_the_queue_when_caller_hangs_up_then_operator_hung_up_released():
    machine = make()
    now = queued(machine)
    machine.handle(RuleEnded(now, "queue", "connected",
                             {"operator": OP2, "leg": "qop1", "channel": QOP_CHANNEL}))

    assert machine.handle(CallerHungUp(now + 90.0)) == [
        HangUp(OPERATOR), ReleaseOperator(OP2, "call"), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_queued_when_caller_chose_voicemail_then_the_hold_way_out_for_the_department():
    machine = make()
    now = queued(machine) + 70.0

    actions = machine.handle(RuleEnded(now, "queue", "voicemail",
                                       {"for": "billing", "waited": 70}))

    assert actions == [HandTo("hold", {
        "way_out": True, "for_whom": "billing", "preselect": "voicemail",
        "why": "queue voicemail", "operator_present": False})]
    assert machine.state is InboundState.HELD and machine.rule == "hold"
    assert machine.fallback_for == "billing"
    # the message left: nobody to tell, the caller is hung up and the call ends
    assert machine.handle(RuleEnded(now + 40.0, "hold", "voicemail")) == [
        HangUp(CALLER), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_queued_when_the_place_is_kept_for_a_callback_then_caller_hung_up_and_call_ends():
    machine = make()
    now = queued(machine) + 80.0

    actions = machine.handle(RuleEnded(now, "queue", "callback", {"waited": 80}))

    assert actions == [HangUp(CALLER), Finish()]
    assert machine.state is InboundState.ENDED
    assert machine.handle(CallerHungUp(now + 0.1)) == []


@pytest.mark.parametrize("outcome", ["abandoned", "caller-hung-up"])
def test_given_queued_when_the_caller_left_the_queue_then_the_hang_up_ends_the_call(outcome):
    machine = make()
    now = queued(machine) + 30.0

    assert machine.handle(RuleEnded(now, "queue", outcome, {"waited": 30, "position": 2})) == []
    assert machine.state is InboundState.QUEUED and machine.rule is None
    assert machine.handle(CallerHungUp(now)) == [Finish()]


# --- while the queue has the caller ----------------------------------------------------------
def test_given_queued_when_another_rule_ends_then_ignored():
    machine = make()
    now = queued(machine)

    assert machine.handle(RuleEnded(now, "hold", "voicemail")) == []
    assert machine.handle(RuleEnded(now, "queue", "gone")) == []
    assert machine.state is InboundState.QUEUED and machine.rule == "queue"


def test_given_queued_when_an_operator_is_found_late_then_given_back():
    machine = make()
    now = queued(machine)

    assert machine.handle(OperatorFound(now, OP1)) == [ReleaseOperator(OP1)]
    assert machine.handle(TimerFired(now + 100.0)) == []
    assert machine.state is InboundState.QUEUED


def test_given_queued_when_caller_hangs_up_then_the_call_ends():
    machine = make()
    now = queued(machine)

    assert machine.handle(CallerHungUp(now + 12.0)) == [Finish()]
    assert machine.state is InboundState.ENDED


def test_given_queued_when_snapshot_restored_then_the_queue_still_has_the_caller():
    original = make()
    now = queued(original)

    restored = InboundMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored == original
    assert (restored.queue, restored.rule, restored.state) == (QUEUE, "queue",
                                                              InboundState.QUEUED)
    ended = RuleEnded(now + 5.0, "queue", "connected", {"operator": OP2, "channel": QOP_CHANNEL})
    assert restored.handle(ended) == original.handle(ended) == TALK


# --- keys offered after the greeting ----------------------------------------------------------
OFFERS = [["2", "queue", "billing", "sound:etiquette/greeting-key-queue",
           "sound:etiquette/directory-billing", "sound:etiquette/greeting-key-press", "digits:2"],
          ["0", "operator", "any", "sound:etiquette/press-0-for-operator"],
          ["9", "language", "ru", "sound:ru/etiquette/language-offer", "sound:ru/digits/9"]]
STOP_OFFERS = StopPlayback("greeting-offers", "offers")


def offered(machine: InboundMachine, language: str = "en") -> list[object]:
    machine.handle(CallerArrived(0.0, NUMBER, "Ada", language, QUEUE))
    machine.handle(PromptFinished(4.0, machine.playing))
    return machine.handle(PromptFinished(9.0, "recording-notice"))


def test_given_greeting_keys_when_greeted_then_offered_once_after_the_notice():
    machine = make(offers=OFFERS)

    [play] = offered(machine)

    assert play == Play("greeting-offers", tuple(OFFERS[0][3:]) + tuple(OFFERS[1][3:])
                        + tuple(OFFERS[2][3:]), "offers")
    assert machine.state is InboundState.GREETING
    assert machine.handle(PromptFinished(14.0, "greeting-offers")) == [FindOperator(())]


def test_given_offers_when_caller_presses_queue_key_then_that_queue_and_noted():
    machine = make(offers=OFFERS)
    offered(machine)

    actions = machine.handle(CallerDigit(11.0, "2"))

    # the rest of the offers is not said: the caller answered them
    assert actions == [Note("greeting key", (("key", "2"), ("queue", "billing"))), STOP_OFFERS,
                       FindOperator(())]
    assert machine.queue == "billing" and machine.state is InboundState.SEEKING_OPERATOR
    assert machine.handle(CallerDigit(11.5, "9")) == []  # one key: no maze
    assert machine.handle(PromptFinished(11.6, "greeting-offers")) == []  # the stopped one
    assert machine.handle(NoOperatorFree(12.0)) == [
        HandTo("queue", {"queue": "billing", "returning": False})]


def test_given_offers_when_caller_presses_0_then_an_operator_at_once_in_the_callers_queue():
    machine = make(offers=OFFERS)
    offered(machine)

    actions = machine.handle(CallerDigit(10.0, "0"))

    assert actions == [Note("greeting key", (("key", "0"), ("operator", "any"))), STOP_OFFERS,
                       FindOperator(())]
    assert (machine.queue, machine.language) == (QUEUE, "en")


def test_given_a_key_during_the_greeting_then_the_notice_still_said_and_the_offers_not():
    machine = make(offers=OFFERS)
    machine.handle(CallerArrived(0.0, NUMBER, "Ada", "en", QUEUE))

    assert [a.event for a in machine.handle(CallerDigit(2.0, "2"))] == ["greeting key"]
    assert machine.handle(PromptFinished(4.0, "greeting")) == [Play("recording-notice")]
    assert machine.handle(PromptFinished(9.0, "recording-notice")) == [FindOperator(())]
    assert machine.queue == "billing"


def test_given_offers_when_caller_presses_language_key_then_the_call_goes_on_in_it():
    machine = make(offers=OFFERS)
    offered(machine)

    assert machine.handle(CallerDigit(11.0, "9"))[1:] == [STOP_OFFERS, FindOperator(())]

    assert machine.language == "ru" and machine.queue == QUEUE


def test_given_caller_already_in_that_language_when_greeted_then_not_offered_it():
    machine = make(offers=OFFERS)

    [play] = offered(machine, language="ru")

    assert play.media == tuple(OFFERS[0][3:]) + tuple(OFFERS[1][3:])
    assert machine.handle(CallerDigit(11.0, "9")) == []


def test_given_a_returning_caller_when_they_press_an_offered_key_then_their_place_is_kept():
    machine = make(offers=OFFERS)
    machine.handle(CallerArrived(0.0, NUMBER, "Ada", "en", QUEUE, returning=True))

    assert machine.handle(CallerDigit(2.0, "2")) == []
    assert machine.queue == QUEUE and machine.chosen is None


def test_given_a_key_nobody_offered_when_pressed_then_nothing():
    machine = make(offers=OFFERS)
    offered(machine)

    assert machine.handle(CallerDigit(11.0, "5")) == [] and machine.chosen is None
