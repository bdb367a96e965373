"""`ari-etiquette doctor`: check everything the app needs and name exactly what is wrong.

Each check returns a verdict line; later checks that depend on a failed one are skipped with
the reason, so the first FAIL is the thing to fix.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import AuthenticationError, RedisError

from ari_app.ari import AriClient, AriError, AriNotFound, AriUnauthorized, EventStream
from ari_app.ari import operations as ops
from ari_app.policy import Policy, PolicyError, load_policy
from ari_app.prompts.catalog import load_catalog
from ari_app.settings import NodeAri, Settings
from ari_app.storage.connect import storage_client, where
from ari_app.storage.keyspace import Keyspace
from ari_app.transfer.directory import Directory

__all__ = ["Check", "POOL_MODULES", "REQUIRED_MODULES", "run_doctor", "waiting_check"]

REQUIRED_MODULES = (
    "res_ari.so", "res_ari_channels.so", "res_ari_bridges.so", "res_ari_playbacks.so",
    "res_ari_recordings.so", "res_ari_endpoints.so", "res_ari_events.so", "res_ari_asterisk.so",
    "res_ari_applications.so", "res_ari_sounds.so", "res_stasis.so", "res_stasis_playback.so",
    "res_stasis_recording.so", "res_stasis_snoop.so", "res_stasis_answer.so", "app_stasis.so",
    "res_http_websocket.so", "chan_pjsip.so", "res_musiconhold.so", "bridge_holding.so",
    "bridge_simple.so", "bridge_softmix.so", "chan_bridge_media.so", "format_wav.so",
    "format_gsm.so", "codec_ulaw.so", "codec_gsm.so", "codec_resample.so",
    # res_ari's own WebSocket needs it since 22; the phone's transfer button (a SIP REFER the
    # app is told of); CHANNEL(endpoint), which names the desk phone a code came from
    "res_websocket_client.so", "res_pjsip_refer.so", "func_channel.so",
)
# several instances sharing one Asterisk's callers need them (app_record: the message of a
# caller no instance took, dialplan etiquette-away); one instance runs without
POOL_MODULES = ("res_stasis_broadcast.so", "app_stasis_broadcast.so", "app_record.so")
CORE_SOUNDS = ("ss-noservice", "beep", "silence/1")


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    # it works, but callers get less etiquette than they could (said, never a failure)
    warn: bool = False

    def line(self) -> str:
        tag = "WARN" if self.warn else {True: "OK  ", False: "FAIL", None: "SKIP"}[self.ok]
        return f"{tag} {self.name}: {self.detail}"


async def run_doctor(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    policy = _check_policy(settings, checks)
    _check_staff(settings, policy, checks)
    home, *others = settings.ari_nodes()
    ari = AriClient(home.url, home.user, home.password, request_timeout=3)
    try:
        usable = await _check_ari(ari, home.user, checks)
        if usable:
            await _check_modules(ari, checks, pool=bool(settings.pool()))
            await _check_events(ari, settings, checks)
            await _check_sounds(ari, policy, checks)
            await _check_operators(ari, policy, checks)
        else:
            checks.append(Check("Asterisk modules, sounds, operators", None,
                                "not checked: ARI is not usable"))
        await _check_redis(settings, checks)
        if settings.pool() and usable:
            await _check_pool(ari, settings, checks, home.node)
    finally:
        await ari.close()
    for node in others:  # every other node this instance serves (settings `nodes`)
        await _check_other_node(node, settings, checks)
    return checks


async def _check_other_node(node: NodeAri, settings: Settings, checks: list[Check]) -> None:
    """Another node this instance serves: reachable with its credentials, and with a pool,
    who holds its app names there."""
    ari = AriClient(node.url, node.user, node.password, request_timeout=3)
    try:
        found: list[Check] = []
        if await _check_ari(ari, node.user, found):
            await _check_modules(ari, found, pool=bool(settings.pool()))
            if settings.pool():
                await _check_pool(ari, settings, found, node.node)
        checks += [Check(f"node {node.node}: {c.name}", c.ok, c.detail) for c in found]
    finally:
        await ari.close()


async def _check_pool(ari: AriClient, settings: Settings, checks: list[Check],
                      node: str | None) -> None:
    """Who holds each of the pool's app names, and whether Asterisk sees it connected: what an
    admin needs when a caller went to the way out."""
    keys = Keyspace().shards(node)
    redis = storage_client(settings, timeout=2)
    try:
        holders = [await redis.get(keys.lease(app)) for app in settings.pool()]
    except (RedisError, OSError) as exc:
        checks.append(Check("pool", None, f"not checked: Redis not usable ({exc})"))
        return
    finally:
        await redis.aclose()
    connected = {a.get("name") for a in await ari.call(ops.APPLICATIONS)}
    parts = []
    for app, raw in zip(settings.pool(), holders):
        holder = raw.decode().rpartition(":")[0] if raw else None
        parts.append(f"{app}: " + (f"held by {holder}" if holder else "nobody")
                     + (", connected" if app in connected else ", not connected"))
    served = [app for app in settings.pool() if app in connected]
    checks.append(Check("pool", bool(served), "; ".join(parts) + (
        "" if served else ": no instance takes callers now, they all go to the way out "
        "(etiquette-away)")))


def _check_policy(settings: Settings, checks: list[Check]) -> Policy | None:
    try:
        policy = load_policy(settings.policy_file, test_time_ranges=settings.test_time_ranges)
    except PolicyError as exc:
        checks.append(Check("policy", False, str(exc).replace("\n", "; ")))
        return None
    except OSError as exc:
        checks.append(Check("policy", False, f"cannot read {settings.policy_file}: {exc}"))
        return None
    checks.append(Check("policy", True, f"{settings.policy_file} is valid"))
    countries = policy.callback.allowed_countries
    checks.append(Check("callback countries", bool(countries), (
        f"callbacks may call numbers in {', '.join(countries)}" if countries else
        f"no number will be called back: business_hours.time_zone "
        f"{policy.business_hours.time_zone!r} is in no country; set callback.allowed_countries "
        f'(e.g. ["US"]; README "Toll fraud")')))
    checks.append(waiting_check(policy))
    return policy


def waiting_check(policy: Policy) -> Check:
    """Where a caller who finds nobody free waits: a WARN for what the policy leaves out."""
    if shortfalls := policy.shortfalls():
        return Check("waiting callers", True, "; ".join(shortfalls), warn=True)
    return Check("waiting callers", True, "callers who find nobody free wait in "
                 + ", ".join(q.name for q in policy.queues)
                 + " (check-ins, their place in line, the way out)")


def _check_staff(settings: Settings, policy: Policy | None, checks: list[Check]) -> None:
    """The staff file: readable, valid, its operators' phones in the policy."""
    from ari_app.staff.accounts import StaffAccounts, StaffFileError

    if settings.staff_file is None:
        checks.append(Check("staff sign-in", None, "ETIQUETTE_STAFF_FILE unset: no console or "
                            "dashboard sign-in (the API takes the bearer token only)"))
        return
    try:
        accounts = StaffAccounts.load(settings.staff_file).accounts
    except StaffFileError as exc:
        checks.append(Check("staff sign-in", False, str(exc)))
        return
    strangers = sorted(a.user for a in accounts.values() if policy is not None
                       and a.role == "operator" and a.endpoint not in policy.operators.endpoints)
    if strangers:
        checks.append(Check("staff sign-in", False, f"operators whose endpoint is not in the "
                            f"policy's operators.endpoints: {', '.join(strangers)}"))
        return
    roles = [a.role for a in accounts.values()]
    checks.append(Check("staff sign-in", True, f"{roles.count('operator')} operator(s), "
                        f"{roles.count('supervisor')} supervisor(s) in {settings.staff_file}"))


async def _check_ari(ari: AriClient, user: str, checks: list[Check]) -> bool:
    try:
        info = await ari.call(ops.ASTERISK_INFO)
    except AriUnauthorized:
        checks.append(Check("ARI credentials", False,
                            f"Asterisk at {ari.base_url} rejected user {user!r}: "
                            "wrong password, or the user is missing from ari.conf"))
        return False
    except AriError as exc:
        checks.append(Check("ARI reachable", False, exc.message))
        return False
    version = (info.get("system") or {}).get("version", "?")
    checks.append(Check("ARI reachable", True, f"{ari.base_url} (Asterisk {version})"))
    checks.append(Check("ARI credentials", True, f"user {user!r} accepted"))
    major = version.split(".")[0]
    if major.isdigit() and int(major) < 22:
        checks.append(Check("Asterisk version", False, f"{version}: Asterisk 22 or later needed"))
    return True


async def _check_modules(ari: AriClient, checks: list[Check], pool: bool = False) -> None:
    modules = {m["name"]: m.get("status") for m in await ari.call(ops.MODULES)}
    missing = [m for m in REQUIRED_MODULES if modules.get(m) != "Running"]
    if missing:
        checks.append(Check("Asterisk modules", False, "not loaded: " + ", ".join(missing)
                            + " (add `load = ...` lines to modules.conf)"))
    else:
        checks.append(Check("Asterisk modules", True, f"all {len(REQUIRED_MODULES)} loaded"))
    _check_pool_modules(modules, checks, pool)


def _check_pool_modules(modules: dict[str, str | None], checks: list[Check],
                        pool: bool = False) -> None:
    """StasisBroadcast: needed only for several instances sharing one Asterisk's callers (a
    failure when this instance is set up as one of a pool)."""
    missing = [m for m in POOL_MODULES if modules.get(m) != "Running"]
    if missing:
        checks.append(Check("several instances (StasisBroadcast)", False if pool else None, (
            "not loaded: " + ", ".join(missing) + ": run one instance per Stasis app name, as "
            "the dialplan names it; to share callers among instances load them (Asterisk "
            "22.10 or later; modules.conf)")))
    else:
        checks.append(Check("several instances (StasisBroadcast)", True,
                            "loaded: instances can share inbound callers, first claim wins"))


async def _check_events(ari: AriClient, settings: Settings, checks: list[Check]) -> None:
    stream = EventStream(ari, settings.ari_app + "-doctor", lambda event: None)
    try:
        ws = await stream.connect_once()
    except AriError as exc:
        checks.append(Check("ARI events WebSocket", False, exc.message))
        return
    await ws.close()
    checks.append(Check("ARI events WebSocket", True, "connects"))


async def _check_sounds(ari: AriClient, policy: Policy | None, checks: list[Check]) -> None:
    languages = list(policy.languages) if policy else ["en"]
    catalog = load_catalog()
    missing = []
    names = Directory(policy).rendered_names() if policy else {}
    wanted = [f"etiquette/{name}" for name in [*catalog.names(), *names]] + list(CORE_SOUNDS)
    results = await asyncio.gather(*(ari.call(ops.SOUND, soundId=s) for s in wanted),
                                   return_exceptions=True)
    for sound, result in zip(wanted, results):
        if isinstance(result, AriNotFound):
            missing.append(f"{sound} (all languages)")
            continue
        if isinstance(result, Exception):
            missing.append(f"{sound} ({result})")
            continue
        have = {f.get("language") for f in result.get("formats", [])}
        lacking = [lang for lang in languages if lang not in have]
        if lacking and not sound.startswith(("silence", "beep")):
            missing.append(f"{sound} ({','.join(lacking)})")
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        checks.append(Check("sound files", False, f"missing: {shown}; run "
                            "`ari-etiquette prompts render` into Asterisk's sounds folder"))
    else:
        checks.append(Check("sound files", True,
                            f"{len(wanted)} prompts in {', '.join(languages)}"))


async def _check_operators(ari: AriClient, policy: Policy | None, checks: list[Check]) -> None:
    """Operators, supervisors and transfer targets must be endpoints this Asterisk knows."""
    if policy is None:
        checks.append(Check("operators", None, "not checked: the policy is invalid"))
        return
    groups = {"operators": policy.operators.endpoints,
              "supervisors": policy.supervisor.endpoints,
              "transfer directory": tuple(e.endpoint for e in policy.directory)}
    for label, endpoints in groups.items():
        if not endpoints and label != "operators":
            continue
        problems, online = [], 0
        for endpoint in endpoints:
            tech, _, resource = endpoint.partition("/")
            if tech == "Local":
                continue  # a dialplan destination: nothing to look up
            try:
                info = await ari.endpoint(tech, resource)
            except AriNotFound:
                problems.append(f"{endpoint} is not an endpoint in this Asterisk (pjsip.conf)")
                continue
            online += info.get("state") == "online"
        if problems:
            checks.append(Check(label, False, "; ".join(problems)))
        elif label == "operators" and not endpoints:
            checks.append(Check(label, False, "none in the policy ([operators] endpoints): no "
                                "caller could ever be put through to anyone"))
        else:
            checks.append(Check(label, True, f"{len(endpoints)} configured, "
                                f"{online} with a phone registered now"))


async def _check_redis(settings: Settings, checks: list[Check]) -> None:
    redis = storage_client(settings, timeout=2)
    try:
        await redis.ping()
        info = await redis.info("persistence")
        replication = await redis.info("replication") if settings.sentinels() else {}
    except AuthenticationError as exc:
        checks.append(Check("Redis", False, f"{where(settings)} refused the password: {exc}"))
        return
    except MasterNotFoundError as exc:
        checks.append(Check("Redis", False, f"no master named {settings.redis_master!r}: the "
                            "sentinels do not know it (sentinel monitor <name> ... in their "
                            f"config; ETIQUETTE_REDIS_MASTER): {exc}"))
        return
    except (RedisError, OSError) as exc:
        checks.append(Check("Redis", False, f"not reachable: {where(settings)}: {exc}"))
        return
    finally:
        await redis.aclose()
    aof = "append-only on" if info.get("aof_enabled") else "append-only OFF: accepted requests "\
        "could be lost on a crash (set appendonly yes)"
    replicas = ""
    if settings.sentinels():
        replicas = f", {replication.get('connected_slaves', 0)} replica(s) connected"
    checks.append(Check("Redis", bool(info.get("aof_enabled")),
                        f"{where(settings)}, {aof}{replicas}"))
