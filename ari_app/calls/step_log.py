"""A readable log line per call step: a consumer of call events.

One constant message ("call step") with the step's name, call, states, operator and data as
key-values, at INFO, so an admin watching the console sees each call go by. What the adapter
saw from Asterisk (`inbound:prompt_*`, `inbound:bridge_*`) is DEBUG: it would drown the rules.

Phone numbers are masked on the line (`+1*******67`): a console or a log shipper is no place
for customers' numbers. Only here: the etiquette log in Redis and the live stream (an API
answer, behind the token) keep the event as it is.
"""

from __future__ import annotations

import logging
import re

import structlog
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from ari_app.calls.events import CallEvent

__all__ = ["StepLog", "DEBUG_STEPS", "masked_number"]

logger = structlog.get_logger()

DEBUG_STEPS = frozenset({"inbound:prompt_started", "inbound:prompt_finished",
                         "inbound:bridge_entered", "inbound:bridge_left"})
# keys a step's data may not override on the log line
_OURS = frozenset({"event", "step", "call_id", "rule", "old", "new", "operator", "level",
                   "timestamp"})
# a step's data keys whose value is a phone number, or digits typed for one
NUMBER_KEYS = frozenset({"number", "digits", "caller_number", "customer_number"})
_E164 = re.compile(r"\+\d[\d ().-]{5,}\d")  # a number inside a text: "PJSIP/+4930123456@trunk"


def masked_number(number: str) -> str:
    """A phone number with every digit masked but its country code (E.164 only: "+" first)
    and its last 2: "+15551234567" -> "+1*******67", "0301234567" -> "********67"."""
    digits = [c for c in number if c.isdigit()]
    keep_first = 0  # country codes are prefix-free: the first that is one is the one
    if number.lstrip().startswith("+"):
        keep_first = next((n for n in (1, 2, 3) if len(digits) > n
                           and int("".join(digits[:n])) in COUNTRY_CODE_TO_REGION_CODE), 0)
    keep_last = 2 if len(digits) - keep_first > 2 else 0
    hidden = range(keep_first, len(digits) - keep_last)
    out, seen = [], 0
    for c in number:
        if c.isdigit():
            out.append("*" if seen in hidden else c)
            seen += 1
        else:
            out.append(c)
    return "".join(out)


def _masked(key: str, value: object) -> object:
    if isinstance(value, str):
        if key in NUMBER_KEYS:
            return masked_number(value)
        return _E164.sub(lambda found: masked_number(found.group()), value)
    if isinstance(value, int) and not isinstance(value, bool) and key in NUMBER_KEYS:
        return masked_number(str(value))
    if isinstance(value, (list, tuple)):
        return [_masked(key, item) for item in value]
    if isinstance(value, dict):
        return {k: _masked(str(k), v) for k, v in value.items()}
    return value


class StepLog:
    def on_event(self, event: CallEvent) -> None:
        debug = event.name in DEBUG_STEPS
        if not logger.is_enabled_for(logging.DEBUG if debug else logging.INFO):
            return  # nobody reads it: no masking, no line
        fields: dict[str, object] = {"step": event.name, "call_id": event.call_id,
                                     "rule": event.rule}
        if event.old is not None or event.new is not None:
            fields["old"], fields["new"] = event.old, event.new
        if event.operator:
            fields["operator"] = event.operator
        for key, value in event.data.items():
            if value is not None and key not in _OURS:
                fields[key] = _masked(key, value)
        if debug:
            logger.debug("call step", **fields)
        else:
            logger.info("call step", **fields)
