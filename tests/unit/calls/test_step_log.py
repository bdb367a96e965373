"""The step log line: one constant message per call step, with its key-values, at INFO (what
Asterisk did at DEBUG), phone numbers masked on the line and nowhere else."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ari_app.calls.events import CallEvent, CallEvents
from ari_app.calls.step_log import StepLog, masked_number


def test_given_rule_step_when_logged_then_info_line_with_key_values():
    with capture_logs() as logs:
        StepLog().on_event(CallEvent("hold:check_in_played", "call-1", 1.0, "hold", "check-in",
                                     operator="PJSIP/operator1",
                                     data={"prompt": "checkin-1", "event": "x", "why": None}))
    assert logs == [{"event": "call step", "log_level": "info", "step": "hold:check_in_played",
                     "call_id": "call-1", "rule": "hold", "operator": "PJSIP/operator1",
                     "prompt": "checkin-1"}]


def test_given_transition_when_logged_then_old_and_new():
    with capture_logs() as logs:
        StepLog().on_event(CallEvent("inbound:state_changed", "call-1", 1.0, "inbound",
                                     "state_changed", old="greeting", new="seeking_operator"))
    assert (logs[0]["log_level"], logs[0]["old"], logs[0]["new"]) == (
        "info", "greeting", "seeking_operator")


def test_given_what_asterisk_did_when_logged_then_debug():
    with capture_logs() as logs:
        StepLog().on_event(CallEvent("inbound:prompt_finished", "call-1", 1.0, "inbound",
                                     "PlaybackFinished", data={"prompt": "greeting"}))
    assert logs[0]["log_level"] == "debug"


@pytest.mark.parametrize(("number", "shown"), [
    ("+15551234567", "+1********67"),      # NANP: country code 1
    ("+442071234567", "+44********67"),
    ("+35312345678", "+353******78"),      # a three-digit country code
    ("0301234567", "********67"),          # no "+": no country code to keep
    ("+1 (555) 123-4567", "+1 (***) ***-**67"),
    ("12", "**"),                          # two digits only: nothing kept
    ("anonymous", "anonymous"),
])
def test_given_number_when_masked_then_country_code_and_last_two_digits_only(number, shown):
    assert masked_number(number) == shown


def test_given_step_with_caller_number_when_logged_then_masked_on_the_line_only():
    events, seen = CallEvents(), []
    events.subscribe(StepLog())
    events.subscribe(type("Etiquette", (), {"on_event": lambda self, e: seen.append(e)})())
    with capture_logs() as logs:
        events.publish(CallEvent("inbound:call_started", "call-1", 1.0, "inbound", "call started",
                                 data={"number": "+15551234567"}))
        events.publish(CallEvent("hold:callback_number_refused", "call-1", 2.0, "hold",
                                 "callback number refused",
                                 data={"digits": "0900123456", "try": 1}))
        events.publish(CallEvent("transfer:target_dialed", "call-1", 3.0, "transfer",
                                 "target dialed", data={"endpoint": "PJSIP/+4930123456@trunk"}))

    assert [(line["log_level"], line.get("number"), line.get("digits"), line.get("endpoint"))
            for line in logs] == [("info", "+1********67", None, None),
                                  ("info", None, "********56", None),
                                  ("info", None, None, "PJSIP/+49******56@trunk")]
    # what the etiquette log (Redis) and the live stream (the API) get is untouched
    assert [dict(e.data) for e in seen] == [{"number": "+15551234567"},
                                            {"digits": "0900123456", "try": 1},
                                            {"endpoint": "PJSIP/+4930123456@trunk"}]
    assert seen[0].to_dict()["data"] == {"number": "+15551234567"}
