"""An operator's place in the pool (ari_app/operators/machine.py): every (state, event) pair
decided on purpose, the wrap-up after a call, and who is next in line (longest idle first)."""

from __future__ import annotations

import pytest

from ari_app.calls.vocabulary import Note
from ari_app.operators.machine import (MISSED, CallEnded, InvalidTransition, LogIn, LogOut,
                                       Missed, OperatorMachine, OperatorState, Pause, Unpause,
                                       next_in_line)

OP1, OP2, OP3 = "PJSIP/operator1", "PJSIP/operator2", "PJSIP/operator3"
IN, PAUSED, OUT = OperatorState.LOGGED_IN, OperatorState.PAUSED, OperatorState.LOGGED_OUT
WRAP_UP = 5.0


def op(state: OperatorState = IN, reason: str | None = None, since: float | None = None,
       ended: float | None = None, endpoint: str = OP1) -> OperatorMachine:
    return OperatorMachine(endpoint, state, reason, since, ended)


# --- never seen -------------------------------------------------------------------------------
def test_given_login_not_required_when_never_seen_then_logged_in_and_idle_the_longest():
    fresh = OperatorMachine.fresh(OP1, login_required=False)

    assert (fresh.state, fresh.since, fresh.idle_since) == (IN, None, 0.0)
    assert fresh.offered(now=0.0, wrap_up=WRAP_UP)


def test_given_login_required_when_never_seen_then_logged_out_and_not_offered():
    fresh = OperatorMachine.fresh(OP1, login_required=True)

    assert fresh.state is OUT
    assert not fresh.offered(now=0.0, wrap_up=WRAP_UP)


# --- transitions ------------------------------------------------------------------------------
@pytest.mark.parametrize(("start", "event", "state", "reason", "notes"), [
    (op(OUT), LogIn(10.0, "feature-code"), IN, None,
     [Note("logged in", (("source", "feature-code"),))]),
    (op(IN), LogOut(10.0), OUT, None, [Note("logged out", (("source", "rest"),))]),
    (op(PAUSED, "break"), LogOut(10.0), OUT, None, [Note("logged out", (("source", "rest"),))]),
    (op(IN), Pause(10.0, "break"), PAUSED, "break",
     [Note("paused", (("reason", "break"), ("source", "rest")))]),
    (op(IN), Pause(10.0, None), PAUSED, None, [Note("paused", (("source", "rest"),))]),
    (op(PAUSED, "break"), Pause(10.0, "meeting"), PAUSED, "meeting",
     [Note("paused", (("reason", "meeting"), ("source", "rest")))]),
    (op(PAUSED, MISSED), Unpause(10.0), IN, None,
     [Note("unpaused", (("reason", MISSED), ("source", "rest")))]),
    (op(IN), Missed(10.0, "call-1"), PAUSED, MISSED,
     [Note("paused", (("reason", MISSED), ("source", "app"), ("call", "call-1")))]),
])
def test_given_state_when_event_then_new_state_since_now_and_one_note(start, event, state,
                                                                      reason, notes):
    assert start.handle(event) == notes
    assert (start.state, start.reason, start.since) == (state, reason, 10.0)


@pytest.mark.parametrize(("start", "event"), [
    (op(IN, since=1.0), LogIn(10.0)),                 # a harmless repeat
    (op(OUT, since=1.0), LogOut(10.0)),
    (op(IN, since=1.0), Unpause(10.0)),
    (op(PAUSED, "break", since=1.0), Pause(10.0, "break")),
    (op(PAUSED, "break", since=1.0), Missed(10.0, "call-1")),  # their own pause stands
    (op(OUT, since=1.0), Missed(10.0, "call-1")),     # logged out while it rang
])
def test_given_state_when_event_changes_nothing_then_no_note_and_since_kept(start, event):
    before = start.to_dict()

    assert start.handle(event) == []
    assert start.to_dict() == before


@pytest.mark.parametrize(("start", "event", "why"), [
    (op(PAUSED, "break"), LogIn(10.0), "unpause"),
    (op(OUT), Pause(10.0, "break"), "log in first"),
    (op(OUT), Unpause(10.0), "log in first"),
])
def test_given_state_when_event_impossible_then_invalid_and_unchanged(start, event, why):
    before = start.to_dict()

    with pytest.raises(InvalidTransition, match=why):
        start.handle(event)
    assert start.to_dict() == before


def test_given_not_an_operator_event_when_handled_then_invalid():
    with pytest.raises(InvalidTransition):
        op().handle(object())


# --- wrap-up ----------------------------------------------------------------------------------
def test_given_call_ended_when_within_wrap_up_then_not_offered_until_it_is_over():
    machine = op(IN, since=0.0)

    assert machine.handle(CallEnded(100.0, "call-1")) == [Note("call ended", (("call", "call-1"),))]
    assert machine.state is IN and machine.since == 0.0  # a call's end is no state change
    assert machine.wrap_up_until(WRAP_UP) == 105.0
    assert not machine.offered(now=104.9, wrap_up=WRAP_UP)
    assert machine.offered(now=105.0, wrap_up=WRAP_UP)


def test_given_wrap_up_zero_when_call_just_ended_then_offered_at_once():
    machine = op(IN, ended=100.0)

    assert machine.wrap_up_until(0) is None
    assert machine.offered(now=100.0, wrap_up=0)


def test_given_paused_when_wrap_up_over_then_still_not_offered():
    assert not op(PAUSED, "break", ended=0.0).offered(now=1000.0, wrap_up=WRAP_UP)


def test_given_wrap_up_running_when_public_dict_then_until_shown_and_gone_after():
    machine = op(IN, since=1.0, ended=100.0)

    assert machine.to_public_dict(WRAP_UP, now=102.0) == {
        "endpoint": OP1, "state": "logged_in", "reason": None, "since": 1.0,
        "last_call_ended_at": 100.0, "wrap_up_until": 105.0}
    assert machine.to_public_dict(WRAP_UP, now=106.0)["wrap_up_until"] is None


# --- next in line -----------------------------------------------------------------------------
def test_given_never_seen_operators_when_next_in_line_then_the_policy_order():
    fresh = [OperatorMachine.fresh(e, False) for e in (OP1, OP2, OP3)]

    assert next_in_line(fresh, now=50.0, wrap_up=WRAP_UP) == [OP1, OP2, OP3]


def test_given_calls_ended_at_different_times_when_next_in_line_then_longest_idle_first():
    operators = [op(ended=30.0, endpoint=OP1), op(ended=10.0, endpoint=OP2),
                 op(ended=20.0, endpoint=OP3)]

    assert next_in_line(operators, now=100.0, wrap_up=WRAP_UP) == [OP2, OP3, OP1]


def test_given_operator_back_from_pause_when_next_in_line_then_idle_counts_from_the_unpause():
    back = op(PAUSED, "break", since=5.0, ended=10.0, endpoint=OP1)
    back.handle(Unpause(60.0))
    other = op(ended=40.0, endpoint=OP2)

    assert back.idle_since == 60.0
    assert next_in_line([back, other], now=100.0, wrap_up=WRAP_UP) == [OP2, OP1]


def test_given_paused_logged_out_or_in_wrap_up_when_next_in_line_then_left_out():
    operators = [op(PAUSED, "break", endpoint=OP1), op(OUT, endpoint=OP2),
                 op(ended=98.0, endpoint=OP3)]

    assert next_in_line(operators, now=100.0, wrap_up=WRAP_UP) == []
    assert next_in_line(operators, now=103.0, wrap_up=WRAP_UP) == [OP3]


# --- persistence ------------------------------------------------------------------------------
def test_given_machine_when_snapshot_round_trip_then_equal():
    machine = op(PAUSED, MISSED, since=12.5, ended=3.0)

    assert OperatorMachine.from_dict(machine.to_dict()) == machine
    assert machine.to_dict()["state"] == "paused"
