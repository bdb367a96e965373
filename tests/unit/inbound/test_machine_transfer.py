"""InboundMachine hand-offs to the transfer, supervisor and complaint rules.

Fake clock in the aioquic way: `now` starts at 0.0 and is moved by hand. No event loop, no mocks.
Every call here is first CONNECTED the way a real call gets there (greeting, recording notice,
OP1 found and answered at 15.0); the rules that take the caller over are not run: their
outcomes come in as TransferEnded, ComplaintEnded and HoldEnded.
"""

import json

import pytest
import structlog
from structlog.testing import capture_logs

from ari_app.inbound.machine import (
    CALLER,
    OPERATOR,
    TALK_BRIDGE,
    CallerArrived,
    CallerDigit,
    CallerHungUp,
    ComplaintEnded,
    DestroyBridge,
    EscalationRequested,
    FeatureCodes,
    FindSupervisor,
    Finish,
    HangUp,
    HoldEnded,
    InboundMachine,
    InboundState,
    InvalidTransition,
    LookUpTarget,
    NoSupervisor,
    OperatorAnswered,
    OperatorDigit,
    OperatorFound,
    OperatorHungUp,
    PlayToOperator,
    PromptFinished,
    PutOnHold,
    ReleaseOperator,
    StartComplaint,
    StartFallback,
    StartHold,
    StartTransfer,
    SupervisorOnDuty,
    TimerFired,
    TransferCall,
    TransferEnded,
    TransferTargetUnknown,
)
from ari_app.transfer.machine import TransferTarget

NUMBER = "+12125550100"
OP1 = "PJSIP/op1"
OP1_CHANNEL = "call-1;op1"
BILLING = TransferTarget("billing", "PJSIP/billing", "directory-billing", "+12125550199")
BILLING_CHANNEL = "call-1;billing"
SUPERVISOR = TransferTarget("supervisor", "PJSIP/supervisor1", "directory-supervisor")
SUPERVISOR_CHANNEL = "call-1;supervisor1"
INTRO = ("sound:etiquette/transfer-unavailable", "sound:etiquette/directory-billing")


def make(**kwargs) -> InboundMachine:
    kwargs.setdefault("seek_retry", 3.0)
    return InboundMachine("call-1", **kwargs)


def connected(machine: InboundMachine, now: float = 0.0) -> float:
    """Greeted (4 s + 5 s), OP1 found and answered 6 s later: CONNECTED; returns the new `now`."""
    machine.handle(CallerArrived(now, number=NUMBER, name="Ada"))
    now += 4.0
    machine.handle(PromptFinished(now, "greeting"))
    now += 5.0
    machine.handle(PromptFinished(now, "recording-notice"))
    machine.handle(OperatorFound(now, OP1))
    now += 6.0
    machine.handle(OperatorAnswered(now, OP1_CHANNEL))
    assert machine.state is InboundState.CONNECTED
    return now


def transfer(now: float, target: object = BILLING, **kwargs) -> TransferCall:
    kwargs.setdefault("reason", "question")
    kwargs.setdefault("reason_prompt", "transfer-reason-question")
    return TransferCall(now, target, **kwargs)


def transferring(machine: InboundMachine, now: float = 0.0) -> float:
    """CONNECTED, then the operator transfers the caller to billing 30 s later."""
    now = connected(machine, now) + 30.0
    machine.handle(transfer(now))
    assert machine.state is InboundState.TRANSFERRING
    return now


def complaining(machine: InboundMachine, now: float = 0.0) -> float:
    """CONNECTED, then the caller's demand for a supervisor, 30 s later, via REST."""
    now = connected(machine, now) + 30.0
    assert machine.handle(EscalationRequested(now)) == [FindSupervisor("rest")]
    assert machine.state is InboundState.COMPLAINING
    return now


def keys(machine: InboundMachine, now: float, digits: str) -> list[list[object]]:
    """The operator keys `digits`, 0.3 s apart; what each key did."""
    out = []
    for digit in digits:
        now += 0.3
        out.append(machine.handle(OperatorDigit(now, digit)))
    return out


def caller_keys(machine: InboundMachine, now: float, digits: str) -> list[list[object]]:
    out = []
    for digit in digits:
        now += 0.3
        out.append(machine.handle(CallerDigit(now, digit)))
    return out


# --- TransferCall ---------------------------------------------------------------------------
def test_given_connected_when_transfer_call_then_transfer_started_as_first_with_caller_number():
    machine = make()
    now = connected(machine) + 30.0
    request = transfer(now, mode="attended", source="feature-code")

    assert machine.handle(request) == [StartTransfer(request, 1, NUMBER)]
    assert machine.state is InboundState.TRANSFERRING
    assert machine.transfers == 1
    assert machine.get_timer() is None


def test_given_one_transfer_returned_when_transferred_again_then_counted_as_second():
    machine = make()
    now = transferring(machine) + 20.0
    machine.handle(TransferEnded(now, "returned"))
    request = transfer(now + 10.0)

    assert machine.handle(request) == [StartTransfer(request, 2, NUMBER)]
    assert machine.transfers == 2


def test_given_hold_code_keyed_when_transfer_call_then_pending_hold_forgotten():
    machine = make()
    now = connected(machine)
    keys(machine, now, "*7")
    assert machine.get_timer() is not None  # a reason digit may follow

    machine.handle(transfer(now + 1.0))

    assert (machine.keys, machine.get_timer()) == ("", None)
    assert machine.handle(TimerFired(now + 10.0)) == []
    assert machine.state is InboundState.TRANSFERRING


def _greeting(m):
    m.handle(CallerArrived(0.0, number=NUMBER))


def _held(m):
    now = connected(m)
    assert m.handle(PutOnHold(now, "lookup")) == [StartHold("lookup", None, "rest", 0)]


@pytest.mark.parametrize("setup", [_greeting, transferring, complaining, _held],
                         ids=["greeting", "transferring", "complaining", "held"])
def test_given_not_connected_when_transfer_call_then_invalid_transition(setup):
    machine = make()
    setup(machine)
    before = machine.to_dict()

    with pytest.raises(InvalidTransition):
        machine.handle(transfer(100.0))
    assert machine.to_dict() == before


# --- TransferEnded ----------------------------------------------------------------------------
def test_given_transferring_when_target_connected_then_old_operator_released_and_target_is_operator():
    machine = make()
    now = transferring(machine) + 25.0

    actions = machine.handle(TransferEnded(now, "connected", BILLING_CHANNEL, BILLING.endpoint))

    assert actions == [ReleaseOperator(OP1)]
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (BILLING.endpoint, BILLING_CHANNEL)


def test_given_target_connected_when_caller_hangs_up_then_target_hung_up_and_released():
    machine = make()
    now = transferring(machine) + 25.0
    machine.handle(TransferEnded(now, "connected", BILLING_CHANNEL, BILLING.endpoint))

    assert machine.handle(CallerHungUp(now + 60.0)) == [
        HangUp(OPERATOR), ReleaseOperator(BILLING.endpoint), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_operator_left_during_transfer_when_target_connected_then_nothing_to_release():
    machine = make()
    now = transferring(machine)
    machine.handle(OperatorHungUp(now + 5.0))

    assert machine.handle(TransferEnded(now + 25.0, "connected", BILLING_CHANNEL,
                                        BILLING.endpoint)) == []
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (BILLING.endpoint, BILLING_CHANNEL)


@pytest.mark.parametrize("outcome", ["declined", "returned"])
def test_given_operator_still_there_when_transfer_declined_or_returned_then_connected_again(outcome):
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(TransferEnded(now, outcome)) == []
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (OP1, OP1_CHANNEL)


@pytest.mark.parametrize("outcome", ["declined", "returned"])
def test_given_reserved_target_when_transfer_declined_or_returned_then_target_released(outcome):
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(TransferEnded(now, outcome, endpoint=SUPERVISOR.endpoint)) == [
        ReleaseOperator(SUPERVISOR.endpoint)]
    assert machine.state is InboundState.CONNECTED
    assert machine.operator == OP1


def test_given_operator_gone_when_target_unavailable_then_held_in_the_fallback_for_the_target():
    machine = make()
    now = transferring(machine)
    assert machine.handle(OperatorHungUp(now + 5.0)) == [ReleaseOperator(OP1)]

    actions = machine.handle(TransferEnded(now + 40.0, "unavailable", fallback_intro=INTRO,
                                           for_whom="billing"))

    assert actions == [StartFallback(INTRO, "billing", None, "transfer unavailable", False)]
    assert machine.state is InboundState.HELD
    assert machine.fallback_for == "billing"


def test_given_operator_gone_when_transfer_returned_then_fallback_instead_of_connected():
    machine = make()
    now = transferring(machine)
    machine.handle(OperatorHungUp(now + 5.0))

    actions = machine.handle(TransferEnded(now + 40.0, "returned", endpoint=SUPERVISOR.endpoint,
                                           fallback_intro=INTRO))

    assert actions == [ReleaseOperator(SUPERVISOR.endpoint),
                       StartFallback(INTRO, None, None, "transfer returned", False)]
    assert machine.state is InboundState.HELD


def test_given_unavailable_fallback_when_caller_leaves_voicemail_then_caller_hung_up_and_call_ends():
    machine = make()
    now = transferring(machine)
    machine.handle(OperatorHungUp(now + 5.0))
    machine.handle(TransferEnded(now + 40.0, "unavailable", fallback_intro=INTRO,
                                 for_whom="billing"))

    assert machine.handle(HoldEnded(now + 90.0, "voicemail")) == [
        HangUp(CALLER), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_caller_chose_a_message_when_transfer_ends_then_straight_to_voicemail_operator_present():
    machine = make()
    now = transferring(machine) + 12.0

    actions = machine.handle(TransferEnded(now, "message", fallback_intro=INTRO,
                                           for_whom="billing"))

    assert actions == [StartFallback(INTRO, "billing", "voicemail", "transfer message", True)]
    assert machine.state is InboundState.HELD
    assert machine.operator_channel == OP1_CHANNEL


def test_given_message_for_target_when_voicemail_left_then_operator_told_message_not_voicemail():
    machine = make()
    now = transferring(machine) + 12.0
    machine.handle(TransferEnded(now, "message", fallback_intro=INTRO, for_whom="billing"))

    assert machine.handle(HoldEnded(now + 40.0, "voicemail")) == [
        HangUp(CALLER), PlayToOperator("operator-freed-message")]
    assert machine.state is InboundState.RELEASING
    assert machine.handle(PromptFinished(now + 43.0, "operator-freed-message")) == [
        HangUp(OPERATOR), ReleaseOperator(OP1), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_ordinary_hold_when_voicemail_left_then_operator_told_voicemail():
    machine = make()
    now = connected(machine) + 30.0
    machine.handle(PutOnHold(now, "lookup"))

    assert machine.handle(HoldEnded(now + 200.0, "voicemail")) == [
        HangUp(CALLER), PlayToOperator("operator-freed-voicemail")]


def test_given_transferring_when_caller_hung_up_outcome_then_only_reserved_target_released():
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(TransferEnded(now, "caller-hung-up", endpoint=SUPERVISOR.endpoint)) == [
        ReleaseOperator(SUPERVISOR.endpoint)]
    assert machine.state is InboundState.TRANSFERRING  # CallerHungUp ends the call
    assert machine.handle(CallerHungUp(now)) == [
        HangUp(OPERATOR), ReleaseOperator(OP1), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_transferring_when_caller_hung_up_outcome_without_reservation_then_nothing():
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(TransferEnded(now, "caller-hung-up")) == []
    assert machine.state is InboundState.TRANSFERRING


@pytest.mark.parametrize("outcome", ["connected", "returned", "unavailable", "message"])
def test_given_connected_when_late_transfer_ended_then_ignored(outcome):
    machine = make()
    now = connected(machine)
    before = machine.to_dict()

    assert machine.handle(TransferEnded(now, outcome, BILLING_CHANNEL, BILLING.endpoint)) == []
    assert machine.to_dict() == before


# --- the operator's keys: *2 <code> # and *9 ---------------------------------------------------
def test_given_connected_when_operator_keys_transfer_code_and_hash_then_look_up_target():
    machine = make()
    now = connected(machine)

    assert keys(machine, now, "*221#") == [[], [], [], [], [LookUpTarget("21", "announced")]]
    assert machine.state is InboundState.CONNECTED  # until the adapter's TransferCall
    assert machine.keys == ""


def test_given_attended_policy_when_operator_keys_transfer_code_then_look_up_attended():
    machine = make(codes=FeatureCodes(transfer_mode="attended"))
    now = connected(machine)

    assert keys(machine, now, "*2105#")[-1] == [LookUpTarget("105", "attended")]


def test_given_other_transfer_code_when_operator_keys_it_then_look_up_target():
    machine = make(codes=FeatureCodes(transfer="*3"))
    now = connected(machine)

    assert keys(machine, now, "*37#")[-1] == [LookUpTarget("7", "announced")]
    assert keys(machine, now, "*27#") == [[], [], [], []]


def test_given_transfer_code_when_hash_at_once_then_nothing_and_keys_reset():
    machine = make()
    now = connected(machine)

    assert keys(machine, now, "*2#") == [[], [], []]
    assert machine.keys == ""
    assert keys(machine, now + 1.0, "*24#")[-1] == [LookUpTarget("4", "announced")]


def test_given_transfer_code_when_more_than_eight_digits_then_reset_and_hash_does_nothing():
    machine = make()
    now = connected(machine)

    assert keys(machine, now, "*2123456789") == [[]] * 11
    assert machine.keys == ""
    assert keys(machine, now + 4.0, "#") == [[]]
    assert keys(machine, now + 5.0, "*212345678#")[-1] == [LookUpTarget("12345678", "announced")]


def test_given_connected_when_operator_keys_supervisor_code_then_find_supervisor_and_complaining():
    machine = make()
    now = connected(machine)

    assert keys(machine, now, "*9") == [[], [FindSupervisor("feature-code")]]
    assert machine.state is InboundState.COMPLAINING
    assert machine.keys == ""


def test_given_complaining_when_operator_keys_then_ignored():
    machine = make()
    now = complaining(machine)

    assert keys(machine, now, "*9*221#*7") == [[]] * 9
    assert machine.state is InboundState.COMPLAINING


# --- supervisor on duty, or not ------------------------------------------------------------------
def test_given_complaining_when_supervisor_on_duty_then_announced_escalation_transfer():
    machine = make(codes=FeatureCodes(transfer_mode="attended"))
    now = complaining(machine) + 0.5

    actions = machine.handle(SupervisorOnDuty(now, SUPERVISOR))

    assert actions == [StartTransfer(
        TransferCall(now, SUPERVISOR, "announced", "escalation", "transfer-reason-escalation",
                     "escalation"), 1, NUMBER)]
    assert machine.state is InboundState.TRANSFERRING
    assert machine.transfers == 1


def test_given_escalation_transfer_when_supervisor_connected_then_supervisor_is_the_operator():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(SupervisorOnDuty(now, SUPERVISOR))

    assert machine.handle(TransferEnded(now + 20.0, "connected", SUPERVISOR_CHANNEL,
                                        SUPERVISOR.endpoint)) == [ReleaseOperator(OP1)]
    assert (machine.state, machine.operator) == (InboundState.CONNECTED, SUPERVISOR.endpoint)


def test_given_not_complaining_when_supervisor_on_duty_then_reserved_supervisor_given_back():
    machine = make()
    now = connected(machine)

    assert machine.handle(SupervisorOnDuty(now, SUPERVISOR)) == [
        ReleaseOperator(SUPERVISOR.endpoint)]
    assert machine.state is InboundState.CONNECTED
    assert machine.transfers == 0


def test_given_complaining_when_no_supervisor_then_complaint_started_with_why():
    machine = make()
    now = complaining(machine) + 0.5

    assert machine.handle(NoSupervisor(now, "outside supervisor hours")) == [
        StartComplaint("outside supervisor hours")]
    assert machine.state is InboundState.COMPLAINING


def test_given_connected_when_no_supervisor_then_ignored():
    machine = make()
    now = connected(machine)

    assert machine.handle(NoSupervisor(now, "nobody")) == []
    assert machine.state is InboundState.CONNECTED


def test_given_complaint_when_caller_returned_then_connected_again():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(NoSupervisor(now, "nobody on duty"))

    assert machine.handle(ComplaintEnded(now + 60.0, "returned")) == []
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (OP1, OP1_CHANNEL)


def test_given_operator_left_during_complaint_when_complaint_ended_then_caller_hung_up_and_call_ends():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(NoSupervisor(now, "nobody on duty"))
    assert machine.handle(OperatorHungUp(now + 10.0)) == [ReleaseOperator(OP1)]

    assert machine.handle(ComplaintEnded(now + 60.0, "ended")) == [
        HangUp(CALLER), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_operator_gone_when_complaint_says_returned_then_call_ends_anyway():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(OperatorHungUp(now + 10.0))

    assert machine.handle(ComplaintEnded(now + 60.0, "returned"))[-1] == Finish()
    assert machine.state is InboundState.ENDED


def test_given_complaint_when_caller_hung_up_outcome_then_left_to_caller_hung_up():
    machine = make()
    now = complaining(machine) + 0.5

    assert machine.handle(ComplaintEnded(now + 20.0, "caller-hung-up")) == []
    assert machine.state is InboundState.COMPLAINING
    assert machine.handle(CallerHungUp(now + 20.0)) == [
        HangUp(OPERATOR), ReleaseOperator(OP1), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_connected_when_late_complaint_ended_then_ignored():
    machine = make()
    now = connected(machine)

    assert machine.handle(ComplaintEnded(now, "ended")) == []
    assert machine.state is InboundState.CONNECTED


@pytest.mark.parametrize("setup", [_greeting, transferring, complaining, _held],
                         ids=["greeting", "transferring", "complaining", "held"])
def test_given_not_connected_when_escalation_requested_then_invalid_transition(setup):
    machine = make()
    setup(machine)

    with pytest.raises(InvalidTransition):
        machine.handle(EscalationRequested(100.0))


# --- the caller's own key ---------------------------------------------------------------------
def test_given_caller_may_ask_when_caller_keys_supervisor_code_then_escalated():
    machine = make(codes=FeatureCodes(caller_supervisor=True))
    now = connected(machine)

    assert caller_keys(machine, now, "*9") == [[], [FindSupervisor("caller")]]
    assert machine.state is InboundState.COMPLAINING
    assert machine.caller_keys == ""


def test_given_caller_may_ask_when_other_keys_come_first_then_last_two_count():
    machine = make(codes=FeatureCodes(caller_supervisor=True))
    now = connected(machine)

    assert caller_keys(machine, now, "12*9") == [[], [], [], [FindSupervisor("caller")]]


def test_given_caller_may_not_ask_when_caller_keys_supervisor_code_then_nothing():
    machine = make()
    now = connected(machine)

    assert caller_keys(machine, now, "*9") == [[], []]
    assert machine.state is InboundState.CONNECTED
    assert machine.caller_keys == ""


def test_given_caller_may_ask_when_not_connected_then_caller_keys_ignored():
    machine = make(codes=FeatureCodes(caller_supervisor=True))
    now = transferring(machine)

    assert caller_keys(machine, now, "*9") == [[], []]
    assert machine.state is InboundState.TRANSFERRING


def test_given_caller_may_ask_when_operator_keys_the_code_half_then_caller_keys_not_mixed_in():
    machine = make(codes=FeatureCodes(caller_supervisor=True))
    now = connected(machine)

    keys(machine, now, "*")
    assert caller_keys(machine, now, "9") == [[]]
    assert machine.state is InboundState.CONNECTED


# --- the operator leaves while another rule has the caller -----------------------------------------
@pytest.mark.parametrize("setup", [transferring, complaining], ids=["transferring", "complaining"])
def test_given_rule_has_the_caller_when_operator_hangs_up_then_caller_kept_and_operator_released(setup):
    machine = make()
    now = setup(machine)
    state = machine.state

    assert machine.handle(OperatorHungUp(now + 5.0)) == [ReleaseOperator(OP1)]
    assert machine.state is state
    assert (machine.operator, machine.operator_channel) == (None, None)
    assert machine.handle(OperatorHungUp(now + 5.1)) == []
    assert machine.handle(CallerHungUp(now + 30.0)) == [DestroyBridge(TALK_BRIDGE), Finish()]


# --- an unknown directory code ----------------------------------------------------------------
def test_given_connected_when_transfer_target_unknown_then_operator_told():
    machine = make()
    now = connected(machine)
    keys(machine, now, "*277#")

    assert machine.handle(TransferTargetUnknown(now + 2.0, "77")) == [
        PlayToOperator("transfer-target-unknown")]
    assert machine.state is InboundState.CONNECTED


def test_given_transferring_when_transfer_target_unknown_then_ignored():
    machine = make()
    now = transferring(machine)

    assert machine.handle(TransferTargetUnknown(now, "77", "not available")) == []


# --- logs and persistence ---------------------------------------------------------------------------
def test_given_escalation_then_transfer_when_states_change_then_each_transition_logged():
    machine = make()
    now = connected(machine)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        keys(machine, now, "*9")
        machine.handle(SupervisorOnDuty(now + 1.0, SUPERVISOR))
        machine.handle(TransferEnded(now + 20.0, "returned", endpoint=SUPERVISOR.endpoint))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "inbound transition"]
    assert transitions == [("connected", "complaining"), ("complaining", "connected"),
                           ("connected", "transferring"), ("transferring", "connected")]


CODES = FeatureCodes(hold="*5", resume="*6", reasons=("lookup", "consult"), transfer="*3",
                     supervisor="*4", transfer_mode="attended", caller_supervisor=True)


@pytest.mark.parametrize("through_json", [False, True], ids=["dict", "json"])
def test_given_transferring_snapshot_when_restored_then_new_feature_codes_and_counts_kept(
        through_json):
    original = make(codes=CODES)
    now = connected(original) + 30.0
    original.handle(transfer(now))
    original.handle(TransferEnded(now + 20.0, "returned"))
    now = now + 25.0

    snapshot = original.to_dict()
    if through_json:
        snapshot = json.loads(json.dumps(snapshot))
    restored = InboundMachine.from_dict(snapshot)

    assert restored == original
    assert restored.codes == CODES
    assert restored.transfers == 1
    script = [OperatorDigit(now, "*"), OperatorDigit(now + 0.3, "3"),
              OperatorDigit(now + 0.6, "7"), OperatorDigit(now + 0.9, "#"),
              CallerDigit(now + 2.0, "*"), CallerDigit(now + 2.3, "4"),
              NoSupervisor(now + 2.5, "nobody"), ComplaintEnded(now + 60.0, "returned"),
              transfer(now + 70.0), CallerHungUp(now + 80.0)]
    for event in script:
        assert restored.handle(event) == original.handle(event)
        assert restored.to_dict() == original.to_dict()
    assert restored.state is InboundState.ENDED


def test_given_fallback_for_a_target_when_restored_then_operator_still_told_about_a_message():
    original = make()
    now = transferring(original) + 12.0
    original.handle(TransferEnded(now, "message", fallback_intro=INTRO, for_whom="billing"))

    restored = InboundMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored.fallback_for == "billing"
    assert restored.handle(HoldEnded(now + 40.0, "voicemail")) == [
        HangUp(CALLER), PlayToOperator("operator-freed-message")]


def test_given_transfer_code_keyed_by_mistake_when_hold_code_follows_then_hold_starts():
    machine = make()
    now = connected(machine)

    keys(machine, now, "*2*7")
    actions = machine.handle(OperatorDigit(now + 3, "1"))

    assert machine.state is InboundState.HELD
    assert any(type(a).__name__ == "StartHold" for a in actions)
