"""Real SIP callers from outside the PBX: SIPp (Debian's sip-tester) dials the inbound
extension over UDP, as a carrier's trunk would."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from ari_app.inbound.keys import store_key

from test_first_call import prompt_of, talk_bridge_with

pytestmark = pytest.mark.integration
SCENARIO = Path(__file__).parent / "sipp" / "caller.xml"


async def test_given_sipp_caller_when_dials_100_then_greeted_bridged_with_operator_and_hangs_up(
        app, parties, ari, sandbox, tmp_path):
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed (apt-get install sip-tester): scripts/test installs it")
    callers, phones, observer = parties
    _, state = sandbox
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIO), "-s", "100", "-i", "127.0.0.2", "-p", "0", "-m", "1",
        "-d", "9000", "-nostdin", "-timeout", "30", f"127.0.0.1:{state.ports.sip}",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)

    greeting = await observer.wait_for(
        lambda e: e.get("type") == "PlaybackFinished" and prompt_of(e) == "greeting",
        timeout=15, what="greeting for the SIPp caller")
    call_id = greeting["playback"]["target_uri"].split(":", 1)[1]
    channel = next(c for c in await ari.channels() if c["id"] == call_id)
    assert channel["name"].startswith("PJSIP/sim-caller-")
    assert channel["caller"]["number"] == "+12125550177"
    await talk_bridge_with(ari, call_id, f"{call_id}~op1", timeout=10)

    # SIPp hangs up by itself after its pause; its verdict is its exit code
    out, _ = await asyncio.wait_for(sipp.communicate(), 40)
    assert sipp.returncode == 0, out.decode(errors="replace")[-2000:]
    await observer.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == f"{call_id}~op1", what="operator leg gone")


async def _sipp(*args: str, cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp", *args, "-nostdin", cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)


@pytest.mark.policy('[hold]\nfallback_after = 60\n[operators]\nendpoints = ["PJSIP/deskphone"]\n')
async def test_given_operator_desk_phone_when_hold_button_pressed_then_hold_etiquette_and_back(
        app, parties, ari, sandbox, tmp_path):
    """A real SIP desk phone (SIPp at the sandbox's hard-wired `deskphone` endpoint) holds with
    a re-INVITE a=sendonly and takes the call back with a=sendrecv: ChannelHold/ChannelUnhold
    drive the same hold flow as the API."""
    callers, phones, observer = parties
    phone_port = "5099"
    # -aa: answer Asterisk's qualify OPTIONS (and any INFO/NOTIFY) as a phone does
    desk = await _sipp("-sf", str(SCENARIO.parent / "phone_hold.xml"), "-s", "deskphone",
                       "-i", "127.0.0.4", "-p", phone_port, "-m", "1", "-timeout", "60", "-aa",
                       cwd=tmp_path)
    try:
        ours, call_id = await callers.dial_local("100")
        operator_leg = await observer.wait_for(
            lambda e: e.get("type") == "ChannelEnteredBridge"
            and e["bridge"]["id"] == f"{call_id}~talk" and e["channel"]["id"] != call_id,
            timeout=30, what="the desk phone answered")
        assert operator_leg["channel"]["name"].startswith("PJSIP/deskphone-")
        hold = await observer.wait_for(lambda e: e.get("type") == "ChannelHold", timeout=10,
                                       what="ChannelHold")
        assert hold["channel"]["id"] == operator_leg["channel"]["id"]
        await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                and prompt_of(e) == "hold-intro", what="hold intro")
        await observer.wait_for(lambda e: e.get("type") == "ChannelUnhold", timeout=15,
                                what="ChannelUnhold")
        await observer.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                                and prompt_of(e) == "hold-resume-thanks", what="thanks")
        await talk_bridge_with(ari, call_id, operator_leg["channel"]["id"])
        timeline = await app[store_key].timeline(call_id)
        started = [e for e in timeline if e["event"] == "hold started"]
        assert started and started[0]["source"] == "phone"
        await callers.hang_up(ours)
        out, _ = await asyncio.wait_for(desk.communicate(), 30)
        assert desk.returncode == 0, out.decode(errors="replace")[-2000:]
    finally:
        if desk.returncode is None:
            desk.kill()
            await desk.wait()
