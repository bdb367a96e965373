"""A caller's recordings are named by their rule's take: a second complaint in the same call is
a file of its own, and a retried step or a restart names the same file again."""

from __future__ import annotations

from ari_app.calls import ids
from ari_app.calls.recording import CallerMessage, take_of


def message() -> CallerMessage:
    return CallerMessage(None, app="etiquette", what="complaint", snoop="cpsnoop",  # type: ignore[arg-type]
                         role="complaint", max_seconds=60)


def test_given_two_escalations_in_one_call_when_named_then_two_recordings_and_two_snoops():
    first, second = take_of(1765110000.123), take_of(1765110095.5)
    assert message().name("call-1", first) == "call-1~complaint-1765110000123"
    assert message().name("call-1", first) != message().name("call-1", second)
    assert message().snoop("call-1", first) != message().snoop("call-1", second)


def test_given_the_same_start_when_named_again_then_the_same_recording():
    assert take_of(1765110000.123) == take_of(1765110000.1230001)
    assert message().name("call-1", take_of(1765110000.123)) == message().name(
        "call-1", take_of(1765110000.123))


def test_given_a_snoops_channel_when_read_then_its_take_and_its_call():
    snoop = message().snoop("call-1", take_of(1765110000.123))
    assert message().take_in(snoop) == "1765110000123"
    assert ids.call_of(snoop) == "call-1"
    assert ids.call_of(message().name("call-1", "1765110000123")) == "call-1"


def test_given_no_take_when_named_then_the_name_before_takes():
    assert take_of(None) == ""
    assert message().name("call-1", "") == "call-1~complaint"
    assert message().take_in("call-1~cpsnoop") == ""
