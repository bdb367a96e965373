"""`ari-etiquette`: run the app, manage the sandbox, check a deployment, render prompts."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from ari_app.log import configure_logging

__all__ = ["main"]


def _settings(args: argparse.Namespace):
    from ari_app.settings import Settings

    env_file = getattr(args, "env_file", None)
    try:
        return Settings(_env_file=env_file) if env_file else Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a check across settings: its message names them
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            key = "ETIQUETTE_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{key}: {'is not set' if err['type'] == 'missing' else err['msg']}")
        sys.exit("settings: " + "; ".join(problems))


def cmd_run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from ari_app.app import StartupError, build_app

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format, cache=True)
    policy = _policy(settings)
    if policy is None:
        return 2
    app = build_app(settings, policy)
    app.on_shutdown.insert(0, _bounded_shutdown)
    listening = _tell_systemd(app)
    _use_event_loop(settings.event_loop)
    try:
        # keepalive_timeout also bounds a connection that never finishes its headers (aiohttp
        # arms it at connect); a stalled body is cut by read_json's BODY_TIMEOUT.
        web.run_app(app, host=settings.http_host, port=settings.http_port, print=listening,
                    access_log=None, keepalive_timeout=15, shutdown_timeout=SHUTDOWN_GRACE)
    except StartupError as exc:
        print(f"ari-etiquette cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _tell_systemd(app):
    """Under systemd (`Type=notify`, config/systemd/): ready once the port listens, then the
    /healthz verdict as its status and the watchdog's pings till SIGTERM says stopping. The
    returned callable is run_app's `print`, which aiohttp calls once every site listens; None
    (nothing printed) when no service manager listens."""
    from ari_app.http import health_line, health_report
    from ari_app.systemd import ServiceManager

    manager = ServiceManager()
    if not manager.enabled:
        return None
    informing: list[asyncio.Task] = []

    async def report() -> str:
        return health_line(await health_report(app))

    def listening(*_: object) -> None:
        manager.ready("serving: ARI events connected, calls taken back")
        informing.append(asyncio.get_running_loop().create_task(manager.keep_informed(report)))

    async def stopping(app) -> None:
        manager.stopping("stopping: the calls stay up in Asterisk and Redis for whoever "
                         "takes them back")
        for task in informing:
            task.cancel()
        await asyncio.gather(*informing, return_exceptions=True)
        manager.close()

    app.on_shutdown.insert(0, stopping)
    return listening


def cmd_intake(args: argparse.Namespace) -> int:
    from ari_app.web_intake import run_intake

    settings = _settings(args)
    if args.port is not None:
        settings = settings.model_copy(update={"intake_port": args.port})
    configure_logging(settings.log_level, settings.log_format, cache=True)
    policy = _policy(settings)
    if policy is None:
        return 2
    _use_event_loop(settings.event_loop)
    return run_intake(settings, policy, args.workers)


def _policy(settings):
    """The policy file read and checked; None, the problem printed, when it cannot be."""
    from ari_app.policy import PolicyError, load_policy

    try:
        return load_policy(settings.policy_file, test_time_ranges=settings.test_time_ranges)
    except PolicyError as exc:
        print(f"the etiquette policy is invalid:\n{exc}", file=sys.stderr)
    except OSError as exc:
        print(f"cannot read the policy file {settings.policy_file}: {exc}", file=sys.stderr)
    return None


def _use_event_loop(name: str) -> None:
    """uvloop when asked for and installed (run_app makes its loop from the policy)."""
    if name != "uvloop":
        return
    import structlog

    try:
        import uvloop
    except ImportError:
        structlog.get_logger().warning("uvloop is not installed: asyncio's event loop is used")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


SHUTDOWN_GRACE = 10.0  # s a request in flight may take to finish after SIGTERM
SHUTDOWN_LIMIT = 25.0  # s after SIGTERM the process is gone, whatever is still running


async def _bounded_shutdown(app) -> None:
    """SIGTERM always ends the process: calls live on in Asterisk and Redis (another
    instance, or this one restarted, takes them back), so a shutdown step that hangs must not
    keep a stopped app around. Past the limit the tasks still running are logged, then exit."""
    import threading

    loop = asyncio.get_running_loop()

    def force() -> None:
        tasks = []
        try:
            tasks = [f"{t.get_name()}: {t.get_coro()!r}" for t in asyncio.all_tasks(loop)]
        except RuntimeError:
            pass
        import structlog
        structlog.get_logger().warning("shutdown took too long; exiting now",
                                       limit_s=SHUTDOWN_LIMIT, tasks=tasks[:20])
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(SHUTDOWN_LIMIT, force)
    timer.daemon = True
    timer.start()


def cmd_doctor(args: argparse.Namespace) -> int:
    from ari_app.doctor import run_doctor

    settings = _settings(args)
    checks = asyncio.run(run_doctor(settings))
    for check in checks:
        print(check.line())
    failed = [c for c in checks if c.ok is False]
    passed = [c for c in checks if c.ok]
    warned = sum(c.warn for c in checks)
    print(f"\ndoctor: {len(passed)} ok" + (f" ({warned} with a warning)" if warned else "")
          + f", {len(failed)} failing, {len(checks) - len(passed) - len(failed)} not checked")
    return 1 if failed else 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ari_app.sandbox.instance import SandboxInstance, SandboxPorts
    from ari_app.sandbox.rootfs import ensure_rootfs

    configure_logging("INFO", "console")
    if args.action == "build":
        print(ensure_rootfs())
        return 0
    instance = SandboxInstance(args.name)
    if args.action == "up":
        ports = SandboxPorts(http=args.http_port, sip=args.sip_port, redis=args.redis_port,
                             rtp_start=args.rtp_start, rtp_end=args.rtp_end)
        state = instance.up(ports, phones=args.phones,
                            prompts_dir_hook=_prompt_renderer(args.policy))
        print(f"sandbox {args.name} is up: ARI http://127.0.0.1:{state.ports.http}, "
              f"SIP udp 127.0.0.1:{state.ports.sip}, Redis 127.0.0.1:{state.ports.redis}")
        print(f"app settings: {instance.dir / 'app.env'}")
        for phone, password in state.phone_passwords.items():
            print(f"desk phone {phone}: register to 127.0.0.1:{state.ports.sip} as {phone} / {password}")
        for user, password in state.staff_passwords.items():
            print(f"console/dashboard sign-in: {user} / {password}")
    elif args.action == "down":
        instance.down()
    elif args.action == "destroy":
        instance.destroy()
    elif args.action == "status":
        status = instance.status()
        print(json.dumps(status, indent=2))
        return 0 if status.get("running") else 3
    elif args.action == "env":
        print(instance.dir / "app.env")  # the settings file for `run --env-file`
    return 0


def cmd_sentinel(args: argparse.Namespace) -> int:
    """A Redis Sentinel group on loopback to try the app's failover by hand."""
    from ari_app.sandbox.sentinel import SentinelGroup

    directory = Path(args.dir).resolve()
    if args.action == "up":
        group = SentinelGroup(directory).up()
        env = group.save()
        print(f"Redis master on 127.0.0.1:{group.master_port()}, replicas on "
              f"{', '.join(str(p) for p in group.data_ports[1:])}, sentinels on "
              f"{group.sentinels}")
        print(f"the app's Redis settings: {env} (add them to app.env)")
        return 0
    try:
        group = SentinelGroup.load(directory)
    except FileNotFoundError:
        print(f"no Sentinel group in {directory}: ari-etiquette sentinel up --dir {args.dir}",
              file=sys.stderr)
        return 2
    if args.action == "down":
        group.down()
        group.save()
    elif args.action == "kill-master":
        old = group.master_port()
        if old is None:
            print("the sentinels know no master now", file=sys.stderr)
            return 1
        group.kill(old)
        group.save()
        print(f"killed the master on {old}; waiting for the sentinels to promote a replica")
        print(f"new master on 127.0.0.1:{group.wait_failover(old)}")
    elif args.action == "status":
        print(json.dumps({"master": group.master_port(), "sentinels": group.sentinels,
                          "running": sorted(group.pids)}, indent=2))
    return 0


def cmd_pool(args: argparse.Namespace) -> int:
    """A pool of app instances on the sandbox's Asterisk (and a Sentinel group), one command."""
    from ari_app.sandbox.instance import SandboxInstance, SandboxPorts
    from ari_app.sandbox.pool import AppPool, read_env

    configure_logging("INFO", "console")
    directory = Path(args.dir).resolve()
    if args.action == "up":
        nodes = None
        if args.env_file:
            base = read_env(Path(args.env_file))
        else:
            # node a is the sandbox itself, node b the sandbox NAME-b, ...
            names = [args.sandbox] + [f"{args.sandbox}-{chr(ord('a') + n)}"
                                      for n in range(1, args.nodes)]
            envs = []
            for n, name in enumerate(names):  # the first on the usual ports, others free ones
                sandbox = SandboxInstance(name)
                if not sandbox.status().get("running"):
                    sandbox.up(SandboxPorts() if n == 0 else SandboxPorts.free(),
                               phones="answer", prompts_dir_hook=_prompt_renderer(None))
                envs.append(read_env(sandbox.dir / "app.env"))
            base = envs[0]  # its Redis is everyone's
            if args.nodes > 1:
                nodes = {chr(ord("a") + n): {k: v for k, v in env.items()
                                             if k.startswith("ETIQUETTE_ARI_")}
                         for n, env in enumerate(envs)}
        for key, value in os.environ.items():  # the policy, the API token, ...
            if key.startswith("ETIQUETTE_") and key not in base:
                base[key] = value
        pool = AppPool(directory).up(base, args.instances, sentinel=args.sentinel,
                                     first_port=args.first_port, lease=args.lease, nodes=nodes,
                                     every_node=args.every_node)
        for app, info in pool.status().items():
            print(f"{app}: pid {info['pid']}, {info['url']} (log {directory / (app + '.log')})")
        print("callers: dial 100@etiquette-pool; desk phones: context etiquette-pool-operators")
        return 0
    try:
        pool = AppPool.load(directory)
    except FileNotFoundError:
        print(f"no pool in {directory}: ari-etiquette pool up --dir {args.dir}", file=sys.stderr)
        return 2
    if args.action == "down":
        pool.down()
    elif args.action == "status":
        status = pool.status()
        print(json.dumps(status, indent=2))
        return 0 if status and all(i["healthy"] for i in status.values()) else 3
    return 0


def _prompt_renderer(policy_file: str | None):
    from ari_app.policy import load_policy
    from ari_app.prompts.install import install_prompts

    from ari_app.transfer.directory import Directory

    path = policy_file or os.environ.get("ETIQUETTE_POLICY_FILE", "config/policy.example.toml")
    policy = load_policy(path)
    names = Directory(policy).rendered_names()
    return lambda out: print(install_prompts(out, {"company": policy.company},
                                             policy.languages, names).summary())


def cmd_prompts(args: argparse.Namespace) -> int:
    from ari_app.policy import load_policy
    from ari_app.prompts.install import install_prompts

    from ari_app.transfer.directory import Directory

    policy = load_policy(args.policy)
    report = install_prompts(Path(args.out), {"company": policy.company}, policy.languages,
                             Directory(policy).rendered_names())
    print(report.summary())
    return 0


def cmd_music(args: argparse.Namespace) -> int:
    from ari_app.prompts.music import main as music_main

    return music_main([args.folder])


def cmd_staff(args: argparse.Namespace) -> int:
    """Set, list or remove who may sign in to the console and the dashboard."""
    import getpass

    from ari_app.staff.accounts import (Account, StaffAccounts, StaffFileError, hash_password,
                                        new_password, parse, render)

    path = Path(args.file or os.environ.get("ETIQUETTE_STAFF_FILE") or "config/staff.toml")
    try:
        accounts = StaffAccounts.load(path).accounts if path.exists() else {}
    except StaffFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.action == "list":
        for account in accounts.values():
            print(f"{account.user}\t{account.role}\t{account.endpoint or ''}")
        return 0
    if not args.user:
        print("name the user: ari-etiquette staff set USER --role ...", file=sys.stderr)
        return 2
    if args.action == "remove":
        if accounts.pop(args.user, None) is None:
            print(f"no user {args.user!r} in {path}", file=sys.stderr)
            return 1
    else:
        old = accounts.get(args.user)
        role = args.role or (old.role if old else None)
        endpoint = args.endpoint or (old.endpoint if old else None)
        if role is None:
            print("--role operator|supervisor is needed for a new user", file=sys.stderr)
            return 2
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        elif sys.stdin.isatty() and not args.generate:
            password = getpass.getpass(f"password for {args.user}: ")
        else:
            password = new_password()
            print(f"{args.user}: {password}")
        if len(password) < 8:
            print("a password needs at least 8 characters", file=sys.stderr)
            return 2
        account = Account(args.user, role, endpoint, hash_password(password))
        try:  # the same checks as at start
            parse({"users": {account.user: {k: v for k, v in (
                ("role", role), ("endpoint", endpoint), ("password", account.password))
                if v is not None}}}, str(path))
        except StaffFileError as exc:
            print(exc, file=sys.stderr)
            return 2
        accounts[args.user] = account
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(accounts), encoding="utf-8")
    path.chmod(0o600)
    print(f"{path}: {len(accounts)} account(s); restart the app to use them")
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("--port: 1 to 65535")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("--workers: 1 to 64 processes")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ari-etiquette",
        description="Call-center telephone etiquette, enforced inside the call flow (Asterisk ARI).")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the app (settings from ETIQUETTE_* and .env)")
    run.add_argument("--env-file", help="read settings from this file instead of .env")
    run.set_defaults(func=cmd_run)

    intake = sub.add_parser("intake", help="the public callback form on processes of its own "
                            "(one port, SO_REUSEPORT), apart from call control")
    intake.add_argument("--env-file", help="read settings from this file instead of .env")
    intake.add_argument("--workers", type=_workers, default=os.cpu_count() or 1,
                        help="processes sharing the port (default: one per core)")
    intake.add_argument("--port", type=_port, help="instead of ETIQUETTE_INTAKE_PORT (8095)")
    intake.set_defaults(func=cmd_intake)

    doctor = sub.add_parser("doctor", help="check ARI, credentials, modules, sounds, Redis")
    doctor.add_argument("--env-file", help="read settings from this file instead of .env")
    doctor.set_defaults(func=cmd_doctor)

    sentinel = sub.add_parser("sentinel", help="a Redis Sentinel group on loopback (a master, "
                              "two replicas, three sentinels) to try a failover")
    sentinel.add_argument("action", choices=["up", "down", "status", "kill-master"])
    sentinel.add_argument("--dir", default="sentinel-sandbox",
                          help="where its files, logs and settings go")
    sentinel.set_defaults(func=cmd_sentinel)

    pool = sub.add_parser("pool", help="several app instances sharing the sandbox's callers "
                          "(StasisBroadcast), optionally on a Redis Sentinel group")
    pool.add_argument("action", choices=["up", "down", "status"])
    pool.add_argument("--dir", default="pool-sandbox", help="its settings, logs and state")
    pool.add_argument("--instances", type=int, default=2, help="instances per node")
    pool.add_argument("--nodes", type=int, default=1, choices=range(1, 5),
                      help="Asterisk nodes (sandboxes NAME, NAME-b, ...) sharing the first's "
                           "Redis, each with its own instances (ETIQUETTE_NODE a, b, ...)")
    pool.add_argument("--every-node", action="store_true",
                      help="with --nodes: each instance serves every node (ETIQUETTE_NODES), "
                           "so a survivor takes over callers on all of them")
    pool.add_argument("--sentinel", action="store_true",
                      help="Redis through a Sentinel group (a master, two replicas, three "
                           "sentinels) instead of the sandbox's Redis")
    pool.add_argument("--sandbox", default="default", help="the sandbox to start or use")
    pool.add_argument("--env-file", help="use these ARI and Redis settings instead of a sandbox")
    pool.add_argument("--first-port", type=int, default=8091,
                      help="the first instance's HTTP port (the next ones follow)")
    pool.add_argument("--lease", type=float, default=5.0, help="ETIQUETTE_POOL_LEASE")
    pool.set_defaults(func=cmd_pool)

    sandbox = sub.add_parser("sandbox", help="a local Asterisk 22 + Redis for development")
    sandbox.add_argument("action", choices=["build", "up", "down", "status", "env", "destroy"])
    sandbox.add_argument("--name", default="default")
    sandbox.add_argument("--phones", choices=["answer", "none", "stasis"], default="none",
                         help="simulated operator phones: none (register your own softphones), "
                              "answer (they pick up), stasis (tests drive them)")
    sandbox.add_argument("--policy", help="policy file for the company name in the prompts")
    sandbox.add_argument("--http-port", type=int, default=8088)
    sandbox.add_argument("--sip-port", type=int, default=5060)
    sandbox.add_argument("--redis-port", type=int, default=6390)
    sandbox.add_argument("--rtp-start", type=int, default=10000)
    sandbox.add_argument("--rtp-end", type=int, default=10999)
    sandbox.set_defaults(func=cmd_sandbox)

    prompts = sub.add_parser("prompts", help="render the prompt catalog to sound files")
    prompts.add_argument("action", choices=["render"])
    prompts.add_argument("out", help="Asterisk's sounds folder, e.g. /usr/share/asterisk/sounds")
    prompts.add_argument("--policy", default="config/policy.example.toml")
    prompts.set_defaults(func=cmd_prompts)

    music = sub.add_parser("music", help="cut the quiet start and end off music-on-hold files "
                           "(heard as dead air each time music begins and between tracks) and "
                           "shorten their long pauses")
    music.add_argument("action", choices=["trim"])
    music.add_argument("folder", help="the music class's folder, e.g. /usr/share/asterisk/moh")
    music.set_defaults(func=cmd_music)

    staff = sub.add_parser("staff", help="who may sign in to the console and the dashboard")
    staff.add_argument("action", choices=["set", "list", "remove"])
    staff.add_argument("user", nargs="?")
    staff.add_argument("--role", choices=["operator", "supervisor"])
    staff.add_argument("--endpoint", help="an operator's phone, e.g. PJSIP/operator1")
    staff.add_argument("--file", help="the staff file (default: $ETIQUETTE_STAFF_FILE or "
                                      "config/staff.toml)")
    staff.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin (default: ask, or generate one)")
    staff.add_argument("--generate", action="store_true", help="generate and print a password")
    staff.set_defaults(func=cmd_staff)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
