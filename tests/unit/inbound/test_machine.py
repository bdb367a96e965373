"""InboundMachine: events in (each with `now`), actions out, one deadline.

Fake clock in the aioquic way: `now` starts at 0.0, is moved by hand, and timers are fired by
jumping to `get_timer()`. No event loop, no mocks.
"""

import json

import pytest
import structlog
from structlog.testing import capture_logs

from ari_app.inbound.machine import (
    CALLER,
    HOLD_BRIDGE,
    OPERATOR,
    TALK_BRIDGE,
    AddToBridge,
    Answer,
    CallerArrived,
    CallerHungUp,
    CreateBridge,
    DestroyBridge,
    DialOperator,
    FindOperator,
    Finish,
    HangUp,
    InboundMachine,
    InboundState,
    InvalidTransition,
    NoOperatorFree,
    OperatorAnswered,
    OperatorFailed,
    OperatorFound,
    OperatorHungUp,
    Play,
    PromptFinished,
    ReleaseOperator,
    Ring,
    StartBridgeMoh,
    StopRinging,
    TimerFired,
)

OP1, OP2 = "PJSIP/op1", "PJSIP/op2"
OP1_CHANNEL = "call-1;op1"
RETRY = 3.0
MUSIC = [CreateBridge(HOLD_BRIDGE, "holding"), AddToBridge(HOLD_BRIDGE, CALLER),
         StartBridgeMoh(HOLD_BRIDGE)]
TALK = [CreateBridge(TALK_BRIDGE, "mixing"), AddToBridge(TALK_BRIDGE, CALLER),
        AddToBridge(TALK_BRIDGE, OPERATOR)]


def make(**kwargs) -> InboundMachine:
    kwargs.setdefault("seek_retry", RETRY)
    return InboundMachine("call-1", **kwargs)


def greeted(machine: InboundMachine, now: float = 0.0) -> float:
    """Caller arrives at `now` and hears every greeting prompt; returns the new `now`."""
    machine.handle(CallerArrived(now, number="+12125550100", name="Ada"))
    now += 4.0
    machine.handle(PromptFinished(now, "greeting"))
    if machine.recording_notice:
        now += 5.0
        machine.handle(PromptFinished(now, "recording-notice"))
    assert machine.state is InboundState.SEEKING_OPERATOR
    return now


def waiting_busy_prompt(machine: InboundMachine, now: float = 0.0) -> float:
    """Greeted, nobody free: WAITING while the all-operators-busy prompt plays."""
    now = greeted(machine, now)
    assert machine.handle(NoOperatorFree(now)) == [Play("all-operators-busy")]
    return now


def waiting_with_music(machine: InboundMachine, now: float = 0.0) -> float:
    """Greeted, nobody free, busy prompt done: WAITING in the holding bridge with music."""
    now = waiting_busy_prompt(machine, now)
    now += 2.0
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == MUSIC
    return now


def ringing(machine: InboundMachine, now: float = 0.0) -> float:
    now = greeted(machine, now)
    machine.handle(OperatorFound(now, OP1))
    assert machine.state is InboundState.RINGING_OPERATOR
    return now


def connected(machine: InboundMachine, now: float = 0.0) -> float:
    now = ringing(machine, now) + 6.0
    machine.handle(OperatorAnswered(now, OP1_CHANNEL))
    assert machine.state is InboundState.CONNECTED
    return now


# --- greeting -------------------------------------------------------------------------------
def test_given_recorded_calls_when_caller_arrives_then_answer_and_greet_first():
    machine = make()
    now = 0.0

    assert machine.handle(CallerArrived(now, number="+12125550100", name="Ada")) == [
        Answer(), Play("greeting")]
    assert machine.state is InboundState.GREETING
    assert machine.get_timer() is None


def test_given_happy_path_when_operator_answers_then_exact_actions_at_each_step():
    machine = make()
    now = 0.0
    assert machine.handle(CallerArrived(now, number="+12125550100")) == [Answer(), Play("greeting")]

    now += 4.0
    assert machine.handle(PromptFinished(now, "greeting")) == [Play("recording-notice")]
    assert machine.state is InboundState.GREETING

    now += 5.0
    assert machine.handle(PromptFinished(now, "recording-notice")) == [FindOperator(())]
    assert machine.state is InboundState.SEEKING_OPERATOR

    assert machine.handle(OperatorFound(now, OP1)) == [Ring(), DialOperator(OP1, 1)]
    assert machine.state is InboundState.RINGING_OPERATOR
    assert machine.get_timer() is None

    now += 6.0
    assert machine.handle(OperatorAnswered(now, OP1_CHANNEL)) == [StopRinging(), *TALK]
    assert machine.state is InboundState.CONNECTED
    assert machine.operator_channel == OP1_CHANNEL
    assert machine.get_timer() is None

    now += 120.0
    assert machine.handle(CallerHungUp(now)) == [
        HangUp(OPERATOR), ReleaseOperator(OP1, "call"), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_recording_notice_off_when_greeting_finishes_then_seek_operator_at_once():
    machine = make(recording_notice=False)
    now = 0.0
    assert machine.handle(CallerArrived(now)) == [Answer(), Play("greeting")]

    now += 4.0
    assert machine.handle(PromptFinished(now, "greeting")) == [FindOperator(())]
    assert machine.state is InboundState.SEEKING_OPERATOR


def test_given_greeting_playing_when_another_prompt_finishes_then_nothing():
    machine = make()
    machine.handle(CallerArrived(0.0))

    assert machine.handle(PromptFinished(1.0, "recording-notice")) == []
    assert machine.state is InboundState.GREETING
    assert machine.playing == "greeting"


def test_given_caller_arrived_when_stasis_start_replayed_then_nothing():
    machine = make()
    now = 1.0
    machine.handle(CallerArrived(now))

    now += 4.0
    machine.handle(PromptFinished(now, "greeting"))
    assert machine.handle(CallerArrived(now, number="+12125550100")) == []
    assert machine.playing == "recording-notice"


def test_given_caller_arrived_at_time_zero_when_stasis_start_replayed_then_nothing():
    machine = make()
    now = 0.0
    machine.handle(CallerArrived(now))

    now += 1.0
    assert machine.handle(CallerArrived(now)) == []


# --- nobody free: busy prompt, then music, retry on the timer --------------------------------
def test_given_no_operator_free_when_seeking_then_busy_prompt_and_no_music_yet():
    machine = make()
    now = greeted(machine)

    assert machine.handle(NoOperatorFree(now)) == [Play("all-operators-busy")]
    assert machine.state is InboundState.WAITING
    assert machine.bridges == []
    assert machine.get_timer() == now + RETRY


def test_given_busy_prompt_playing_when_it_finishes_then_music_in_holding_bridge():
    machine = make()
    now = waiting_busy_prompt(machine)

    now += 2.0
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == MUSIC
    assert machine.bridges == [HOLD_BRIDGE]
    # a repeated PlaybackFinished does not build a second bridge
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == []


def test_given_waiting_when_timer_fires_before_deadline_then_nothing():
    machine = make()
    waiting_with_music(machine)
    deadline = machine.get_timer()

    assert machine.handle(TimerFired(deadline - 0.01)) == []
    assert machine.get_timer() == deadline


def test_given_waiting_when_timer_fires_at_deadline_then_find_operator_again():
    machine = make()
    waiting_with_music(machine)

    now = machine.get_timer()
    assert machine.handle(TimerFired(now)) == [FindOperator(())]
    assert machine.get_timer() is None
    assert machine.state is InboundState.WAITING


def test_given_waiting_when_still_nobody_free_then_rearm_timer_silently():
    machine = make()
    waiting_with_music(machine)
    now = machine.get_timer()
    machine.handle(TimerFired(now))

    assert machine.handle(NoOperatorFree(now)) == []
    assert machine.get_timer() == now + RETRY

    now = machine.get_timer()
    assert machine.handle(TimerFired(now)) == [FindOperator(())]


def test_given_no_deadline_when_timer_fires_then_nothing():
    machine = make()
    now = ringing(machine)

    assert machine.handle(TimerFired(now + 100.0)) == []
    assert machine.state is InboundState.RINGING_OPERATOR


def test_given_music_when_operator_found_then_dial_without_ringback():
    machine = make()
    waiting_with_music(machine)
    now = machine.get_timer()
    machine.handle(TimerFired(now))

    assert machine.handle(OperatorFound(now, OP1)) == [DialOperator(OP1, 1)]
    assert machine.state is InboundState.RINGING_OPERATOR
    assert machine.get_timer() is None


def test_given_music_when_operator_answers_then_talk_bridge_and_hold_bridge_destroyed():
    machine = make()
    waiting_with_music(machine)
    now = machine.get_timer()
    machine.handle(TimerFired(now))
    machine.handle(OperatorFound(now, OP1))

    now += 5.0
    assert machine.handle(OperatorAnswered(now, OP1_CHANNEL)) == [*TALK, DestroyBridge(HOLD_BRIDGE)]
    assert machine.bridges == [TALK_BRIDGE]
    assert machine.state is InboundState.CONNECTED


# --- operators failing ------------------------------------------------------------------------
def test_given_two_operators_when_first_fails_then_try_second_before_waiting():
    machine = make(operator_count=2)
    now = greeted(machine)
    assert machine.handle(OperatorFound(now, OP1)) == [Ring(), DialOperator(OP1, 1)]

    now += 20.0
    assert machine.handle(OperatorFailed(now, "no answer")) == [
        ReleaseOperator(OP1), FindOperator((OP1,))]
    assert machine.state is InboundState.SEEKING_OPERATOR
    assert machine.get_timer() is None

    # ringback is still on: no second Ring
    assert machine.handle(OperatorFound(now, OP2)) == [DialOperator(OP2, 2)]

    now += 20.0
    assert machine.handle(OperatorFailed(now, "busy")) == [
        ReleaseOperator(OP2), StopRinging(), Play("all-operators-busy")]
    assert machine.state is InboundState.WAITING
    assert machine.get_timer() == now + RETRY


def test_given_ringing_when_phone_rang_out_then_released_as_missed_and_next_one_sought():
    machine = make(operator_count=2)
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))

    assert machine.handle(OperatorFailed(now + 15.0, "no answer", missed=True)) == [
        ReleaseOperator(OP1, "missed"), FindOperator((OP1,))]


def test_given_ringing_when_caller_hangs_up_then_operator_released_unused():
    machine = make()
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))

    assert machine.handle(CallerHungUp(now + 2.0)) == [
        HangUp(OPERATOR), ReleaseOperator(OP1, "unused"), Finish()]


def test_given_every_operator_failed_when_timer_fires_then_new_round_with_nobody_excluded():
    machine = make(operator_count=2)
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))
    machine.handle(OperatorFailed(now + 20.0, "no answer"))
    machine.handle(OperatorFound(now + 20.0, OP2))
    now += 40.0
    machine.handle(OperatorFailed(now, "no answer"))
    deadline = machine.get_timer()
    assert deadline == now + RETRY

    assert machine.handle(TimerFired(deadline - 1.0)) == []
    assert machine.handle(TimerFired(deadline)) == [FindOperator(())]


def test_given_one_operator_when_it_fails_then_stop_ringback_and_busy_prompt():
    machine = make()
    now = ringing(machine) + 20.0

    assert machine.handle(OperatorFailed(now, "no answer")) == [
        ReleaseOperator(OP1), StopRinging(), Play("all-operators-busy")]
    assert machine.state is InboundState.WAITING
    assert machine.operator is None
    assert machine.get_timer() == now + RETRY

    now += 3.0
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == MUSIC


def test_given_operator_rings_when_operator_leg_hangs_up_then_treated_as_failure():
    machine = make()
    now = ringing(machine) + 2.0

    assert machine.handle(OperatorHungUp(now)) == [
        ReleaseOperator(OP1), StopRinging(), Play("all-operators-busy")]
    assert machine.state is InboundState.WAITING


def test_given_first_of_two_operators_failed_when_nobody_else_free_then_stop_ringback():
    machine = make(operator_count=2)
    now = ringing(machine) + 20.0
    machine.handle(OperatorFailed(now, "no answer"))  # -> FindOperator((OP1,)), ringback on

    assert machine.handle(NoOperatorFree(now)) == [StopRinging(), Play("all-operators-busy")]


def test_given_busy_prompt_playing_when_operator_found_then_fails_then_music_after_prompt():
    machine = make()
    waiting_busy_prompt(machine)
    now = machine.get_timer()
    assert machine.handle(TimerFired(now)) == [FindOperator(())]
    assert machine.handle(OperatorFound(now, OP1)) == [DialOperator(OP1, 1)]

    now += 1.0  # the busy prompt is still playing
    assert machine.handle(OperatorFailed(now, "no answer")) == [ReleaseOperator(OP1)]
    assert machine.state is InboundState.WAITING
    assert machine.get_timer() == now + RETRY

    now += 1.0
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == MUSIC


def test_given_busy_prompt_ended_while_operator_rang_when_operator_fails_then_music_goes_on():
    machine = make()
    waiting_busy_prompt(machine)
    now = machine.get_timer()
    machine.handle(TimerFired(now))
    machine.handle(OperatorFound(now, OP1))
    now += 1.0
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == MUSIC

    now += 20.0
    assert machine.handle(OperatorFailed(now, "no answer")) == [ReleaseOperator(OP1)]
    assert machine.state is InboundState.WAITING
    assert machine.bridges == [HOLD_BRIDGE]


def test_given_operator_rings_during_busy_prompt_when_prompt_ends_then_caller_hears_something():
    machine = make()
    waiting_busy_prompt(machine)
    now = machine.get_timer()
    machine.handle(TimerFired(now))
    assert machine.handle(OperatorFound(now, OP1)) == [DialOperator(OP1, 1)]

    now += 1.0
    assert machine.handle(PromptFinished(now, "all-operators-busy")) == MUSIC


def test_given_operator_gave_up_when_it_answers_late_then_hang_up_operator_leg():
    machine = make()
    now = ringing(machine) + 20.0
    machine.handle(OperatorFailed(now, "no answer"))
    before = machine.to_dict()

    now += 0.5
    assert machine.handle(OperatorAnswered(now, OP1_CHANNEL)) == [HangUp(OPERATOR, OP1_CHANNEL)]
    assert machine.to_dict() == before


def test_given_seeking_second_operator_when_first_answers_late_then_hang_up_operator_leg():
    machine = make(operator_count=2)
    now = ringing(machine) + 20.0
    machine.handle(OperatorFailed(now, "no answer"))

    assert machine.handle(OperatorAnswered(now + 0.5, OP1_CHANNEL)) == [HangUp(OPERATOR, OP1_CHANNEL)]
    assert machine.state is InboundState.SEEKING_OPERATOR


def test_given_connected_when_operator_found_late_then_give_it_back():
    machine = make()
    now = connected(machine)

    assert machine.handle(OperatorFound(now, OP2)) == [ReleaseOperator(OP2)]
    assert machine.operator == OP1
    assert machine.state is InboundState.CONNECTED


def test_given_not_ringing_when_operator_failed_then_nothing():
    machine = make()
    now = waiting_with_music(machine)

    assert machine.handle(OperatorFailed(now, "stale")) == []
    assert machine.state is InboundState.WAITING


@pytest.mark.parametrize("setup", [
    lambda m: m.handle(CallerArrived(0.0)),
    ringing,
    connected,
], ids=["greeting", "ringing", "connected"])
def test_given_no_search_pending_when_no_operator_free_then_invalid_transition(setup):
    machine = make()
    setup(machine)

    with pytest.raises(InvalidTransition):
        machine.handle(NoOperatorFree(100.0))


# --- hang-ups ---------------------------------------------------------------------------------
def _seeking(m):
    greeted(m)


def _seeking_second(m):
    m.operator_count = 2
    now = ringing(m) + 20.0
    m.handle(OperatorFailed(now, "no answer"))


def _ringing_from_music(m):
    waiting_with_music(m)
    now = m.get_timer()
    m.handle(TimerFired(now))
    m.handle(OperatorFound(now, OP1))


@pytest.mark.parametrize("setup, expected", [
    (lambda m: m.handle(CallerArrived(0.0)), [Finish()]),
    (_seeking, [Finish()]),
    (_seeking_second, [Finish()]),
    (ringing, [HangUp(OPERATOR), ReleaseOperator(OP1), Finish()]),
    (waiting_busy_prompt, [Finish()]),
    (waiting_with_music, [DestroyBridge(HOLD_BRIDGE), Finish()]),
    (_ringing_from_music, [HangUp(OPERATOR), ReleaseOperator(OP1), DestroyBridge(HOLD_BRIDGE),
                           Finish()]),
    (connected, [HangUp(OPERATOR), ReleaseOperator(OP1, "call"), DestroyBridge(TALK_BRIDGE), Finish()]),
], ids=["greeting", "seeking", "seeking-second", "ringing", "waiting-busy-prompt",
        "waiting-music", "ringing-from-music", "connected"])
def test_given_state_when_caller_hangs_up_then_exact_cleanup_and_later_events_ignored(setup, expected):
    machine = make()
    setup(machine)

    assert machine.handle(CallerHungUp(200.0)) == expected
    assert machine.state is InboundState.ENDED
    assert machine.bridges == []
    assert machine.get_timer() is None
    for event in (CallerHungUp(201.0), OperatorHungUp(201.0), OperatorAnswered(201.0, OP1_CHANNEL),
                  OperatorFailed(201.0, "x"), TimerFired(1e9), PromptFinished(201.0, "greeting")):
        assert machine.handle(event) == []
    assert machine.state is InboundState.ENDED


def test_given_connected_when_operator_hangs_up_then_caller_hung_up_and_call_finished():
    machine = make()
    now = connected(machine) + 60.0

    assert machine.handle(OperatorHungUp(now)) == [
        HangUp(CALLER), ReleaseOperator(OP1, "call"), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED
    assert machine.handle(CallerHungUp(now + 0.1)) == []


@pytest.mark.parametrize("setup", [
    lambda m: m.handle(CallerArrived(0.0)), greeted, waiting_with_music,
], ids=["greeting", "seeking", "waiting"])
def test_given_no_operator_leg_when_operator_hangs_up_then_nothing(setup):
    machine = make()
    setup(machine)
    before = machine.to_dict()

    assert machine.handle(OperatorHungUp(50.0)) == []
    assert machine.to_dict() == before


@pytest.mark.parametrize("event", [
    CallerArrived(300.0), PromptFinished(300.0, "greeting"), OperatorFound(300.0, OP2),
    NoOperatorFree(300.0), OperatorAnswered(300.0, "x"), OperatorFailed(300.0, "x"),
    CallerHungUp(300.0), OperatorHungUp(300.0), TimerFired(300.0),
], ids=lambda e: type(e).__name__)
def test_given_ended_when_any_event_then_ignored(event):
    machine = make()
    now = connected(machine)
    machine.handle(CallerHungUp(now))
    before = machine.to_dict()

    assert machine.handle(event) == []
    assert machine.to_dict() == before


# --- contract ---------------------------------------------------------------------------------
def test_given_live_call_when_unknown_event_type_then_invalid_transition():
    machine = make()
    machine.handle(CallerArrived(0.0))

    with pytest.raises(InvalidTransition):
        machine.handle(object())
    with pytest.raises(InvalidTransition):
        machine.handle(Play("greeting"))  # an output is not an input


def test_given_happy_path_when_states_change_then_each_transition_logged_once():
    machine = make(recording_notice=False)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        greeted(machine)
        machine.handle(OperatorFound(4.0, OP1))
        machine.handle(OperatorAnswered(5.0, OP1_CHANNEL))
        machine.handle(CallerHungUp(6.0))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "inbound transition"]
    assert transitions == [("greeting", "seeking_operator"), ("seeking_operator", "ringing_operator"),
                           ("ringing_operator", "connected"), ("connected", "ended")]


def _script(now: float) -> list[object]:
    return [
        OperatorFound(now, OP2),
        OperatorFailed(now + 20.0, "busy"),
        PromptFinished(now + 22.0, "all-operators-busy"),
        TimerFired(now + 22.5),          # before the deadline: nothing
        TimerFired(now + 20.0 + RETRY),  # the deadline
        OperatorFound(now + 23.0, OP1),
        OperatorAnswered(now + 28.0, OP1_CHANNEL),
        OperatorHungUp(now + 90.0),
        CallerHungUp(now + 90.1),
    ]


@pytest.mark.parametrize("through_json", [False, True], ids=["dict", "json"])
def test_given_snapshot_mid_call_when_restored_then_continues_identically(through_json):
    original = make(operator_count=2, recording_notice=True)
    now = ringing(original) + 20.0
    original.handle(OperatorFailed(now, "no answer"))  # SEEKING second, ringback on, tried=[OP1]

    snapshot = original.to_dict()
    if through_json:
        snapshot = json.loads(json.dumps(snapshot))
    restored = InboundMachine.from_dict(snapshot)
    assert restored == original
    assert restored.to_dict() == original.to_dict()

    for event in _script(now):
        assert restored.handle(event) == original.handle(event)
        assert restored.to_dict() == original.to_dict()
        assert restored.get_timer() == original.get_timer()
    assert restored.state is InboundState.ENDED


def test_given_waiting_snapshot_when_restored_then_timer_and_music_survive():
    original = make()
    waiting_with_music(original)
    restored = InboundMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored.state is InboundState.WAITING
    assert restored.get_timer() == original.get_timer()
    now = restored.get_timer()
    assert restored.handle(TimerFired(now)) == [FindOperator(())]
    assert restored.handle(OperatorFound(now, OP1)) == [DialOperator(OP1, 1)]
    assert restored.handle(OperatorAnswered(now + 1.0, OP1_CHANNEL)) == [
        *TALK, DestroyBridge(HOLD_BRIDGE)]


def test_given_ended_when_not_an_inbound_event_then_still_refused():
    machine = make()
    machine.handle(CallerArrived(0.0, "+1", "", "en"))
    machine.handle(CallerHungUp(1.0))
    with pytest.raises(InvalidTransition):
        machine.handle(object())
