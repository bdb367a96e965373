"""Keyspace: the one object that names every Redis key, and keeps the keys used together in
one script or transaction in one Redis Cluster slot."""

import pytest
from redis.crc import key_slot

from ari_app.storage import Keyspace

KEYS = Keyspace()


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_given_a_call_when_its_keys_named_then_all_share_the_call_slot():
    call = "call-5f3a"
    keys = [KEYS.call(call), KEYS.timeline(call), KEYS.lease(call), KEYS.fencing_counter(call),
            *(KEYS.snapshot(rule, call) for rule in ("hold", "transfer", "complaint-flow",
                                                     "callback-call"))]

    assert len(set(keys)) == len(keys)
    assert {slot(k) for k in keys} == {slot(f"{{{call}}}")}


def test_given_two_calls_when_named_then_they_spread_over_slots():
    assert slot(KEYS.call("call-a")) != slot(KEYS.call("call-b"))


def test_given_callback_request_when_create_or_merge_keys_named_then_one_slot():
    keys = [KEYS.record("callback", "r1"), KEYS.record_index("callback"),
            KEYS.callback_open("+12125550100"), KEYS.callback_submission("s1"),
            KEYS.callback_lock("r1"), KEYS.rate("ip:1.2.3.4", 7),
            KEYS.rate("number:+12125550100", 20000)]

    assert len({slot(k) for k in keys}) == 1


@pytest.mark.parametrize("kind", ["voicemail", "complaint"])
def test_given_a_record_kind_when_record_and_index_named_then_one_slot(kind):
    assert slot(KEYS.record(kind, "x1")) == slot(KEYS.record_index(kind))
    assert KEYS.record(kind, "x1") != KEYS.record_index(kind)


def test_given_a_customer_when_card_and_history_named_then_one_slot():
    number = "+12125550100"

    assert slot(KEYS.customer(number)) == slot(KEYS.customer_history(number))


def test_given_keys_used_alone_when_named_then_no_hash_tag():
    for key in (KEYS.live_calls(), KEYS.operator("PJSIP/operator1"),
                KEYS.operator_state("PJSIP/operator1"), KEYS.operator_day("PJSIP/operator1", "2026-12-02"),
                KEYS.dashboard_hour("2026-12-02T14")):
        assert "{" not in key and key.startswith("etq:")


def test_given_another_prefix_when_named_then_every_key_carries_it():
    keys = Keyspace("acme")

    assert keys.call("c").startswith("acme:") and keys.record("callback", "r").startswith("acme:")


@pytest.mark.parametrize("prefix", ["", "etq{", "a}b"])
def test_given_empty_or_braced_prefix_when_built_then_refused(prefix):
    with pytest.raises(ValueError, match="prefix"):
        Keyspace(prefix)


def test_given_a_family_when_star_given_then_its_scan_pattern():
    assert KEYS.snapshot("hold", "*") == "etq:{*}:snapshot:hold"
    assert KEYS.callback_lock("*") == "etq:{callback}:lock:*"


def test_given_an_operator_when_state_and_reservation_named_then_a_reservation_scan_misses_state():
    # the tests' leak check scans reservations (`operator("*")`): a state is no leak
    pattern = KEYS.operator("*").rstrip("*")

    assert not KEYS.operator_state("PJSIP/operator1").startswith(pattern)
