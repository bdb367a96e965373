"""The away recordings' names (as dialplan etiquette-away makes them), the voice message id
derived from them, whom the message is for, and the length read from the WAV file."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ari_app.policy import load_policy
from ari_app.voicemail.away import (
    TEAM, AwayMessage, away_for_whom, voicemail_id, wav_seconds,
)
from ari_app.voicemail.http import VOICEMAIL_ID

NAME = "etiquette-away/1796334578-+12125550123-100-etiquette-test-1-1796334578.42"

POLICY = """
company = "Example Corp"
languages = ["en"]

[operators]
endpoints = ["PJSIP/operator1", "PJSIP/operator2"]

[[directory]]
id = "billing"
kind = "department"
name = "Billing"
endpoint = "PJSIP/operator2"
direct_number = "4100"

[[queues]]
name = "front"
extensions = ["100"]

[[queues]]
name = "accounts"
department = "billing"
extensions = ["101"]
"""


def test_given_dialplan_name_when_parsed_then_time_number_exten_and_channel() -> None:
    message = AwayMessage.parse(NAME)
    assert message == AwayMessage(recording=NAME, at=1796334578.0, caller_number="+12125550123",
                                  exten="100", channel="etiquette-test-1-1796334578.42")


def test_given_hidden_caller_when_parsed_then_no_number() -> None:
    message = AwayMessage.parse("etiquette-away/1796334602-unknown-101-tc-72f5bad22")
    assert message is not None
    assert (message.caller_number, message.exten, message.channel) == ("", "101", "tc-72f5bad22")


@pytest.mark.parametrize("name", [
    "etiquette-away/",                                   # nothing
    "other/1796334578-+12125550123-100-x",               # another folder
    "etiquette-away/1796334578-+1212 555-100-x",         # not sanitized by the dialplan
    "etiquette-away/when-+12125550123-100-x",            # no epoch
    "etiquette-away/1796334578-+12125550123-100-",       # no channel
    "etiquette-away/1796334578-+12125550123-100-a/b",    # a deeper folder
    "etiquette-away/1796334578-anonymous-100-x",         # only "unknown" stands for no number
    "call-1~voicemail",                                  # the hold's own voice messages
])
def test_given_name_the_dialplan_does_not_make_when_parsed_then_none(name: str) -> None:
    assert AwayMessage.parse(name) is None


def test_given_same_recording_when_id_derived_then_same_id_everywhere() -> None:
    first = voicemail_id(NAME)
    assert first == voicemail_id(NAME) == AwayMessage.parse(NAME).voicemail_id
    assert VOICEMAIL_ID.fullmatch(first), "the REST routes take it as a voice message id"
    assert voicemail_id(NAME + "1") != first


def test_given_queues_when_for_whom_then_listed_queue_department_or_name(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    policy = load_policy(path)
    assert away_for_whom(policy, "101") == "billing"     # the department of the queue
    assert away_for_whom(policy, "100") == "front"       # a queue without a department
    assert away_for_whom(policy, "4999") == "front"      # unlisted: the first queue, as inbound


def test_given_no_queues_when_for_whom_then_the_team(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY.split("[[queues]]")[0])
    assert away_for_whom(load_policy(path), "100") == TEAM


def _wav(data_bytes: int, written_size: int | None = None, rate: int = 8000) -> bytes:
    size = data_bytes if written_size is None else written_size
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", size) + b"\0" * data_bytes)


def test_given_wav_when_seconds_then_from_its_size() -> None:
    assert wav_seconds(_wav(16000 * 3)) == 3.0
    assert wav_seconds(_wav(0)) == 0.0                   # hung up at the tone
    assert wav_seconds(_wav(8000, written_size=0)) == 0.5  # header never finished
    assert wav_seconds(b"not a wav file") == 0.0
