"""InboundMachine hand-offs to the hold, transfer, supervisor and complaint rules.

Fake clock in the aioquic way: `now` starts at 0.0 and is moved by hand. No event loop, no mocks.
Every call here is first CONNECTED the way a real call gets there (greeting, recording notice,
OP1 found and answered at 15.0); the rules that take the caller over are not run: the call
hands the caller to them by name (HandTo, Ask) and their outcomes come in as RuleEnded.
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
    Ask,
    CallerHungUp,
    DestroyBridge,
    EscalationRequested,
    FeatureCodes,
    FindSupervisor,
    Finish,
    HandTo,
    HangUp,
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
    RuleEnded,
    SupervisorOnDuty,
    TakeOffHold,
    TimerFired,
    TransferCall,
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


def transfer_to(request: TransferCall, number: int, present: bool = True) -> HandTo:
    """How the call hands its caller to the transfer rule for `request`, its n-th transfer."""
    return HandTo("transfer", {
        "target": request.target, "mode": request.mode, "reason": request.reason,
        "reason_prompt": request.reason_prompt, "source": request.source, "number": number,
        "caller_number": NUMBER, "operator_present": present})


def way_out(intro: tuple[str, ...], for_whom: str | None, preselect: str | None, why: str,
            present: bool) -> HandTo:
    """How the call hands its caller to the hold rule's voicemail or callback, without a hold."""
    return HandTo("hold", {"way_out": True, "intro": intro, "for_whom": for_whom,
                           "preselect": preselect, "why": why, "operator_present": present})


def transfer_ended(now: float, outcome: str, channel: str | None = None,
                   endpoint: str | None = None, intro: tuple[str, ...] = (),
                   for_whom: str | None = None) -> RuleEnded:
    """The transfer rule's end, with only what it has to say (the call reads what is there)."""
    data = {"channel": channel, "endpoint": endpoint, "intro": intro, "for_whom": for_whom}
    return RuleEnded(now, "transfer", outcome, {k: v for k, v in data.items() if v})


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

    assert machine.handle(request) == [transfer_to(request, 1)]
    assert machine.state is InboundState.TRANSFERRING
    assert machine.transfers == 1
    assert machine.get_timer() is None


def test_given_one_transfer_returned_when_transferred_again_then_counted_as_second():
    machine = make()
    now = transferring(machine) + 20.0
    machine.handle(transfer_ended(now, "returned"))
    request = transfer(now + 10.0)

    assert machine.handle(request) == [transfer_to(request, 2)]
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
    assert m.handle(PutOnHold(now, "lookup")) == [HandTo("hold", {
        "reason": "lookup", "expected_minutes": None, "source": "rest", "holds_before": 0})]


@pytest.mark.parametrize("setup", [_greeting, transferring, complaining, _held],
                         ids=["greeting", "transferring", "complaining", "held"])
def test_given_not_connected_when_transfer_call_then_invalid_transition(setup):
    machine = make()
    setup(machine)
    before = machine.to_dict()

    with pytest.raises(InvalidTransition):
        machine.handle(transfer(100.0))
    assert machine.to_dict() == before


# --- the transfer's end ----------------------------------------------------------------------------
def test_given_transferring_when_target_connected_then_old_operator_released_and_target_is_operator():
    machine = make()
    now = transferring(machine) + 25.0

    actions = machine.handle(transfer_ended(now, "connected", BILLING_CHANNEL, BILLING.endpoint))

    assert actions == [ReleaseOperator(OP1, "call")]
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (BILLING.endpoint, BILLING_CHANNEL)


def test_given_target_connected_when_caller_hangs_up_then_target_hung_up_and_released():
    machine = make()
    now = transferring(machine) + 25.0
    machine.handle(transfer_ended(now, "connected", BILLING_CHANNEL, BILLING.endpoint))

    assert machine.handle(CallerHungUp(now + 60.0)) == [
        HangUp(OPERATOR), ReleaseOperator(BILLING.endpoint, "call"), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_operator_left_during_transfer_when_target_connected_then_nothing_to_release():
    machine = make()
    now = transferring(machine)
    machine.handle(OperatorHungUp(now + 5.0))

    assert machine.handle(transfer_ended(now + 25.0, "connected", BILLING_CHANNEL,
                                        BILLING.endpoint)) == []
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (BILLING.endpoint, BILLING_CHANNEL)


@pytest.mark.parametrize("outcome", ["declined", "returned"])
def test_given_operator_still_there_when_transfer_declined_or_returned_then_connected_again(outcome):
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(transfer_ended(now, outcome)) == []
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (OP1, OP1_CHANNEL)


@pytest.mark.parametrize("outcome", ["declined", "returned"])
def test_given_reserved_target_when_transfer_declined_or_returned_then_target_released(outcome):
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(transfer_ended(now, outcome, endpoint=SUPERVISOR.endpoint)) == [
        ReleaseOperator(SUPERVISOR.endpoint)]
    assert machine.state is InboundState.CONNECTED
    assert machine.operator == OP1


def test_given_operator_gone_when_target_unavailable_then_held_in_the_fallback_for_the_target():
    machine = make()
    now = transferring(machine)
    assert machine.handle(OperatorHungUp(now + 5.0)) == [ReleaseOperator(OP1, "call")]

    actions = machine.handle(transfer_ended(now + 40.0, "unavailable", intro=INTRO,
                                           for_whom="billing"))

    assert actions == [way_out(INTRO, "billing", None, "transfer unavailable", False)]
    assert machine.state is InboundState.HELD
    assert machine.fallback_for == "billing"


def test_given_operator_gone_when_transfer_returned_then_fallback_instead_of_connected():
    machine = make()
    now = transferring(machine)
    machine.handle(OperatorHungUp(now + 5.0))

    actions = machine.handle(transfer_ended(now + 40.0, "returned", endpoint=SUPERVISOR.endpoint,
                                           intro=INTRO))

    assert actions == [ReleaseOperator(SUPERVISOR.endpoint),
                       way_out(INTRO, None, None, "transfer returned", False)]
    assert machine.state is InboundState.HELD


def test_given_unavailable_fallback_when_caller_leaves_voicemail_then_caller_hung_up_and_call_ends():
    machine = make()
    now = transferring(machine)
    machine.handle(OperatorHungUp(now + 5.0))
    machine.handle(transfer_ended(now + 40.0, "unavailable", intro=INTRO,
                                 for_whom="billing"))

    assert machine.handle(RuleEnded(now + 90.0, "hold", "voicemail")) == [
        HangUp(CALLER), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_caller_chose_a_message_when_transfer_ends_then_straight_to_voicemail_operator_present():
    machine = make()
    now = transferring(machine) + 12.0

    actions = machine.handle(transfer_ended(now, "message", intro=INTRO,
                                           for_whom="billing"))

    assert actions == [way_out(INTRO, "billing", "voicemail", "transfer message", True)]
    assert machine.state is InboundState.HELD
    assert machine.operator_channel == OP1_CHANNEL


def test_given_caller_left_a_long_consultation_when_transfer_ends_then_their_choice_without_operator():
    """The caller chose a callback (3) during a long consultation: the hold rule takes the
    number at once, for the target; the operator was let go by the transfer rule."""
    machine = make()
    now = transferring(machine) + 160.0

    actions = machine.handle(RuleEnded(now, "transfer", "caller-left",
                                       {"for_whom": "billing", "preselect": "callback"}))

    assert actions == [way_out((), "billing", "callback", "transfer caller-left", False)]
    assert machine.state is InboundState.HELD


def test_given_message_for_target_when_voicemail_left_then_operator_told_message_not_voicemail():
    machine = make()
    now = transferring(machine) + 12.0
    machine.handle(transfer_ended(now, "message", intro=INTRO, for_whom="billing"))

    assert machine.handle(RuleEnded(now + 40.0, "hold", "voicemail")) == [
        HangUp(CALLER), PlayToOperator("operator-freed-message")]
    assert machine.state is InboundState.RELEASING
    assert machine.handle(PromptFinished(now + 43.0, "operator-freed-message")) == [
        HangUp(OPERATOR), ReleaseOperator(OP1, "call"), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_ordinary_hold_when_voicemail_left_then_operator_told_voicemail():
    machine = make()
    now = connected(machine) + 30.0
    machine.handle(PutOnHold(now, "lookup"))

    assert machine.handle(RuleEnded(now + 200.0, "hold", "voicemail")) == [
        HangUp(CALLER), PlayToOperator("operator-freed-voicemail")]


def test_given_transferring_when_caller_hung_up_outcome_then_only_reserved_target_released():
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(transfer_ended(now, "caller-hung-up", endpoint=SUPERVISOR.endpoint)) == [
        ReleaseOperator(SUPERVISOR.endpoint)]
    assert machine.state is InboundState.TRANSFERRING  # CallerHungUp ends the call
    assert machine.handle(CallerHungUp(now)) == [
        HangUp(OPERATOR), ReleaseOperator(OP1, "call"), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_transferring_when_caller_hung_up_outcome_without_reservation_then_nothing():
    machine = make()
    now = transferring(machine) + 20.0

    assert machine.handle(transfer_ended(now, "caller-hung-up")) == []
    assert machine.state is InboundState.TRANSFERRING


@pytest.mark.parametrize("outcome", ["connected", "returned", "unavailable", "message"])
def test_given_connected_when_late_transfer_ended_then_ignored(outcome):
    machine = make()
    now = connected(machine)
    before = machine.to_dict()

    assert machine.handle(transfer_ended(now, outcome, BILLING_CHANNEL, BILLING.endpoint)) == []
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

    assert actions == [transfer_to(
        TransferCall(now, SUPERVISOR, "announced", "escalation", "transfer-reason-escalation",
                     "escalation"), 1)]
    assert machine.state is InboundState.TRANSFERRING
    assert machine.transfers == 1


def test_given_escalation_transfer_when_supervisor_connected_then_supervisor_is_the_operator():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(SupervisorOnDuty(now, SUPERVISOR))

    assert machine.handle(transfer_ended(now + 20.0, "connected", SUPERVISOR_CHANNEL,
                                        SUPERVISOR.endpoint)) == [ReleaseOperator(OP1, "call")]
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
        HandTo("complaint", {"why": "outside supervisor hours"})]
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

    assert machine.handle(RuleEnded(now + 60.0, "complaint", "returned")) == []
    assert machine.state is InboundState.CONNECTED
    assert (machine.operator, machine.operator_channel) == (OP1, OP1_CHANNEL)


def test_given_operator_left_during_complaint_when_complaint_ended_then_caller_hung_up_and_call_ends():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(NoSupervisor(now, "nobody on duty"))
    assert machine.handle(OperatorHungUp(now + 10.0)) == [ReleaseOperator(OP1, "call")]

    assert machine.handle(RuleEnded(now + 60.0, "complaint", "ended")) == [
        HangUp(CALLER), DestroyBridge(TALK_BRIDGE), Finish()]
    assert machine.state is InboundState.ENDED


def test_given_operator_gone_when_complaint_says_returned_then_call_ends_anyway():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(NoSupervisor(now, "nobody on duty"))
    machine.handle(OperatorHungUp(now + 10.0))

    assert machine.handle(RuleEnded(now + 60.0, "complaint", "returned"))[-1] == Finish()
    assert machine.state is InboundState.ENDED


def test_given_complaint_when_caller_hung_up_outcome_then_left_to_caller_hung_up():
    machine = make()
    now = complaining(machine) + 0.5
    machine.handle(NoSupervisor(now, "nobody on duty"))

    assert machine.handle(RuleEnded(now + 20.0, "complaint", "caller-hung-up")) == []
    assert machine.state is InboundState.COMPLAINING
    assert machine.handle(CallerHungUp(now + 20.0)) == [
        HangUp(OPERATOR), ReleaseOperator(OP1, "call"), DestroyBridge(TALK_BRIDGE), Finish()]


def test_given_connected_when_late_complaint_ended_then_ignored():
    machine = make()
    now = connected(machine)

    assert machine.handle(RuleEnded(now, "complaint", "ended")) == []
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

    assert machine.handle(OperatorHungUp(now + 5.0)) == [ReleaseOperator(OP1, "call")]
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
        machine.handle(transfer_ended(now + 20.0, "returned", endpoint=SUPERVISOR.endpoint))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "inbound transition"]
    assert transitions == [("connected", "complaining"), ("complaining", "connected"),
                           ("connected", "transferring"), ("transferring", "connected")]


CODES = FeatureCodes(hold="*5", resume="*6", reasons=("lookup", "consult"), transfer="*3",
                     supervisor="*4", warn="*0", transfer_mode="attended", caller_supervisor=True)


@pytest.mark.parametrize("through_json", [False, True], ids=["dict", "json"])
def test_given_transferring_snapshot_when_restored_then_new_feature_codes_and_counts_kept(
        through_json):
    original = make(codes=CODES)
    now = connected(original) + 30.0
    original.handle(transfer(now))
    original.handle(transfer_ended(now + 20.0, "returned"))
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
              NoSupervisor(now + 2.5, "nobody"), RuleEnded(now + 60.0, "complaint", "returned"),
              transfer(now + 70.0), CallerHungUp(now + 80.0)]
    for event in script:
        assert restored.handle(event) == original.handle(event)
        assert restored.to_dict() == original.to_dict()
    assert restored.state is InboundState.ENDED


def test_given_fallback_for_a_target_when_restored_then_operator_still_told_about_a_message():
    original = make()
    now = transferring(original) + 12.0
    original.handle(transfer_ended(now, "message", intro=INTRO, for_whom="billing"))

    restored = InboundMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored.fallback_for == "billing"
    assert restored.handle(RuleEnded(now + 40.0, "hold", "voicemail")) == [
        HangUp(CALLER), PlayToOperator("operator-freed-message")]


def test_given_transfer_code_keyed_by_mistake_when_hold_code_follows_then_hold_starts():
    machine = make()
    now = connected(machine)

    keys(machine, now, "*2*7")
    actions = machine.handle(OperatorDigit(now + 3, "1"))

    assert machine.state is InboundState.HELD
    assert any(isinstance(a, HandTo) and a.rule == "hold" for a in actions)


# --- who has the caller: `rule`, and RuleEnded ------------------------------------------------
def held(machine: InboundMachine, now: float = 0.0) -> float:
    """CONNECTED, then put on hold by REST 30 s later."""
    now = connected(machine, now) + 30.0
    machine.handle(PutOnHold(now, "lookup"))
    assert (machine.state, machine.rule) == (InboundState.HELD, "hold")
    return now


def test_given_each_hand_off_when_made_then_rule_names_who_has_the_caller_until_it_ends():
    machine = make()
    now = connected(machine)
    seen = [machine.rule]

    machine.handle(PutOnHold(now, "lookup"))
    seen.append(machine.rule)
    machine.handle(RuleEnded(now + 10.0, "hold", "resumed"))
    seen.append(machine.rule)
    machine.handle(transfer(now + 20.0))
    seen.append(machine.rule)
    machine.handle(transfer_ended(now + 40.0, "returned"))
    seen.append(machine.rule)
    machine.handle(EscalationRequested(now + 50.0))
    seen.append(machine.rule)  # a supervisor is sought: no rule has the caller yet
    machine.handle(NoSupervisor(now + 50.5, "nobody on duty"))
    seen.append(machine.rule)
    machine.handle(RuleEnded(now + 90.0, "complaint", "returned"))
    seen.append(machine.rule)

    assert seen == [None, "hold", None, "transfer", None, None, "complaint", None]
    assert machine.state is InboundState.CONNECTED


def test_given_transferring_when_another_rule_ends_then_ignored():
    machine = make()
    now = transferring(machine) + 5.0
    before = machine.to_dict()

    assert machine.handle(RuleEnded(now, "hold", "voicemail")) == []
    assert machine.handle(RuleEnded(now, "complaint", "ended")) == []
    assert machine.to_dict() == before


def test_given_held_when_hold_rule_gone_then_caller_left_where_they_are():
    machine = make()
    now = held(machine)
    before = machine.to_dict()

    assert machine.handle(RuleEnded(now + 5.0, "hold", "gone")) == []
    assert machine.to_dict() == before


def test_given_held_when_taken_off_hold_then_hold_asked_to_resume():
    machine = make()
    now = held(machine)

    assert machine.handle(TakeOffHold(now + 20.0, "phone")) == [
        Ask("hold", "resume", {"source": "phone"})]
    assert (machine.state, machine.rule) == (InboundState.HELD, "hold")  # until it has resumed


def test_given_held_when_hold_resumed_then_connected_and_no_rule():
    machine = make()
    now = held(machine)

    assert machine.handle(RuleEnded(now + 20.0, "hold", "resumed")) == []
    assert (machine.state, machine.rule) == (InboundState.CONNECTED, None)


# --- the operator's phone transfer button while the caller is held -------------------------------
def phone_transfer(now: float) -> TransferCall:
    return TransferCall(now, BILLING, "announced", None, None, "phone")


def test_given_held_when_phone_transfers_then_hold_asked_to_hand_over_and_transfer_follows():
    machine = make()
    now = held(machine) + 5.0
    request = phone_transfer(now)

    assert machine.handle(request) == [Ask("hold", "hand-over")]
    assert (machine.state, machine.rule, machine.transfers) == (InboundState.HELD, "hold", 0)

    assert machine.handle(RuleEnded(now + 0.1, "hold", "handed-over")) == [
        transfer_to(request, 1)]
    assert (machine.state, machine.rule) == (InboundState.TRANSFERRING, "transfer")
    assert (machine.transfers, machine.pending_transfer) == (1, None)


def test_given_hand_over_when_states_change_then_held_connected_transferring_logged():
    machine = make()
    now = held(machine) + 5.0

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        machine.handle(phone_transfer(now))
        machine.handle(RuleEnded(now + 0.1, "hold", "handed-over"))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "inbound transition"]
    assert transitions == [("held", "connected"), ("connected", "transferring")]


@pytest.mark.parametrize("through_json", [False, True], ids=["dict", "json"])
def test_given_hand_over_pending_when_restored_then_same_transfer_follows(through_json):
    original = make()
    now = held(original) + 5.0
    original.handle(phone_transfer(now))

    snapshot = original.to_dict()
    if through_json:
        snapshot = json.loads(json.dumps(snapshot))
    restored = InboundMachine.from_dict(snapshot)

    assert restored == original
    ended = RuleEnded(now + 0.1, "hold", "handed-over")
    assert restored.handle(ended) == original.handle(ended) == [
        transfer_to(phone_transfer(now), 1)]
    assert restored.to_dict() == original.to_dict()


@pytest.mark.parametrize("source", ["rest", "feature-code", "escalation"])
def test_given_held_when_transfer_from_elsewhere_than_the_phone_then_invalid_transition(source):
    machine = make()
    now = held(machine) + 5.0
    before = machine.to_dict()

    with pytest.raises(InvalidTransition):
        machine.handle(TransferCall(now, BILLING, "announced", None, None, source))
    assert machine.to_dict() == before


def test_given_hand_over_pending_when_phone_transfers_again_then_invalid_transition():
    machine = make()
    now = held(machine) + 5.0
    machine.handle(phone_transfer(now))
    before = machine.to_dict()

    with pytest.raises(InvalidTransition):
        machine.handle(phone_transfer(now + 1.0))
    assert machine.to_dict() == before


@pytest.mark.parametrize(("outcome", "state"), [("resumed", InboundState.CONNECTED),
                                                 ("caller-hung-up", InboundState.HELD)])
def test_given_hand_over_pending_when_hold_ends_otherwise_then_no_transfer(outcome, state):
    machine = make()
    now = held(machine) + 5.0
    machine.handle(phone_transfer(now))

    assert machine.handle(RuleEnded(now + 0.1, "hold", outcome)) == []
    assert (machine.state, machine.rule, machine.pending_transfer) == (state, None, None)
    assert machine.transfers == 0


@pytest.mark.parametrize(("setup", "rule"), [(held, "hold"), (transferring, "transfer")],
                         ids=["held", "transferring"])
def test_given_snapshot_from_before_rule_when_restored_then_rule_read_from_state(setup, rule):
    original = make()
    setup(original)
    snapshot = original.to_dict()
    del snapshot["rule"], snapshot["pending_transfer"]

    restored = InboundMachine.from_dict(json.loads(json.dumps(snapshot)))

    assert restored.rule == rule
    assert restored == original
