"""Real SIP callers from outside the PBX: SIPp (Debian's sip-tester) dials the inbound
extension over UDP, as a carrier's trunk would."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

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
