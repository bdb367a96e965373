"""A pool of instances, none of them there: the caller who dials into `etiquette-pool` is
answered once the shipped claim timeout (ETIQUETTE_CLAIM_MS = 1500) has passed, hears the
away prompt (not silence), leaves a message that Asterisk keeps as a stored recording, and
the first instance that runs files it as a voice message for the number's department, once,
however many instances import at the same time (real Asterisk, Redis)."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from ari_app.ari import AriNotFound
from ari_app.ari import operations as ops
from ari_app.policy import load_policy
from ari_app.storage import Keyspace
from ari_app.voicemail.away import (
    AWAY_FOLDER, INTERVAL, NO_MESSAGE, REASON, AwayMessage, AwayMessages, voicemail_id,
)
from ari_app.voicemail.service import Voicemails

from conftest import API_TOKEN
from harness import MUSIC, record_heard_since, rms_windows

pytestmark = pytest.mark.integration

KEYS = Keyspace()
NUMBER = "+12125550123"
CLAIM_S = 1.5  # the shipped dialplan's ETIQUETTE_CLAIM_MS
# the published number 100 is the accounts queue's, whose department is billing
ACCOUNTS = """
[[queues]]
name = "accounts"
department = "billing"
extensions = ["100"]
hours = "00:00-23:59"
"""


@pytest.fixture
def away_spool(spool: Path):
    """The dialplan's folder of away messages, emptied after the test (and after the leak
    checks, when set up before app_runner): a message left there would be filed again by
    every later test's app."""
    folder = spool / AWAY_FOLDER
    yield folder
    for path in folder.glob("*"):
        path.unlink(missing_ok=True)


def shipped_claim_ms() -> int:
    conf = Path(__file__).resolve().parents[2] / "dialplan" / "extensions_etiquette.conf"
    for line in conf.read_text().splitlines():
        if line.replace(" ", "").startswith("ETIQUETTE_CLAIM_MS="):
            return int(line.split("=", 1)[1])
    raise AssertionError("ETIQUETTE_CLAIM_MS not in the shipped dialplan")


async def stored_away(ari) -> list[str]:
    return [r["name"] for r in await ari.call(ops.STORED_RECORDINGS)
            if r["name"].startswith(AWAY_FOLDER + "/")]


def importer(ari, redis, settings, filed: list) -> AwayMessages:
    """Another instance's import, with its own memory: `filed` collects what it filed."""
    async def created(voicemail) -> None:
        filed.append(voicemail)
    policy = load_policy(settings.policy_file, test_time_ranges=True)
    return AwayMessages(ari, Voicemails(redis, keys=KEYS, on_created=created), policy)


@pytest.mark.timeout(90)
@pytest.mark.policy(ACCOUNTS)
async def test_given_no_pool_instance_when_caller_dials_then_away_prompt_message_filed_once(
        away_spool, app_runner, settings, parties, ari, redis, spool):
    # away_spool first: emptied only after app_runner's leak checks looked at what is left
    assert shipped_claim_ms() == CLAIM_S * 1000
    # nobody in the pool: no connected application is named like the pool's instances
    assert not [a["name"] for a in await ari.call(ops.APPLICATIONS)
                if a["name"].startswith("etiquette-pool-")]
    callers, phones, observer = parties
    dialled = time.time()
    ours, call_id = await callers.dial_local(exten="100", context="etiquette-pool",
                                             number=NUMBER)
    # what is written to the caller's leg (the Local pair's far end is the caller)
    levels, since = await record_heard_since(observer, call_id, 6, spool, spy="out")
    speech = [i for i, level in enumerate(levels) if level >= MUSIC[1]]
    assert len(speech) >= 10, f"no speech on the caller's leg: {levels}"
    first_word = since + speech[0] / 10 - dialled
    # an honest word once nobody claimed the call: not before the claim timeout, and soon after
    assert CLAIM_S - 0.2 <= first_word <= CLAIM_S + 3.0, (first_word, levels)
    broadcast = next(e for e in observer.of_type("ChannelDialplan")
                     if e["channel"]["id"] == call_id and e["dialplan_app"] == "StasisBroadcast")
    assert broadcast["dialplan_app_data"] == "1500,^etiquette-pool-,inbound:100"

    await observer.wait_for(lambda e: e.get("type") == "ChannelDialplan"
                            and e["channel"]["id"] == call_id and e["dialplan_app"] == "Record",
                            timeout=25, what="the tone and the recording after the away prompt")
    # the message (the tone may still be playing when it starts: said twice)
    await ari.play(ours, ["sound:queue-thankyou", "sound:queue-thankyou"],
                   playback_id=f"speak-{ours}")
    await callers.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                           and e["playback"]["id"] == f"speak-{ours}", what="caller spoke")
    [name] = [n for n in await stored_away(ari) if n.endswith(f"-{call_id}")]
    # still recording (the caller's channel is up): no instance files half a message
    assert await importer(ari, redis, settings, []).sweep() == []
    await callers.hang_up(ours)  # the caller hangs up after speaking: the message is kept
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == call_id, what="the caller gone")

    message = AwayMessage.parse(name)
    assert message is not None and (message.caller_number, message.exten, message.channel) == (
        NUMBER, "100", call_id)
    recorded = rms_windows(spool / f"{name}.wav")
    assert sum(level >= 1000 for level in recorded) >= 15, f"message not recorded: {recorded}"

    # an instance starts: within one import interval the message is a voice message
    started = time.monotonic()
    await app_runner.start()
    voicemails: list = []
    while not voicemails and time.monotonic() - started < INTERVAL + 5:
        status, body = await app_runner.api("GET", "/api/voicemails?for=billing&heard=false")
        assert status == 200, body
        voicemails = body["voicemails"]
        if not voicemails:
            await asyncio.sleep(0.2)  # polling the API until the deadline
    assert voicemails, f"not filed within {INTERVAL + 5} s of the app's start"
    [vm] = voicemails
    assert (vm["id"], vm["recording"], vm["for_whom"], vm["caller_number"], vm["call_id"],
            vm["reason"]) == (voicemail_id(name), name, "billing", NUMBER, call_id, REASON)
    assert vm["duration"] >= 2.0 and vm["created_at"] == message.at
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
        async with s.get(f"{app_runner.base_url}/api/voicemails/{vm['id']}/audio") as resp:
            assert resp.status == 200 and (await resp.read())[:4] == b"RIFF"
    status, card = await app_runner.api("GET", f"/api/customers/{NUMBER}")
    assert status == 200, card
    assert [e["voicemail"] for e in card["history"] if e["event"] == "voicemail left"] == [vm["id"]]

    # two more instances import at the same time: nothing is filed twice
    again: list = []
    first, second = importer(ari, redis, settings, again), importer(ari, redis, settings, again)
    assert await asyncio.gather(first.sweep(), second.sweep()) == [[], []] and again == []
    status, body = await app_runner.api("GET", "/api/voicemails")
    assert [v["id"] for v in body["voicemails"]] == [vm["id"]]

    # an admin deletes it: the recording goes too (not imported again)
    status, _ = await app_runner.api("DELETE", f"/api/voicemails/{vm['id']}")
    assert status == 200
    assert name not in await stored_away(ari)


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A 16-bit mono WAV as Record() writes it (a tone, so it is not silence)."""
    frames = int(seconds * rate)
    body = struct.pack(f"<{frames}h", *((3000 if (i // 10) % 2 else -3000) for i in range(frames)))
    return (b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", len(body)) + body)


@pytest.mark.timeout(30)
@pytest.mark.policy(ACCOUNTS)
async def test_given_two_instances_at_once_when_they_import_then_each_message_filed_once(
        settings, ari, redis, away_spool):
    away_spool.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    tag = uuid.uuid4().hex[:8]
    # a caller who hung up at the tone (only the header), one with a hidden number who spoke
    # 3 s, and a file that is not the dialplan's: left alone
    at_tone = f"{AWAY_FOLDER}/{now}-+12125550188-101-gone-{tag}"
    hidden = f"{AWAY_FOLDER}/{now}-unknown-100-gone-{tag}x"
    (away_spool.parent / f"{at_tone}.wav").write_bytes(wav(0))
    (away_spool.parent / f"{hidden}.wav").write_bytes(wav(3))
    (away_spool / "not-from-the-dialplan.wav").write_bytes(wav(1))
    assert {at_tone, hidden} <= set(await stored_away(ari))

    filed: list = []
    instances = [importer(ari, redis, settings, filed) for _ in range(3)]
    results = await asyncio.gather(*(i.sweep() for i in instances))
    assert sorted(v.recording for r in results for v in r) == sorted([at_tone, hidden])
    assert sorted(v.recording for v in filed) == sorted([at_tone, hidden]), \
        "each filed once: one card note, one webhook"
    store = Voicemails(redis, keys=KEYS)
    by_recording = {v.recording: v for v in await store.all()}
    assert set(by_recording) == {at_tone, hidden}
    missed = by_recording[at_tone]
    assert (missed.caller_number, missed.for_whom, missed.reason, missed.duration) == (
        "+12125550188", "billing", NO_MESSAGE, 0.0)  # 101 is no queue's: the first queue's
    spoke = by_recording[hidden]
    assert (spoke.caller_number, spoke.reason, spoke.duration) == ("", REASON, 3.0)
    # the same instances again, and a fresh one: nothing new
    assert [await i.sweep() for i in (*instances, importer(ari, redis, settings, filed))] \
        == [[], [], [], []]
    assert len(filed) == 2
    for name in (at_tone, hidden):
        try:
            await ari.call(ops.DELETE_STORED_RECORDING, recordingName=name)
        except AriNotFound:
            pass
