"""What the inbound call hands to other rules, and what it does when they hand the caller back.

The call names a rule and what that rule's `begin` reads (`HandTo("hold", {...})`), asks the
rule that has the caller for something (`Ask("hold", "resume", ...)`), and gets one
`RuleEnded(now, rule, outcome, data)` back: it never builds another rule's events, so a rule
can change its own words without the call changing. `rule` names the one that has the caller
(the adapter routes the call's events to it); the states HELD, TRANSFERRING and COMPLAINING
say the same for `/api/calls`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ari_app.calls.machine import RuleMachine
from ari_app.calls.vocabulary import CALLER, OPERATOR, Ask, HandTo, RuleEnded
from ari_app.inbound.feature_codes import FeatureCodes
from ari_app.inbound.words import (TALK_BRIDGE, AddToBridge, CreateBridge,
                                   EscalationRequested, FindSupervisor, HangUp, InboundState,
                                   InvalidTransition, NoSupervisor, PlayToOperator, PutOnHold,
                                   ReleaseOperator, SupervisorOnDuty, TakeOffHold, TransferCall,
                                   TransferTargetUnknown, WarnCaller)
from ari_app.transfer.machine import TransferTarget

__all__ = ["HandOffs", "RULE_OF_STATE"]

# which rule has the caller in which state (COMPLAINING: once no supervisor was found)
RULE_OF_STATE = {InboundState.HELD: "hold", InboundState.TRANSFERRING: "transfer",
                 InboundState.COMPLAINING: "complaint", InboundState.QUEUED: "queue",
                 InboundState.SURVEYING: "survey", InboundState.WARNING: "warning"}
# what the operator hears when the caller leaves them a way out of a hold
TOLD = {"callback": "operator-freed-callback", "voicemail": "operator-freed-voicemail"}


class HandOffs(RuleMachine):
    """The hold, transfer and complaint hand-offs of InboundMachine (a mixin: the fields are
    the machine's)."""
    state: InboundState
    number: str
    operator: str | None
    operator_channel: str | None
    answered_at: float | None
    keys: str
    deadline: float | None
    codes: FeatureCodes
    holds: int
    transfers: int
    fallback_for: str | None
    rule: str | None
    pending_transfer: dict[str, Any] | None
    queue: str | None
    returning: bool
    bridges: list[str]
    survey_queues: list[str]
    warnings: int
    pending_warning: str | None
    operator_released: bool

    def _end(self, hang_up: str | None) -> list[object]:
        raise NotImplementedError  # the call's life (inbound/machine.py) ends the call

    def _leave_talk(self, state: InboundState, what: str) -> None:
        """The caller leaves the conversation for a rule: only from CONNECTED; a feature code
        half keyed (and its timer) is forgotten."""
        if self.state is not InboundState.CONNECTED:
            raise InvalidTransition(f"cannot {what} a call that is {self.state.value}")
        self._set_state(state)
        self.keys, self.deadline = "", None

    def _hand_to(self, rule: str, request: dict[str, Any]) -> HandTo:
        self.rule = rule
        return HandTo(rule, request)

    def _on_RuleEnded(self, ev: RuleEnded) -> list[object]:
        """The rule that has the caller is done with them. A late or stray end (another rule,
        or `gone`: the rule kept nothing of the call) leaves the caller where they are."""
        if ev.rule != self.rule or ev.outcome == "gone":
            return []
        self.rule = None
        ended = {"hold": self._hold_ended, "transfer": self._transfer_ended,
                 "complaint": self._complaint_ended, "queue": self._queue_ended,
                 "survey": self._survey_ended, "warning": self._warning_ended}[ev.rule]
        return ended(ev)

    # --- queue --------------------------------------------------------------------------------
    def _enter_queue(self) -> list[object]:
        """Nobody could take the caller at once: the queue has them until an operator does."""
        self._set_state(InboundState.QUEUED)
        self.deadline = None
        return [self._hand_to("queue", {"queue": self.queue, "returning": self.returning})]

    def _queue_ended(self, ev: RuleEnded) -> list[object]:
        if ev.outcome == "connected" and ev.data.get("channel"):
            # the operator the queue found is the caller's operator from now on
            self.operator, self.operator_channel = ev.data["operator"], ev.data["channel"]
            self.answered_at = self.answered_at or ev.now
            self._set_state(InboundState.CONNECTED)
            self.bridges.append(TALK_BRIDGE)
            return [CreateBridge(TALK_BRIDGE, "mixing"), AddToBridge(TALK_BRIDGE, CALLER),
                    AddToBridge(TALK_BRIDGE, OPERATOR)]
        if ev.outcome == "voicemail":  # a message for the queue's department
            for_whom = ev.data.get("for")
            self._set_state(InboundState.HELD)
            self.fallback_for = for_whom
            return [self._hand_to("hold", {
                "way_out": True, "for_whom": for_whom, "preselect": "voicemail",
                "why": "queue voicemail", "operator_present": False})]
        if ev.outcome in ("abandoned", "caller-hung-up"):
            return []  # CallerHungUp ends the call
        return self._end(hang_up=CALLER)  # the place is kept: they were told goodbye

    # --- hold ---------------------------------------------------------------------------------
    def _on_PutOnHold(self, ev: PutOnHold) -> list[object]:
        self._leave_talk(InboundState.HELD, "hold")
        self.holds += 1
        return [self._hand_to("hold", {
            "reason": ev.reason, "expected_minutes": ev.expected_minutes, "source": ev.source,
            "holds_before": self.holds - 1})]

    def _on_TakeOffHold(self, ev: TakeOffHold) -> list[object]:
        if self.state is not InboundState.HELD:
            raise InvalidTransition(f"the call is {self.state.value}, not on hold")
        return [Ask("hold", "resume", {"source": ev.source})]

    def _hold_ended(self, ev: RuleEnded) -> list[object]:
        pending, self.pending_transfer = self.pending_transfer, None
        warning, self.pending_warning = self.pending_warning, None
        if ev.outcome in ("resumed", "handed-over"):  # handed over: a transfer follows
            self._set_state(InboundState.CONNECTED)
            if ev.outcome == "handed-over" and pending is not None:
                return self._on_TransferCall(_transfer_call(pending))
            if warning is not None and self.operator_channel:  # warned while on hold
                return self._on_WarnCaller(WarnCaller(ev.now, warning))
            return []
        if ev.outcome == "caller-hung-up":
            return []  # CallerHungUp ends the call
        told = dict(TOLD)
        if self.fallback_for:  # a message for the person they wanted, not for this operator
            told["voicemail"] = "operator-freed-message"
        if self.operator_channel is None or ev.outcome not in told:
            return self._end(hang_up=CALLER)
        self._set_state(InboundState.RELEASING)
        return [HangUp(CALLER), PlayToOperator(told[ev.outcome])]

    # --- transfer -----------------------------------------------------------------------------
    def _on_TransferCall(self, ev: TransferCall) -> list[object]:
        if (self.state is InboundState.HELD and ev.source == "phone" and self.rule == "hold"
                and self.pending_transfer is None):
            # phones hold the caller before they transfer: the hold hands the caller over
            # first (no "thank you for waiting"), then the transfer starts (_hold_ended)
            self.pending_transfer = asdict(ev)  # plain data: the snapshot is JSON
            return [Ask("hold", "hand-over")]
        self._leave_talk(InboundState.TRANSFERRING, "transfer")
        self.transfers += 1
        return [self._hand_to("transfer", {
            "target": ev.target, "mode": ev.mode, "reason": ev.reason,
            "reason_prompt": ev.reason_prompt, "source": ev.source,
            "number": self.transfers,  # the call's n-th transfer: as few as possible
            "caller_number": self.number,
            "operator_present": self.operator_channel is not None})]

    def _on_TransferTargetUnknown(self, ev: TransferTargetUnknown) -> list[object]:
        if self.state is not InboundState.CONNECTED:
            return []
        return [PlayToOperator("transfer-target-unknown")]

    def _transfer_ended(self, ev: RuleEnded) -> list[object]:
        channel, endpoint = ev.data.get("channel"), ev.data.get("endpoint")
        if ev.outcome == "caller-hung-up":  # CallerHungUp ends the call
            return [ReleaseOperator(endpoint)] if endpoint else []  # a reserved supervisor
        if ev.outcome == "connected" and channel:
            # the target is now the one the caller talks to: hold, transfer, hang-up follow them
            actions: list[object] = ([ReleaseOperator(self.operator, "call")]
                                     if self.operator else [])
            self.operator, self.operator_channel = endpoint, channel
            self._set_state(InboundState.CONNECTED)
            return actions
        released = [ReleaseOperator(endpoint)] if endpoint else []  # a reserved supervisor
        if ev.outcome in ("declined", "returned") and self.operator_channel:
            self._set_state(InboundState.CONNECTED)
            return released
        # nobody to talk to now: the hold rule's voicemail or callback, for the target
        for_whom = ev.data.get("for_whom")
        self._set_state(InboundState.HELD)
        self.fallback_for = for_whom
        message = ev.outcome == "message"  # the caller chose it: the operator is still there
        # caller-left: a message or a callback, chosen during a long consultation
        preselect = "voicemail" if message else ev.data.get("preselect")
        return [*released, self._hand_to("hold", {
            "way_out": True, "intro": tuple(ev.data.get("intro") or ()), "for_whom": for_whom,
            "preselect": preselect, "why": f"transfer {ev.outcome}",
            "operator_present": message})]

    # --- supervisor and complaint -------------------------------------------------------------
    def _on_EscalationRequested(self, ev: EscalationRequested) -> list[object]:
        self._leave_talk(InboundState.COMPLAINING, "escalate")  # until the desk says who is on duty
        return [FindSupervisor(ev.source)]

    def _on_SupervisorOnDuty(self, ev: SupervisorOnDuty) -> list[object]:
        if self.state is not InboundState.COMPLAINING or self.rule is not None:
            return [ReleaseOperator(getattr(ev.target, "endpoint", ""))]
        self._set_state(InboundState.CONNECTED)
        return self._on_TransferCall(TransferCall(ev.now, ev.target, "announced", "escalation",
                                                  ev.reason_prompt, "escalation"))

    def _on_NoSupervisor(self, ev: NoSupervisor) -> list[object]:
        if self.state is not InboundState.COMPLAINING or self.rule is not None:
            return []
        return [self._hand_to("complaint", {"why": ev.why})]

    def _complaint_ended(self, ev: RuleEnded) -> list[object]:
        if ev.outcome == "returned" and self.operator_channel:
            self._set_state(InboundState.CONNECTED)
            return []
        if ev.outcome == "caller-hung-up":
            return []
        return self._end(hang_up=CALLER)


    # --- survey ---------------------------------------------------------------------------------
    def _wants_survey(self) -> bool:
        """The operator hung up first in a call that came through a queue with a survey."""
        return self.queue is not None and self.queue in self.survey_queues

    def _start_survey(self) -> list[object]:
        """The operator is freed at once (wrap-up starts); the call keeps their endpoint so
        the caller's answer lands in that operator's day."""
        self._set_state(InboundState.SURVEYING)
        self.keys, self.deadline = "", None
        self.operator_channel = None
        released: list[object] = []
        if self.operator:
            released.append(ReleaseOperator(self.operator, "call"))
            self.operator_released = True
        return [*released, self._hand_to("survey", {"queue": self.queue,
                                                     "operator": self.operator})]

    def _survey_ended(self, ev: RuleEnded) -> list[object]:
        if ev.outcome == "caller-hung-up":
            return []  # CallerHungUp ends the call
        return self._end(hang_up=CALLER)

    # --- warning an abusive caller ------------------------------------------------------------
    def _on_WarnCaller(self, ev: WarnCaller) -> list[object]:
        """First a polite warning both hear, then (the second time) a polite goodbye and the
        end of the call; only while the caller talks with the operator. On hold, the caller
        is taken off hold first ("thank you for waiting"), then warned."""
        if (self.state is InboundState.HELD and self.rule == "hold" and self.operator_channel
                and self.pending_warning is None and self.pending_transfer is None):
            self.pending_warning = ev.source
            return [Ask("hold", "resume", {"source": "warning"})]
        if self.state is not InboundState.CONNECTED or self.operator_channel is None:
            raise InvalidTransition(
                f"cannot warn the caller of a call that is {self.state.value}: only while "
                "they talk with the operator")
        self._leave_talk(InboundState.WARNING, "warn")
        self.warnings += 1
        return [self._hand_to("warning", {"count": self.warnings, "source": ev.source})]

    def _warning_ended(self, ev: RuleEnded) -> list[object]:
        if ev.outcome == "caller-hung-up":
            return []  # CallerHungUp ends the call
        if ev.outcome == "warned" and self.operator_channel:
            self._set_state(InboundState.CONNECTED)
            return []
        # the call is ended politely: the caller's leg goes, the operator goes on as when a
        # caller hangs up (their leg is hung up, wrap-up starts)
        return [HangUp(CALLER), *self._end(hang_up=OPERATOR if self.operator_channel else None)]


def _transfer_call(data: dict[str, Any]) -> TransferCall:
    """A pending transfer back from the snapshot's plain data."""
    target = data["target"]
    if isinstance(target, dict):
        target = TransferTarget(**target)
    return TransferCall(**{**data, "target": target})
