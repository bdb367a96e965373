"""The feature-code reader alone (inbound/feature_codes.py): digits in, an intent out. The
machine's tests key the same codes through a call; here each rule of the reader is one row."""

import pytest

from ari_app.inbound.feature_codes import (NOTHING, FeatureCodes, Intent, caller_key,
                                           operator_key, waits_for_reason)

CODES = FeatureCodes(reasons=("lookup", "consult"))


def key_all(digits: str, held: bool = False, codes: FeatureCodes = CODES
            ) -> tuple[str, list[Intent]]:
    keys, intents = "", []
    for digit in digits:
        keys, intent = operator_key(codes, keys, digit, held)
        intents.append(intent)
    return keys, intents


@pytest.mark.parametrize(("digits", "keys", "last"), [
    ("*7", "*7", Intent("wait-for-reason")),
    ("*71", "", Intent("hold", "lookup")),
    ("*72", "", Intent("hold", "consult")),
    ("*79", "", Intent("hold", None)),       # no such reason: a hold without one
    ("*9", "", Intent("supervisor")),
    ("*5", "", Intent("warn")),
    ("*221#", "", Intent("transfer", "21")),
    ("*2#", "", NOTHING),                      # no directory code
    ("*2*", "*", NOTHING),                     # the transfer code keyed by mistake
    ("*2123456789", "", NOTHING),              # more than eight digits: start again
    ("*8", "*8", NOTHING),                     # resume while talking: nothing to resume
    ("5", "", NOTHING),
    ("*6*", "*", NOTHING),                     # no code starts so: start again from the *
])
def test_given_connected_keys_when_read_then_kept_keys_and_intent(digits, keys, last):
    got_keys, intents = key_all(digits)

    assert (got_keys, intents[-1]) == (keys, last)
    assert all(i in (NOTHING, Intent("wait-for-reason")) for i in intents[:-1])


@pytest.mark.parametrize(("digits", "last"), [("*8", Intent("resume")), ("*9", NOTHING),
                                              ("*71", NOTHING), ("*21#", NOTHING)])
def test_given_held_keys_when_read_then_only_resume_counts(digits, last):
    assert key_all(digits, held=True)[1][-1] == last


def test_given_caller_keys_when_read_then_last_keys_make_the_supervisor_code():
    keys, intents = "", []
    for digit in "12*9":
        keys, intent = caller_key(CODES, keys, digit)
        intents.append(intent)

    assert intents == [NOTHING, NOTHING, NOTHING, Intent("supervisor")]
    assert keys == ""


def test_given_hold_code_alone_when_asked_then_it_waits_for_a_reason():
    assert waits_for_reason(CODES, "*7")
    assert not waits_for_reason(CODES, "*71") and not waits_for_reason(CODES, "")
