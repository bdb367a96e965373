"""The call-events service: one publish per step, fanned out in order; names from the rule's
vocabulary; transitions only when the state changed."""

from __future__ import annotations

from enum import Enum

import pytest
from structlog.testing import capture_logs

from ari_app.calls.events import CallEvent, CallEvents, step_of


class Recorder:
    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    def on_event(self, event: CallEvent) -> None:
        self.events.append(event)


class Broken:
    def on_event(self, event: CallEvent) -> None:
        raise RuntimeError("bug")


class State(Enum):
    HOLDING = "holding"
    CHECKING_IN = "checking_in"


def service() -> tuple[CallEvents, Recorder]:
    events, recorder = CallEvents(clock=lambda: 100.0), Recorder()
    events.subscribe(recorder)
    return events, recorder


def test_given_rule_vocabulary_when_note_then_event_named_rule_and_step_with_data():
    events, recorder = service()
    hold = events.for_rule("hold", {"check-in": "check_in_played"})

    hold.note("call-1", "check-in", (("prompt", "checkin-1"), ("due_at", 99.5)),
              operator="PJSIP/operator1")

    [event] = recorder.events
    assert (event.name, event.step, event.call_id, event.rule, event.label) == (
        "hold:check_in_played", "check_in_played", "call-1", "hold", "check-in")
    assert (event.at, event.operator, event.old, event.new) == (100.0, "PJSIP/operator1", None, None)
    assert dict(event.data) == {"prompt": "checkin-1", "due_at": 99.5}


def test_given_label_not_in_vocabulary_when_named_then_snake_case():
    assert step_of("caller id not called back", {}) == "caller_id_not_called_back"
    assert step_of("PlaybackFinished", {"PlaybackFinished": "prompt_finished"}) == "prompt_finished"
    assert step_of("check-in", {}) == "check_in"


def test_given_state_changed_when_transition_then_one_event_with_old_and_new():
    events, recorder = service()
    hold = events.for_rule("hold")

    hold.transition("call-1", State.HOLDING, State.HOLDING, at=5.0)
    hold.transition("call-1", State.HOLDING, State.CHECKING_IN, operator="", at=5.0)

    [event] = recorder.events
    assert (event.name, event.old, event.new, event.at, event.operator) == (
        "hold:state_changed", "holding", "checking_in", 5.0, None)


def test_given_event_when_data_changed_then_refused():
    events, recorder = service()
    events.for_rule("hold").note("call-1", "hold started", {"reason": "lookup"})
    with pytest.raises(TypeError):
        recorder.events[0].data["reason"] = "other"  # type: ignore[index]


def test_given_event_when_public_dict_then_every_field():
    event = CallEvent("hold:started", "call-1", 1.23456, "hold", "hold started",
                      operator="PJSIP/operator1", data={"reason": None})
    assert event.to_dict() == {"name": "hold:started", "call_id": "call-1", "at": 1.235,
                               "rule": "hold", "old": None, "new": None,
                               "operator": "PJSIP/operator1", "data": {"reason": None}}


def test_given_broken_consumer_when_published_then_logged_and_the_others_still_get_it():
    events, first = CallEvents(), Recorder()
    last = Recorder()
    for consumer in (first, Broken(), last):
        events.subscribe(consumer)

    with capture_logs() as logs:
        events.for_rule("inbound").note("call-1", "call started")

    assert len(first.events) == len(last.events) == 1
    assert [(e["event"], e["log_level"], e["consumer"]) for e in logs] == [
        ("call event consumer failed", "error", "Broken")]


def test_given_item_cut_short_by_storage_when_retried_then_each_step_published_once():
    events, recorder = service()
    queue = events.for_rule("queue")
    events.begin("call-1")
    queue.transition("call-1", "waiting", "checking_in")   # saved, then its lookup failed
    events.cut_short("call-1")
    events.settle("call-1")

    events.begin("call-1")  # the retry: from the snapshot before, every step again
    queue.transition("call-1", "waiting", "checking_in")
    queue.note("call-1", "check-in", {"position": 1})
    events.settle("call-1")
    events.begin("call-1")  # the next check-in is published as always
    queue.transition("call-1", "waiting", "checking_in")
    events.settle("call-1")

    assert [(e.name, e.new, dict(e.data)) for e in recorder.events] == [
        ("queue:state_changed", "checking_in", {}),
        ("queue:check_in", None, {"position": 1}),
        ("queue:state_changed", "checking_in", {})]


def test_given_retry_cut_short_again_when_retried_then_still_once():
    events, recorder = service()
    queue = events.for_rule("queue")
    for _ in range(2):  # the first try, and a retry that storage cut short too
        events.begin("call-1")
        queue.transition("call-1", "waiting", "checking_in")
        events.cut_short("call-1")
        events.settle("call-1")
    events.begin("call-1")
    queue.transition("call-1", "waiting", "checking_in")
    events.settle("call-1")

    assert len(recorder.events) == 1


def test_given_no_lane_item_when_published_then_every_event_reaches_consumers():
    events, recorder = service()
    events.for_rule("operators").note("", "logged in")
    events.for_rule("operators").note("", "logged in")
    assert len(recorder.events) == 2
