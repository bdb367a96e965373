"""CallbackCallMachine: events in (each with `now`), actions out, one deadline.

Fake clock in the aioquic way: `now` starts at 0.0, is moved by hand, and the deadline is fired
by jumping to `get_timer()`. No event loop, no mocks.

The timeline most tests share (answer_timeout 8 s):
  agent-first (default)
    0.0  Started              -> DialOperator
    2.0  operator answers     -> operator-callback-intro to the operator, DialCustomer
   10.0  customer answers     -> callback-intro (intro [+ reason] + menu) to the customer
   20.0  intro ends           -> the menu again at 24.0 (no dead air), then 5 s to choose
   22.0  1: Connect           |  2: operator hung up, callback-rescheduled + goodbye
  customer-first
    0.0  Started              -> DialCustomer
   10.0  customer answers     -> callback-intro
   20.0  intro ends           -> the menu again at 24.0
   22.0  1                    -> callback-connecting, DialOperator
   25.0  operator answers     -> Connect
"""

import json

import pytest
import structlog
from structlog.testing import capture_logs

from ari_app.callback.machine import (
    CUSTOMER,
    OPERATOR,
    CallbackCallMachine,
    CallbackCallState,
    Connect,
    CustomerAnswered,
    CustomerFailed,
    DialCustomer,
    DialOperator,
    DigitPressed,
    Finish,
    HangUp,
    HungUp,
    InvalidCallbackEvent,
    Note,
    OperatorAnswered,
    OperatorFailed,
    Play,
    PromptFinished,
    Started,
    StopPrompt,
    StopWaitingMusic,
    TimerFired,
    WaitingMusic,
)
from ari_app.hold.machine import DigitPressed as HoldDigitPressed

CALL = "cb-req1"
NUMBER = "+12125550100"
REASON = "callback-about-request"
ANSWER_TIMEOUT = 8.0
OPERATOR_ANSWERS = 2.0
CUSTOMER_ANSWERS = 10.0
INTRO_END = 20.0
DEADLINE = INTRO_END + 4.0  # no key: the menu is said once more (calls/pacing.py)
KEY_AT = 22.0
OPERATOR_JOINS = 25.0
OPERATOR_RING_GUARD = 30.0  # a ringing leg with no word from Asterisk past these is lost
CUSTOMER_RING_GUARD = 40.0
LOST = "no word from Asterisk on the ringing leg past its ring timeout"


def m(*prompts: str) -> tuple[str, ...]:
    """The media of etiquette prompts."""
    return tuple(f"sound:etiquette/{p}" for p in prompts)


def make() -> CallbackCallMachine:
    return CallbackCallMachine(CALL, request_id="req1", number=NUMBER, operator="PJSIP/6001",
                               answer_timeout=ANSWER_TIMEOUT,
                               operator_ring_guard=OPERATOR_RING_GUARD,
                               customer_ring_guard=CUSTOMER_RING_GUARD)


def finished(outcome: str, detail: str = "", *hung_up: str) -> list[object]:
    """What every end looks like: the parties still up hung up, a note, the outcome."""
    return [*(HangUp(p) for p in hung_up),
            Note("attempt ended", (("outcome", outcome), ("detail", detail))),
            Finish(outcome, {"detail": detail} if detail else {})]


# --- states, reached the way a real attempt reaches them -----------------------------------
def dialing_operator() -> CallbackCallMachine:
    """Agent-first, started at 0.0: the operator rings."""
    machine = make()
    machine.handle(Started(0.0, reason_prompt=REASON))
    assert machine.state is CallbackCallState.DIALING_OPERATOR
    return machine


def dialing_customer() -> CallbackCallMachine:
    """Operator answered at 2.0: the customer rings."""
    machine = dialing_operator()
    machine.handle(OperatorAnswered(OPERATOR_ANSWERS))
    assert machine.state is CallbackCallState.DIALING_CUSTOMER
    return machine


def introducing() -> CallbackCallMachine:
    """Customer answered at 10.0: callback-intro playing to them."""
    machine = dialing_customer()
    machine.handle(CustomerAnswered(CUSTOMER_ANSWERS))
    assert machine.state is CallbackCallState.INTRODUCING
    return machine


def intro_heard() -> CallbackCallMachine:
    """Intro ended at 20.0: the menu is said again at 24.0 if no key came."""
    machine = introducing()
    assert machine.handle(PromptFinished(INTRO_END, "callback-intro", party=CUSTOMER)) == []
    assert machine.get_timer() == DEADLINE
    return machine


def connected() -> CallbackCallMachine:
    """Agent-first, 1 at 22.0: operator and customer bridged."""
    machine = intro_heard()
    machine.handle(DigitPressed(KEY_AT, CUSTOMER, "1"))
    assert machine.state is CallbackCallState.CONNECTED
    return machine


def rescheduling() -> CallbackCallMachine:
    """Agent-first, 2 at 22.0: operator hung up, callback-rescheduled + goodbye playing."""
    machine = intro_heard()
    machine.handle(DigitPressed(KEY_AT, CUSTOMER, "2"))
    assert machine.state is CallbackCallState.CLOSING
    return machine


def cf_dialing_customer() -> CallbackCallMachine:
    """Customer-first, started at 0.0: the customer rings."""
    machine = make()
    machine.handle(Started(0.0, customer_first=True, reason_prompt=REASON))
    assert machine.state is CallbackCallState.DIALING_CUSTOMER
    return machine


def cf_intro_heard() -> CallbackCallMachine:
    """Customer-first: answered at 10.0, intro ended at 20.0."""
    machine = cf_dialing_customer()
    machine.handle(CustomerAnswered(CUSTOMER_ANSWERS))
    machine.handle(PromptFinished(INTRO_END, "callback-intro", party=CUSTOMER))
    assert machine.get_timer() == DEADLINE
    return machine


def joining_operator() -> CallbackCallMachine:
    """Customer-first, 1 at 22.0: callback-connecting playing, the operator rings."""
    machine = cf_intro_heard()
    machine.handle(DigitPressed(KEY_AT, CUSTOMER, "1"))
    assert machine.state is CallbackCallState.JOINING_OPERATOR
    return machine


def operator_busy() -> CallbackCallMachine:
    """Customer-first, the operator did not answer at 40.0: callback-operator-busy playing."""
    machine = joining_operator()
    machine.handle(OperatorFailed(40.0, "no answer"))
    assert machine.state is CallbackCallState.CLOSING
    return machine


def ended() -> CallbackCallMachine:
    machine = connected()
    machine.handle(HungUp(60.0, CUSTOMER))
    assert machine.state is CallbackCallState.ENDED
    return machine


# --- agent-first: the operator first ---------------------------------------------------------
def test_given_new_attempt_when_started_then_operator_dialed_first():
    machine = make()

    actions = machine.handle(Started(0.0, reason_prompt=REASON))

    assert actions == [Note("operator dialed", (("order", "agent-first"),)), DialOperator()]
    assert machine.state is CallbackCallState.DIALING_OPERATOR
    assert machine.get_timer() == OPERATOR_RING_GUARD


def test_given_operator_ringing_when_operator_answers_then_told_of_the_callback_and_customer_dialed():
    machine = dialing_operator()

    actions = machine.handle(OperatorAnswered(OPERATOR_ANSWERS))

    assert actions == [
        Note("operator answered", ()),
        Play("operator-callback-intro", m("operator-callback-intro"), party=OPERATOR),
        Note("customer dialed", ()),
        DialCustomer(),
    ]
    assert machine.state is CallbackCallState.DIALING_CUSTOMER
    assert machine.up == [OPERATOR]
    assert machine.get_timer() == OPERATOR_ANSWERS + CUSTOMER_RING_GUARD


def test_given_operator_ringing_when_operator_fails_then_operator_unavailable_and_nobody_hung_up():
    machine = dialing_operator()

    actions = machine.handle(OperatorFailed(30.0, "no answer"))

    assert actions == finished("operator-unavailable", "no answer")
    assert machine.state is CallbackCallState.ENDED
    assert machine.outcome == "operator-unavailable"


def test_given_customer_ringing_when_operator_hangs_up_then_operator_unavailable():
    machine = dialing_customer()

    actions = machine.handle(HungUp(5.0, OPERATOR))

    assert actions[-2:] == finished("operator-unavailable", "the operator hung up")
    assert HangUp(OPERATOR) not in actions  # already gone
    assert machine.state is CallbackCallState.ENDED
    assert machine.up == []


# --- the customer answers or not -------------------------------------------------------------
def test_given_customer_ringing_when_customer_answers_then_intro_reason_and_menu_played():
    machine = dialing_customer()

    actions = machine.handle(CustomerAnswered(CUSTOMER_ANSWERS))

    assert actions == [
        Note("customer answered", ()),
        Play("callback-intro", m("callback-intro", REASON, "callback-menu"), party=CUSTOMER),
    ]
    assert machine.state is CallbackCallState.INTRODUCING
    assert machine.up == [OPERATOR, CUSTOMER]
    assert machine.get_timer() is None  # the deadline starts when the intro ends


def test_given_no_reason_prompt_when_customer_answers_then_intro_and_menu_only():
    machine = make()
    machine.handle(Started(0.0))
    machine.handle(OperatorAnswered(OPERATOR_ANSWERS))

    actions = machine.handle(CustomerAnswered(CUSTOMER_ANSWERS))

    assert actions[-1] == Play("callback-intro", m("callback-intro", "callback-menu"),
                               party=CUSTOMER)


@pytest.mark.parametrize("cause", ["busy", "User busy", "BUSY"])
def test_given_customer_ringing_when_customer_busy_then_busy_and_operator_hung_up(cause):
    machine = dialing_customer()

    actions = machine.handle(CustomerFailed(30.0, cause))

    assert actions == finished("busy", cause, OPERATOR)
    assert machine.state is CallbackCallState.ENDED


@pytest.mark.parametrize("cause", ["no answer", "Normal Clearing", "Unallocated (unassigned) number"])
def test_given_customer_ringing_when_customer_fails_otherwise_then_no_answer_and_operator_hung_up(cause):
    machine = dialing_customer()

    actions = machine.handle(CustomerFailed(30.0, cause))

    assert actions == finished("no-answer", cause, OPERATOR)
    assert machine.outcome == "no-answer"


def test_given_customer_first_ringing_when_customer_busy_then_busy_and_nobody_hung_up():
    machine = cf_dialing_customer()

    assert machine.handle(CustomerFailed(30.0, "busy")) == finished("busy", "busy")


# --- the introduction -------------------------------------------------------------------------
def test_given_intro_playing_when_intro_finishes_then_answer_deadline_set_from_that_moment():
    machine = introducing()

    assert machine.handle(PromptFinished(INTRO_END, "callback-intro", party=CUSTOMER)) == []
    assert machine.state is CallbackCallState.INTRODUCING
    assert machine.get_timer() == INTRO_END + 4.0  # then the menu once more


def test_given_intro_playing_when_another_prompt_finishes_then_ignored_and_no_deadline():
    machine = introducing()

    assert machine.handle(PromptFinished(15.0, "callback-menu", party=CUSTOMER)) == []
    assert machine.handle(PromptFinished(15.0, "callback-intro", party=OPERATOR)) == []
    assert machine.get_timer() is None
    assert machine.playing[CUSTOMER] == "callback-intro"


def test_given_intro_playing_when_operator_intro_finishes_then_no_deadline():
    machine = introducing()

    assert machine.handle(PromptFinished(12.0, "operator-callback-intro", party=OPERATOR)) == []
    assert machine.get_timer() is None
    assert machine.playing == {CUSTOMER: "callback-intro"}


def test_given_intro_heard_when_timer_fires_before_deadline_then_nothing_happens():
    machine = intro_heard()

    assert machine.handle(TimerFired(DEADLINE - 0.5)) == []
    assert machine.state is CallbackCallState.INTRODUCING
    assert machine.get_timer() == DEADLINE


def test_given_intro_heard_when_no_key_then_menu_said_again_and_then_at_most_5_s_of_silence():
    machine = intro_heard()

    actions = machine.handle(TimerFired(DEADLINE))

    assert [a for a in actions if isinstance(a, Play)] == [
        Play("callback-menu", ("sound:etiquette/callback-menu",), party=CUSTOMER)]
    assert machine.state is CallbackCallState.INTRODUCING and machine.get_timer() is None
    assert machine.handle(PromptFinished(27.0, "callback-menu", party=CUSTOMER)) == []
    assert machine.get_timer() == 27.0 + 5.0


def test_given_intro_heard_when_no_key_by_deadline_then_not_reached_and_both_hung_up():
    machine = intro_heard()
    machine.handle(TimerFired(DEADLINE))
    machine.handle(PromptFinished(27.0, "callback-menu", party=CUSTOMER))

    actions = machine.handle(TimerFired(machine.get_timer()))

    assert actions == finished("not-reached", "no key pressed after the introduction",
                               OPERATOR, CUSTOMER)
    assert machine.state is CallbackCallState.ENDED
    assert machine.get_timer() is None


def test_given_intro_playing_when_customer_hangs_up_then_not_reached_and_operator_hung_up():
    machine = introducing()

    actions = machine.handle(HungUp(12.0, CUSTOMER))

    assert actions == finished("not-reached", "the customer hung up before talking", OPERATOR)
    assert machine.state is CallbackCallState.ENDED


def test_given_intro_heard_when_customer_hangs_up_then_not_reached():
    machine = intro_heard()

    assert machine.handle(HungUp(24.0, CUSTOMER))[-1] == Finish(
        "not-reached", {"detail": "the customer hung up before talking"})
    assert machine.get_timer() is None


@pytest.mark.parametrize("digit", ["3", "9", "0", "*", "#"])
def test_given_intro_heard_when_other_key_pressed_then_ignored_and_deadline_kept(digit):
    machine = intro_heard()

    assert machine.handle(DigitPressed(KEY_AT, CUSTOMER, digit)) == []
    assert machine.state is CallbackCallState.INTRODUCING
    assert machine.get_timer() == DEADLINE


@pytest.mark.parametrize("digit", ["1", "2"])
def test_given_intro_heard_when_operator_presses_key_then_ignored(digit):
    machine = intro_heard()
    before = machine.to_dict()

    assert machine.handle(DigitPressed(KEY_AT, OPERATOR, digit)) == []
    assert machine.to_dict() == before


# --- 1: talk now ------------------------------------------------------------------------------
def test_given_intro_heard_when_customer_presses_1_then_connected_and_deadline_cleared():
    machine = intro_heard()

    actions = machine.handle(DigitPressed(KEY_AT, CUSTOMER, "1"))

    assert actions == [Note("customer chose", (("choice", "talk now"),)),
                       Note("connected", ()), Connect()]
    assert machine.state is CallbackCallState.CONNECTED
    assert machine.get_timer() is None


def test_given_intro_still_playing_when_customer_presses_1_then_connected_at_once():
    machine = introducing()

    assert machine.handle(DigitPressed(14.0, CUSTOMER, "1"))[-1] == Connect()
    assert machine.state is CallbackCallState.CONNECTED


def test_given_connected_when_intro_finishes_late_then_no_deadline():
    machine = introducing()
    machine.handle(DigitPressed(14.0, CUSTOMER, "1"))

    assert machine.handle(PromptFinished(INTRO_END, "callback-intro", party=CUSTOMER)) == []
    assert machine.get_timer() is None
    assert machine.state is CallbackCallState.CONNECTED


def test_given_connected_when_customer_hangs_up_then_connected_and_operator_hung_up():
    machine = connected()

    actions = machine.handle(HungUp(300.0, CUSTOMER))

    assert actions == finished("connected", "customer hung up", OPERATOR)
    assert machine.state is CallbackCallState.ENDED
    assert machine.outcome == "connected"


def test_given_connected_when_operator_hangs_up_then_connected_and_customer_hung_up():
    machine = connected()

    actions = machine.handle(HungUp(300.0, OPERATOR))

    assert actions == finished("connected", "operator hung up", CUSTOMER)
    assert machine.state is CallbackCallState.ENDED


def test_given_connected_when_timer_fires_or_keys_pressed_then_nothing_happens():
    machine = connected()
    before = machine.to_dict()

    assert machine.handle(TimerFired(DEADLINE)) == []
    assert machine.handle(DigitPressed(30.0, CUSTOMER, "2")) == []
    assert machine.to_dict() == before


# --- 2: another time --------------------------------------------------------------------------
def test_given_intro_heard_when_customer_presses_2_then_operator_hung_up_and_customer_told_goodbye():
    machine = intro_heard()

    actions = machine.handle(DigitPressed(KEY_AT, CUSTOMER, "2"))

    assert actions == [
        Note("customer chose", (("choice", "another time"),)),
        HangUp(OPERATOR),
        Note("closing", (("outcome", "rescheduled"), ("detail", "the customer chose another time"))),
        Play("callback-rescheduled", m("callback-rescheduled", "goodbye"), party=CUSTOMER),
    ]
    assert machine.state is CallbackCallState.CLOSING
    assert machine.get_timer() is None


def test_given_rescheduled_goodbye_playing_when_it_finishes_then_rescheduled_and_customer_hung_up():
    machine = rescheduling()

    actions = machine.handle(PromptFinished(27.0, "callback-rescheduled", party=CUSTOMER))

    assert actions[-1] == Finish("rescheduled")
    assert HangUp(CUSTOMER) in actions
    assert machine.state is CallbackCallState.ENDED
    assert machine.outcome == "rescheduled"


def test_given_rescheduled_goodbye_playing_when_operator_leg_ends_then_goodbye_keeps_playing():
    # The operator's leg was hung up by the machine itself; its end must not cut the customer's
    # goodbye short nor turn "another time" into "operator-unavailable".
    machine = rescheduling()

    assert machine.handle(HungUp(22.5, OPERATOR)) == []
    assert machine.state is CallbackCallState.CLOSING

    actions = machine.handle(PromptFinished(27.0, "callback-rescheduled", party=CUSTOMER))

    assert actions == finished("rescheduled", "", CUSTOMER)


def test_given_rescheduled_goodbye_playing_when_customer_hangs_up_then_rescheduled():
    machine = rescheduling()
    machine.handle(HungUp(22.5, OPERATOR))

    actions = machine.handle(HungUp(24.0, CUSTOMER))

    assert actions == finished("rescheduled")
    assert machine.state is CallbackCallState.ENDED


def test_given_rescheduled_goodbye_playing_when_stale_prompt_finishes_then_ignored():
    machine = rescheduling()

    assert machine.handle(PromptFinished(23.0, "callback-intro", party=CUSTOMER)) == []
    assert machine.handle(PromptFinished(23.0, "callback-rescheduled", party=OPERATOR)) == []
    assert machine.state is CallbackCallState.CLOSING


def test_given_rescheduled_goodbye_playing_when_keys_or_timer_then_nothing_happens():
    machine = rescheduling()
    before = machine.to_dict()

    assert machine.handle(DigitPressed(23.0, CUSTOMER, "1")) == []
    assert machine.handle(TimerFired(DEADLINE)) == []
    assert machine.to_dict() == before


# --- customer-first ---------------------------------------------------------------------------
def test_given_customer_first_when_started_then_customer_dialed_first():
    machine = make()

    actions = machine.handle(Started(0.0, customer_first=True, reason_prompt=REASON))

    assert actions == [Note("customer dialed", (("order", "customer-first"),)), DialCustomer()]
    assert machine.state is CallbackCallState.DIALING_CUSTOMER
    assert machine.customer_first is True


def test_given_customer_first_when_customer_answers_then_intro_played_without_operator():
    machine = cf_dialing_customer()

    actions = machine.handle(CustomerAnswered(CUSTOMER_ANSWERS))

    assert actions == [Note("customer answered", ()),
                       Play("callback-intro", m("callback-intro", REASON, "callback-menu"),
                            party=CUSTOMER)]
    assert machine.up == [CUSTOMER]


def test_given_customer_first_intro_heard_when_customer_presses_1_then_connecting_and_operator_dialed():
    machine = cf_intro_heard()

    actions = machine.handle(DigitPressed(KEY_AT, CUSTOMER, "1"))

    assert actions == [Note("customer chose", (("choice", "talk now"),)),
                       Play("callback-connecting", m("callback-connecting"), party=CUSTOMER),
                       DialOperator()]
    assert machine.state is CallbackCallState.JOINING_OPERATOR
    assert machine.get_timer() == KEY_AT + OPERATOR_RING_GUARD


def test_given_operator_ringing_for_customer_when_operator_answers_then_connected():
    machine = joining_operator()

    actions = machine.handle(OperatorAnswered(OPERATOR_JOINS))

    assert actions == [Note("operator answered", ()),
                       Play("operator-callback-intro", m("operator-callback-intro"),
                            party=OPERATOR),
                       Note("connected", ()), Connect()]
    assert machine.state is CallbackCallState.CONNECTED
    assert machine.up == [CUSTOMER, OPERATOR]


@pytest.mark.parametrize("first, digit, then", [
    (False, "2", "callback-rescheduled"), (True, "1", "callback-connecting")])
def test_given_the_introduction_playing_when_a_key_answers_it_then_it_stops_and_the_answer_is_heard(
        first, digit, then):
    machine = make()
    machine.handle(Started(0.0, customer_first=first, reason_prompt=REASON))
    if not first:
        machine.handle(OperatorAnswered(OPERATOR_ANSWERS))
    machine.handle(CustomerAnswered(CUSTOMER_ANSWERS))

    actions = machine.handle(DigitPressed(CUSTOMER_ANSWERS + 1, CUSTOMER, digit))

    stop = actions.index(StopPrompt(CUSTOMER))
    assert [a.prompt for a in actions[stop:] if isinstance(a, Play)][0] == then


def test_given_connecting_said_when_operator_still_rings_then_the_customer_hears_music():
    machine = joining_operator()

    assert machine.handle(PromptFinished(KEY_AT + 3, "callback-connecting",
                                         party=CUSTOMER)) == [WaitingMusic(CUSTOMER)]
    assert machine.state is CallbackCallState.JOINING_OPERATOR


def test_given_music_while_operator_rang_when_operator_answers_then_music_stops_and_connected():
    machine = joining_operator()
    machine.handle(PromptFinished(KEY_AT + 3, "callback-connecting", party=CUSTOMER))

    actions = machine.handle(OperatorAnswered(OPERATOR_JOINS))

    assert actions == [Note("operator answered", ()),
                       Play("operator-callback-intro", m("operator-callback-intro"),
                            party=OPERATOR),
                       StopWaitingMusic(CUSTOMER), Note("connected", ()), Connect()]


def test_given_music_while_operator_rang_when_nobody_answers_then_music_stops_for_the_apology():
    machine = joining_operator()
    machine.handle(PromptFinished(KEY_AT + 3, "callback-connecting", party=CUSTOMER))

    actions = machine.handle(OperatorFailed(40.0, "no answer"))

    assert actions[0] == StopWaitingMusic(CUSTOMER)
    assert actions[-1].prompt == "callback-operator-busy"
    assert machine.state is CallbackCallState.CLOSING


def test_given_customer_first_connected_when_operator_hangs_up_then_connected():
    machine = joining_operator()
    machine.handle(OperatorAnswered(OPERATOR_JOINS))

    assert machine.handle(HungUp(200.0, OPERATOR)) == finished("connected", "operator hung up",
                                                                CUSTOMER)


def test_given_operator_ringing_for_customer_when_operator_fails_then_customer_told_operator_busy():
    machine = joining_operator()

    actions = machine.handle(OperatorFailed(40.0, "no answer"))

    assert actions == [
        Note("closing", (("outcome", "operator-unavailable"), ("detail", "no answer"))),
        Play("callback-operator-busy", m("callback-operator-busy", "goodbye"), party=CUSTOMER),
    ]
    assert machine.state is CallbackCallState.CLOSING


def test_given_operator_busy_playing_when_connecting_prompt_finishes_late_then_ignored():
    machine = operator_busy()

    assert machine.handle(PromptFinished(41.0, "callback-connecting", party=CUSTOMER)) == []
    assert machine.state is CallbackCallState.CLOSING


def test_given_operator_busy_playing_when_it_finishes_then_operator_unavailable_and_customer_hung_up():
    machine = operator_busy()

    actions = machine.handle(PromptFinished(45.0, "callback-operator-busy", party=CUSTOMER))

    assert actions == finished("operator-unavailable", "", CUSTOMER)
    assert machine.state is CallbackCallState.ENDED
    assert machine.outcome == "operator-unavailable"


def test_given_operator_busy_playing_when_customer_hangs_up_then_operator_unavailable():
    machine = operator_busy()

    assert machine.handle(HungUp(42.0, CUSTOMER)) == finished("operator-unavailable")


def test_given_customer_first_ringing_when_operator_hangs_up_then_ignored():
    machine = cf_dialing_customer()

    assert machine.handle(HungUp(3.0, OPERATOR)) == []
    assert machine.state is CallbackCallState.DIALING_CUSTOMER


def test_given_customer_first_when_no_key_by_deadline_then_not_reached_and_customer_hung_up():
    machine = cf_intro_heard()
    machine.handle(TimerFired(DEADLINE))  # the menu once more
    machine.handle(PromptFinished(27.0, "callback-menu", party=CUSTOMER))

    assert machine.handle(TimerFired(machine.get_timer())) == finished(
        "not-reached", "no key pressed after the introduction", CUSTOMER)


def test_given_customer_first_when_customer_presses_2_then_goodbye_without_operator():
    machine = cf_intro_heard()

    actions = machine.handle(DigitPressed(KEY_AT, CUSTOMER, "2"))

    assert HangUp(OPERATOR) not in actions
    assert actions[-1] == Play("callback-rescheduled", m("callback-rescheduled", "goodbye"),
                               party=CUSTOMER)
    assert machine.handle(PromptFinished(27.0, "callback-rescheduled", party=CUSTOMER)) == finished(
        "rescheduled", "", CUSTOMER)


# --- late or misplaced events -----------------------------------------------------------------
def test_given_customer_ringing_when_operator_answers_again_then_that_leg_hung_up():
    machine = dialing_customer()

    assert machine.handle(OperatorAnswered(4.0)) == [HangUp(OPERATOR)]
    assert machine.state is CallbackCallState.DIALING_CUSTOMER


def test_given_operator_ringing_when_customer_answers_then_that_leg_hung_up():
    machine = dialing_operator()

    assert machine.handle(CustomerAnswered(4.0)) == [HangUp(CUSTOMER)]
    assert machine.state is CallbackCallState.DIALING_OPERATOR
    assert machine.up == []


def test_given_introducing_when_operator_or_customer_fails_late_then_ignored():
    machine = introducing()
    before = machine.to_dict()

    assert machine.handle(OperatorFailed(12.0, "no answer")) == []
    assert machine.handle(CustomerFailed(12.0, "busy")) == []
    assert machine.to_dict() == before


def test_given_no_deadline_when_timer_fires_then_nothing_happens():
    machine = introducing()

    assert machine.handle(TimerFired(500.0)) == []
    assert machine.state is CallbackCallState.INTRODUCING


# --- ended ------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", [
    Started(70.0), OperatorAnswered(70.0), OperatorFailed(70.0, "x"), CustomerAnswered(70.0),
    CustomerFailed(70.0, "busy"), PromptFinished(70.0, "callback-intro", party=CUSTOMER),
    DigitPressed(70.0, CUSTOMER, "1"), TimerFired(70.0), HungUp(70.0, OPERATOR),
    HungUp(70.0, CUSTOMER)], ids=lambda e: type(e).__name__)
def test_given_ended_when_any_event_then_no_op(event):
    machine = ended()
    before = machine.to_dict()

    assert machine.handle(event) == []
    assert machine.to_dict() == before


# --- unknown events ---------------------------------------------------------------------------
@pytest.mark.parametrize("event", [object(), "TimerFired", {"now": 1.0}, Finish("connected"),
                                   HoldDigitPressed(1.0, "1")],
                         ids=["object", "str", "dict", "an-output", "hold-DigitPressed"])
def test_given_attempt_when_foreign_event_then_invalid_callback_event(event):
    machine = introducing()

    with pytest.raises(InvalidCallbackEvent):
        machine.handle(event)


def test_given_ended_when_foreign_event_then_still_invalid_callback_event():
    machine = ended()

    with pytest.raises(InvalidCallbackEvent):
        machine.handle(HoldDigitPressed(80.0, "1"))


# --- logging ----------------------------------------------------------------------------------
def test_given_agent_first_attempt_when_it_runs_then_transitions_logged_through_choke_point():
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        connected().handle(HungUp(60.0, OPERATOR))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "callback call transition"]
    assert transitions == [("dialing_operator", "dialing_customer"),
                           ("dialing_customer", "introducing"), ("introducing", "connected"),
                           ("connected", "ended")]


# --- persistence ------------------------------------------------------------------------------
def drive(machine: CallbackCallMachine, now: float, digits: str,
          operator_answers: bool = True) -> list[tuple]:
    """Play the rest of the attempt: legs answer 2 s after the last step, prompts end 3 s after,
    customer keys 1 s apart, the deadline fires on time, and once connected the customer hangs
    up 60 s later. Returns what happened at each step."""
    keys, trace = list(digits), []
    for _ in range(50):
        state = machine.state
        if state is CallbackCallState.ENDED:
            return trace
        if state is CallbackCallState.DIALING_OPERATOR:
            now += 2.0
            event = OperatorAnswered(now) if operator_answers else OperatorFailed(now, "no answer")
        elif state is CallbackCallState.DIALING_CUSTOMER:
            now += 2.0
            event = CustomerAnswered(now)
        elif state is CallbackCallState.JOINING_OPERATOR:
            now += 2.0
            event = OperatorAnswered(now) if operator_answers else OperatorFailed(now, "no answer")
        elif state is CallbackCallState.CONNECTED:
            now += 60.0
            event = HungUp(now, CUSTOMER)
        elif CUSTOMER in machine.playing:
            now += 3.0
            event = PromptFinished(now, machine.playing[CUSTOMER], party=CUSTOMER)
        elif keys:
            now += 1.0
            event = DigitPressed(now, CUSTOMER, keys.pop(0))
        else:
            now = max(now, machine.get_timer())
            event = TimerFired(now)
        trace.append((event, machine.handle(event), machine.get_timer(), machine.state))
    raise AssertionError("the attempt never ended")


@pytest.mark.parametrize("reach, now, digits, operator_answers", [
    (dialing_operator, 0.0, "1", True),
    (dialing_operator, 0.0, "", False),
    (dialing_customer, OPERATOR_ANSWERS, "2", True),
    (introducing, CUSTOMER_ANSWERS, "1", True),
    (intro_heard, INTRO_END, "", True),
    (intro_heard, INTRO_END, "32", True),
    (rescheduling, KEY_AT, "", True),
    (connected, KEY_AT, "", True),
    (cf_dialing_customer, 0.0, "1", True),
    (cf_intro_heard, INTRO_END, "1", False),
    (joining_operator, KEY_AT, "", True),
    (joining_operator, KEY_AT, "", False),
    (operator_busy, 40.0, "", True),
], ids=lambda v: getattr(v, "__name__", None))
def test_given_attempt_stored_mid_way_when_restored_then_it_continues_identically(
        reach, now, digits, operator_answers):
    original = reach()
    restored = CallbackCallMachine.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original

    expected = drive(original, now, digits, operator_answers)
    actual = drive(restored, now, digits, operator_answers)

    assert actual == expected
    assert isinstance(expected[-1][1][-1], Finish)
    assert restored.to_dict() == original.to_dict()


def test_given_intro_heard_when_stored_as_json_then_deadline_and_legs_survive():
    data = json.loads(json.dumps(intro_heard().to_dict()))

    machine = CallbackCallMachine.from_dict(data)

    assert data["state"] == "introducing"
    assert machine.state is CallbackCallState.INTRODUCING
    assert machine.get_timer() == DEADLINE
    assert machine.up == [OPERATOR, CUSTOMER]
    assert machine.playing == {OPERATOR: "operator-callback-intro"}
    machine.handle(TimerFired(DEADLINE))  # the menu once more
    machine.handle(PromptFinished(27.0, "callback-menu", party=CUSTOMER))
    assert machine.handle(TimerFired(machine.get_timer()))[-1] == Finish(
        "not-reached", {"detail": "no key pressed after the introduction"})


def test_given_customer_ringing_when_operator_hangs_up_then_customer_leg_cancelled_too():
    machine = dialing_customer()

    actions = machine.handle(HungUp(5.0, OPERATOR))

    assert HangUp(CUSTOMER) in actions, "nobody may answer into an attempt that is over"
    assert actions[-1] == Finish("operator-unavailable", {"detail": "the operator hung up"})


# --- a ringing leg Asterisk never says a word about (restarted, or the app not connected) -----
def test_given_operator_ringing_when_no_word_past_its_ring_guard_then_hung_up_and_unavailable():
    machine = dialing_operator()

    assert machine.handle(TimerFired(OPERATOR_RING_GUARD - 1)) == []
    actions = machine.handle(TimerFired(OPERATOR_RING_GUARD))

    assert actions == [HangUp(OPERATOR), *finished("operator-unavailable", LOST)]
    assert machine.state is CallbackCallState.ENDED and machine.get_timer() is None


def test_given_customer_ringing_when_no_word_past_its_ring_guard_then_no_answer_and_both_hung_up():
    machine = dialing_customer()

    actions = machine.handle(TimerFired(OPERATOR_ANSWERS + CUSTOMER_RING_GUARD))

    assert actions == [HangUp(CUSTOMER), *finished("no-answer", LOST, OPERATOR)]
    assert machine.state is CallbackCallState.ENDED


def test_given_customer_first_operator_ringing_when_no_word_past_its_guard_then_customer_told():
    machine = joining_operator()

    actions = machine.handle(TimerFired(KEY_AT + OPERATOR_RING_GUARD))

    assert actions == [
        HangUp(OPERATOR),
        Note("closing", (("outcome", "operator-unavailable"), ("detail", LOST))),
        Play("callback-operator-busy", m("callback-operator-busy", "goodbye"), party=CUSTOMER),
    ]
    assert machine.state is CallbackCallState.CLOSING and machine.get_timer() is None


def test_given_customer_answered_when_the_ring_guard_would_have_fired_then_nothing_happens():
    machine = introducing()

    assert machine.get_timer() is None
    assert machine.handle(TimerFired(OPERATOR_ANSWERS + CUSTOMER_RING_GUARD)) == []
    assert machine.state is CallbackCallState.INTRODUCING


def test_given_a_snapshot_from_before_ring_guards_when_restored_then_default_guards():
    data = dialing_operator().to_dict()
    del data["operator_ring_guard"], data["customer_ring_guard"]

    restored = CallbackCallMachine.from_dict(data)

    assert restored.operator_ring_guard > 0 and restored.customer_ring_guard > 0
