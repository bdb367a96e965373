"""Two Asterisk nodes sharing one Redis (ETIQUETTE_NODE): real processes, an app instance on
each node, operator1's phone registered on node a only and operator2's on node b only. A caller
on a waits in the shared queue for an operator on a (b's free operator never rings for them);
a callback for a customer is dialed on the node whose operator is free."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from urllib.parse import quote

import aiohttp

import pytest

from ari_app.ari import AriClient
from ari_app.ari import operations as ops
from ari_app.callback.service import CallbackRequest, CallbackRequests
from ari_app.customers.service import Customers
from ari_app.policy import load_policy
from ari_app.sandbox.instance import SandboxInstance, SandboxPorts
from ari_app.storage import Keyspace

from conftest import API_TOKEN
from harness import (AppProcess, Callers, Party, Phones, log_errors, pool_cli,
                     render_test_prompts)
from test_callback import CUSTOMER, PHONE, callback_policy
from test_first_call import talk_bridge_with
from test_queue import BOTH, QUEUE, wait_prompt, started

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
KEYS = Keyspace()


@pytest.fixture(scope="module")
def node_b():
    """A second sandbox Asterisk (its own ports and phones), for this module's tests."""
    instance = SandboxInstance(f"test-{os.getpid()}-b")
    try:
        state = instance.up(SandboxPorts.free(), phones="stasis",
                            prompts_dir_hook=render_test_prompts)
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"a second sandbox Asterisk could not start under CI: {exc}")
        pytest.skip(f"no second sandbox Asterisk here: {exc}")
    yield instance, state
    instance.destroy()


async def _parties_on(instance: SandboxInstance, state) -> tuple[dict, AriClient, Callers, Party]:
    """A node's settings, an ARI client on it, its callers and an observer of all it does."""
    env = instance.app_env(state)
    ari = AriClient(env["ETIQUETTE_ARI_URL"], env["ETIQUETTE_ARI_USER"],
                    env["ETIQUETTE_ARI_PASSWORD"])
    callers = await Callers(ari, "etiquette-caller").start()
    observer = await Party(ari, "etiquette-observer", subscribe_all=True).start()
    return env, ari, callers, observer


def _registered(instance: SandboxInstance, phone: str) -> bool:
    return f"{phone}/sip:{phone}@" in instance.cli("pjsip show contacts")


async def _until(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # polling Asterisk's CLI, bounded
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.3)


async def _unregister(instance: SandboxInstance, phone: str) -> None:
    instance.cli(f"pjsip send unregister sim-reg-{phone}")
    await _until(lambda: not _registered(instance, phone), f"{phone} still registered")


async def _register(instance: SandboxInstance, phone: str) -> None:
    instance.cli(f"pjsip send register sim-reg-{phone}")
    await _until(lambda: _registered(instance, phone), f"{phone} did not register again")


@pytest.mark.policy(BOTH.replace("threshold = 40", "threshold = 120")
                    .replace("max_wait = 80", "max_wait = 600"))
async def test_given_two_nodes_when_callers_wait_then_served_by_operators_on_their_own_node(
        sandbox, node_b, settings, redis, ari, parties, app_runner, tmp_path):
    instance_a, _ = sandbox
    instance_b, state_b = node_b
    callers_a, phones_a, observer_a = parties
    callback_policy(settings)
    env_b = instance_b.app_env(state_b)
    ari_b = AriClient(env_b["ETIQUETTE_ARI_URL"], env_b["ETIQUETTE_ARI_USER"],
                      env_b["ETIQUETTE_ARI_PASSWORD"])
    callers_b = await Callers(ari_b, "etiquette-caller").start()
    phones_b = await Phones(ari_b, "etiquette-phones").start()
    observer_b = await Party(ari_b, "etiquette-observer", subscribe_all=True).start()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    node_a = AppProcess(settings, tmp_path / "a", settings.ari_app, API_TOKEN,
                        ETIQUETTE_NODE="a", ETIQUETTE_INSTANCE_ID="node-a",
                        ETIQUETTE_CALLBACK_DIALER="true")
    node_b_app = AppProcess(settings, tmp_path / "b", settings.ari_app, API_TOKEN,
                            ETIQUETTE_NODE="b", ETIQUETTE_INSTANCE_ID="node-b",
                            ETIQUETTE_CALLBACK_DIALER="true",
                            ETIQUETTE_ARI_URL=env_b["ETIQUETTE_ARI_URL"],
                            ETIQUETTE_ARI_USER=env_b["ETIQUETTE_ARI_USER"],
                            ETIQUETTE_ARI_PASSWORD=env_b["ETIQUETTE_ARI_PASSWORD"])
    try:
        ids = [(await client.call(ops.ASTERISK_INFO))["system"]["entity_id"]
               for client in (ari, ari_b)]
        assert ids[0] != ids[1], f"both nodes have entity id {ids[0]}"
        await _unregister(instance_a, "operator2")  # operator1 sits at node a
        await _unregister(instance_b, "operator1")  # operator2 at node b
        await asyncio.gather(node_a.start(), node_b_app.start())

        # each node's first caller is put through to the operator on that node
        x1, x1_id = await callers_a.dial_local("100", number="+12125550101")
        await talk_bridge_with(ari, x1_id, f"{x1_id}~op1", timeout=20)
        y1, y1_id = await callers_b.dial_local("100", number="+12125550201")
        await talk_bridge_with(ari_b, y1_id, f"{y1_id}~op1", timeout=20)
        leg = [e["channel"] for e in observer_b.of_type("ChannelCreated")
               if e["channel"]["id"] == f"{y1_id}~op1"]
        assert leg and leg[0]["name"].startswith("PJSIP/operator2"), leg

        # a second caller on a waits in the shared line; operator2 (node b) is freed, and
        # still never rings for them: they are not on b
        x2, x2_id = await callers_a.dial_local("100", number="+12125550102")
        await wait_prompt(observer_a, x2_id, "queue-entered", timeout=25)
        freed = time.time()
        await callers_b.hang_up(y1)
        for n in (1, 2):  # two check-ins (3 s apart): node b's dispatcher ran meanwhile
            await wait_prompt(observer_a, x2_id, "queue-checkin-", since=freed, timeout=15)
            freed = time.time()
        legs = [e["channel"]["id"] for party in (observer_a, observer_b)
                for e in party.of_type("ChannelCreated")
                if e["channel"]["id"].startswith(f"{x2_id}~")]
        assert legs == [], f"an operator was dialed for a caller on another node: {legs}"
        assert started(observer_a, x2_id, "queue-checkin-")

        # operator1 (node a) frees up: the caller on a is put through to them
        await callers_a.hang_up(x1)
        await talk_bridge_with(ari, x2_id, f"{x2_id}~qop1", timeout=25)

        # a callback for a customer: operator1 is busy, operator2 (node b) free: node b dials
        policy = load_policy(settings.policy_file, test_time_ranges=True)
        requests = CallbackRequests(redis, policy, keys=KEYS, customers=Customers(redis, keys=KEYS))
        accepted = await requests.accept(CallbackRequest(number=CUSTOMER, source="web",
                                                         earliest_at=time.time() - 1))
        op_leg = await observer_b.wait_for(lambda e: e.get("type") == "ChannelCreated"
                                           and e["channel"]["id"].startswith("cb-")
                                           and e["channel"]["id"].endswith("~op"), timeout=30,
                                           what="the callback dialed on node b")
        assert op_leg["channel"]["name"].startswith("PJSIP/operator2")
        assert not [e for e in observer_a.of_type("ChannelCreated")
                    if e["channel"]["id"].startswith("cb-")], "node a dialed the callback"
        call = op_leg["channel"]["id"].split("~")[0]
        await observer_b.wait_for(lambda e: e.get("type") == "ChannelStateChange"
                                  and e["channel"]["id"] == f"{call}~cust"
                                  and e["channel"]["state"] == "Up", timeout=20,
                                  what="the customer answered on node b")
        await observer_b.wait_for(lambda e: e.get("type") == "PlaybackStarted"
                                  and e["playback"]["target_uri"] == f"channel:{call}~cust",
                                  what="the customer hears who calls")
        print(f"callback {accepted.request.id}: dialed on node b ({call})")
        await ari_b.call(ops.SEND_DTMF, channelId=phones_b.answered[PHONE], dtmf="1")
        await talk_bridge_with(ari_b, f"{call}~op", f"{call}~cust", timeout=15)
        await ari_b.hangup(phones_b.answered[PHONE])  # the conversation ends
        await callers_a.hang_up(x2)
        deadline = time.monotonic() + 20
        while await ari_b.channels() or await redis.exists(KEYS.live_calls()):
            assert time.monotonic() < deadline, "node b's calls never ended"
            await asyncio.sleep(0.2)  # polling until both instances let everything go
    finally:
        await node_a.stop()
        await node_b_app.stop()
        for party in (callers_b, phones_b, observer_b):
            await party.stop()
        await ari_b.close()
        await _register(instance_a, "operator2")  # the session's sandbox as it was
    for instance in (node_a, node_b_app):
        assert instance.error_lines() == [], instance.error_lines()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("every_node", [False, True], ids=["per-node", "every-node"])
async def test_given_pool_command_with_two_nodes_when_up_then_each_node_greets_its_own_callers(
        every_node, sandbox, node_b, settings, redis, ari, parties, app_runner, tmp_path):
    """`ari-etiquette pool up --sandbox NAME --nodes 2 [--every-node]`, as a user tries several
    nodes: the sandbox (node a) and the sandbox NAME-b (node b, running here already) get an
    instance each (or one instance serving both), on node a's Redis; a caller on either node
    is greeted; `pool down` leaves nothing running."""
    instance_a, _ = sandbox
    instance_b, state_b = node_b
    assert instance_b.name == f"{instance_a.name}-b"  # the name the command gives node b
    callers_a, _, observer_a = parties
    env_b, ari_b, callers_b, observer_b = await _parties_on(instance_b, state_b)
    directory = tmp_path / "pool"
    cli = pool_cli(settings, directory, API_TOKEN)

    status: dict = {}
    try:
        code, out = await cli("up", "--sandbox", instance_a.name, "--nodes", "2",
                              "--instances", "1", "--first-port", "0",
                              *(["--every-node"] if every_node else []))
        assert code == 0, out
        code, out = await cli("status")
        assert code == 0, out
        status = json.loads(out)
        assert set(status) == ({"etiquette-pool-1"} if every_node
                               else {"a-etiquette-pool-1", "b-etiquette-pool-1"}), status
        for callers, observer, node in ((callers_a, observer_a, "a"), (callers_b, observer_b, "b")):
            ours, call_id = await callers.dial_local("100", context="etiquette-pool")
            await observer.wait_for(lambda e, c=call_id: e.get("type") == "PlaybackStarted"
                                    and e["playback"]["target_uri"] == f"channel:{c}",
                                    timeout=20, what=f"the caller on node {node} greeted")
            assert await redis.exists(KEYS.shards(node).lease("etiquette-pool-1")), \
                f"node {node}'s app name is held by nobody"
            await callers.hang_up(ours)
    finally:
        code, out = await cli("down")
        for party in (callers_b, observer_b):
            await party.stop()
        await ari_b.close()
    assert code == 0, out
    for info in status.values():
        with pytest.raises(ProcessLookupError):
            os.kill(info["pid"], 0)
    for app in status:
        assert log_errors(directory / f"{app}.log") == []


POOL = ("etiquette-pool-1", "etiquette-pool-2")
LEASE, INTERVAL = 3.0, 5.0


@pytest.mark.timeout(240)
@pytest.mark.policy(QUEUE.replace("threshold = 40", "threshold = 180")
                    .replace("max_wait = 80", "max_wait = 600")
                    .replace("check_in_interval = 3", f"check_in_interval = {INTERVAL:g}"))
async def test_given_instances_serving_both_nodes_when_one_is_killed_then_the_other_resumes_callers_on_each(
        sandbox, node_b, settings, redis, ari, parties, app_runner, tmp_path):
    """ETIQUETTE_NODES: every instance of the pool connects to both nodes. One instance takes
    a caller on each node; it is killed with SIGKILL; the other takes its app name over on
    both nodes and each caller hears a queue check-in again, from their own node, within the
    lease and one interval. Nobody is free (operator1 registered nowhere): they keep waiting."""
    instance_a, _ = sandbox
    instance_b, state_b = node_b
    callers_a, _, observer_a = parties
    env_b, ari_b, callers_b, observer_b = await _parties_on(instance_b, state_b)
    host_b = env_b["ETIQUETTE_ARI_URL"].split("://", 1)[1]
    nodes = (f"a={settings.ari_url},b=http://{quote(env_b['ETIQUETTE_ARI_USER'])}:"
             f"{quote(env_b['ETIQUETTE_ARI_PASSWORD'], safe='')}@{host_b}")
    one, two = (AppProcess(settings, tmp_path, app, API_TOKEN, ETIQUETTE_NODES=nodes,
                           ETIQUETTE_NODE="a", ETIQUETTE_POOL_APPS=",".join(POOL),
                           ETIQUETTE_POOL_LEASE=str(LEASE), ETIQUETTE_INSTANCE_ID=f"test/{app}")
                for app in POOL)
    waiting: list[tuple[Callers, str, str]] = []
    try:
        await _unregister(instance_a, "operator1")
        await _unregister(instance_b, "operator1")
        await one.start()
        for callers, number in ((callers_a, "+12125550301"), (callers_b, "+12125550302")):
            ours, call_id = await callers.dial_local("100", context="etiquette-pool",
                                                     number=number)
            waiting.append((callers, ours, call_id))
        for (_, _, call_id), observer in zip(waiting, (observer_a, observer_b)):
            await wait_prompt(observer, call_id, "queue-checkin-", timeout=40)
        await two.start()

        killed_at = time.time()
        one.proc.send_signal(signal.SIGKILL)
        await one.proc.wait()
        for (_, ours, call_id), observer, node in zip(waiting, (observer_a, observer_b), "ab"):
            event = await wait_prompt(observer, call_id, "queue-checkin-", since=killed_at,
                                      timeout=LEASE + 2 * INTERVAL + 10)
            print(f"node {node}: a check-in {event['_t'] - killed_at:.1f} s after the kill")
            holder = await redis.get(KEYS.shards(node).lease(POOL[0]))
            assert holder and holder.decode().startswith(f"test/{POOL[1]}"), holder
        assert {c["id"] for c in await ari.channels()} >= {waiting[0][1]}
        assert {c["id"] for c in await ari_b.channels()} >= {waiting[1][1]}
        async with aiohttp.ClientSession() as s:
            async with s.get(two.base_url + "/healthz") as resp:
                health = await resp.json()
        assert resp.status == 200 and set(health["pool"]) == {"a", "b"}, health
        for callers, ours, _ in waiting:
            await callers.hang_up(ours)
        deadline = time.monotonic() + 20
        while await redis.exists(KEYS.live_calls()):
            assert time.monotonic() < deadline, "the callers' calls never ended"
            await asyncio.sleep(0.2)  # polling until the survivor let both calls go
    finally:
        await one.stop()
        await two.stop()
        for party in (callers_b, observer_b):
            await party.stop()
        await ari_b.close()
        await _register(instance_a, "operator1")
        await _register(instance_b, "operator1")
    assert two.error_lines() == [], two.error_lines()
