"""One sandbox: a real Asterisk 22 (chrooted into the cached rootfs) and a private Redis.

An instance owns a folder inside the rootfs (`/srv/etiquette/<name>`) with its own
asterisk.conf, ports, passwords, logs and pid files, so several instances run side by side.
Asterisk runs under `unshare --mount --pid --kill-child` with a private /proc: nothing is
mounted on the host, and killing the unshare process takes Asterisk with it.

The instance installs the repo's `config/asterisk/` and `dialplan/` exactly as an admin would,
then adds sandbox-only files: generated ARI and phone passwords, and simulated SIP parties on
other loopback addresses (a caller trunk on 127.0.0.2, desk phones on 127.0.0.3 that register
like real phones and dial the operators' desk codes as them: `PJSIP/*41@sim-desk-<phone>`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import structlog

from ari_app.prompts.music import trim_music
from ari_app.staff.accounts import Account, hash_password, new_password
from ari_app.staff.accounts import render as render_staff
from ari_app.sandbox.ports import free_port
from ari_app.sandbox.rootfs import ensure_rootfs, rootfs_info

__all__ = ["PHONE_APP", "SandboxError", "SandboxInstance", "SandboxPorts", "repo_root"]

logger = structlog.get_logger()

PHONE_APP = "etiquette-phones"
SIM_CALLER_IP = "127.0.0.2"
SIM_PHONE_IP = "127.0.0.3"
# the example policy's operators, supervisor and transfer directory (config/policy.example.toml)
SIMULATED_PHONES = ("operator1", "operator2", "supervisor1", "billing", "anna")
# the sandbox's staff accounts: user -> (role, the operator's endpoint)
SANDBOX_STAFF = {"operator1": ("operator", "PJSIP/operator1"),
                 "operator2": ("operator", "PJSIP/operator2"),
                 "supervisor1": ("supervisor", None)}


class SandboxError(RuntimeError):
    pass


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass
class SandboxPorts:
    http: int = 8088
    sip: int = 5060
    sim_caller_sip: int = 5062
    sim_phone_sip: int = 5064
    rtp_start: int = 10000
    rtp_end: int = 10999
    redis: int = 6390

    @classmethod
    def free(cls) -> "SandboxPorts":
        """Ports nobody holds right now, for test instances that run beside a stack."""
        rtp = 20000 + secrets.randbelow(200) * 100
        return cls(http=free_port(), sip=free_port(socket.SOCK_DGRAM),
                   sim_caller_sip=free_port(socket.SOCK_DGRAM, SIM_CALLER_IP),
                   sim_phone_sip=free_port(socket.SOCK_DGRAM, SIM_PHONE_IP),
                   rtp_start=rtp, rtp_end=rtp + 99, redis=free_port())


@dataclass
class SandboxState:
    name: str
    ports: SandboxPorts
    ari_user: str = "etiquette"
    ari_password: str = field(default_factory=lambda: secrets.token_hex(16))
    redis_password: str = field(default_factory=lambda: secrets.token_hex(16))
    phone_passwords: dict[str, str] = field(
        default_factory=lambda: {p: secrets.token_hex(8) for p in SIMULATED_PHONES})
    # who signs in to the console and the dashboard: user -> password (the staff file holds
    # their hashes)
    staff_passwords: dict[str, str] = field(
        default_factory=lambda: {u: new_password() for u in SANDBOX_STAFF})
    phones: str = "stasis"  # stasis: the test's ARI app answers; answer: dialplan answers; none
    asterisk_pid: int | None = None
    redis_pid: int | None = None
    suite: str = ""


class SandboxInstance:
    """Build, start, stop and describe one sandbox."""

    def __init__(self, name: str = "default") -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
            raise SandboxError(f"sandbox name {name!r}: use 1-31 lowercase letters, digits, dashes")
        self.name = name
        self.root = ensure_rootfs()
        self.inner = Path("/srv/etiquette") / name  # as Asterisk sees it, inside the chroot
        self.dir = self.root / self.inner.relative_to("/")
        self.state_file = self.dir / "sandbox.json"

    # --- describing -------------------------------------------------------------------------

    def load_state(self) -> SandboxState | None:
        if not self.state_file.exists():
            return None
        raw = json.loads(self.state_file.read_text())
        raw["ports"] = SandboxPorts(**raw["ports"])
        return SandboxState(**raw)

    def _save_state(self, state: SandboxState) -> None:
        self.state_file.write_text(json.dumps(asdict(state), indent=2))
        os.chmod(self.state_file, 0o600)

    def app_env(self, state: SandboxState) -> dict[str, str]:
        """The settings the app needs to use this sandbox (ETIQUETTE_* variables)."""
        return {
            "ETIQUETTE_ARI_URL": f"http://127.0.0.1:{state.ports.http}",
            "ETIQUETTE_ARI_USER": state.ari_user,
            "ETIQUETTE_ARI_PASSWORD": state.ari_password,
            "ETIQUETTE_REDIS_URL": f"redis://:{state.redis_password}@127.0.0.1:{state.ports.redis}/0",
            "ETIQUETTE_STAFF_FILE": str(self.dir / "staff.toml"),
        }

    def status(self) -> dict:
        state = self.load_state()
        if state is None:
            return {"name": self.name, "running": False}
        return {
            "name": self.name,
            "asterisk": _alive(state.asterisk_pid),
            "redis": _alive(state.redis_pid),
            "running": _alive(state.asterisk_pid) and _alive(state.redis_pid),
            "ports": asdict(state.ports),
            "dir": str(self.dir),
            "env_file": str(self.dir / "app.env"),
            "suite": state.suite,
        }

    # --- starting ---------------------------------------------------------------------------

    def up(self, ports: SandboxPorts | None = None, phones: str = "stasis",
           prompts_dir_hook=None) -> SandboxState:
        """Start Asterisk and Redis and wait until both answer; idempotent when running.

        An instance keeps its ports and secrets until `destroy`: after a partial stop (one of
        the two died, or `down`), `up` starts what is missing with the same passwords, so a
        running app reconnects by itself."""
        existing = self.load_state()
        if existing and _alive(existing.asterisk_pid) and _alive(existing.redis_pid):
            return existing
        if existing is not None and (ports is None or ports == existing.ports) \
                and phones == existing.phones:
            state = existing  # same secrets: what still runs keeps running
        else:
            self.down()
            state = SandboxState(name=self.name, ports=ports or SandboxPorts(), phones=phones,
                                 suite=rootfs_info(self.root).get("suite", ""))
        for sub in ("etc", "lib", "spool/recording", "run", "log", "cache", "redis"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self._install_config(state)
        if prompts_dir_hook is not None:
            self._install_prompts(prompts_dir_hook)
        self._install_music()
        self._save_state(state)
        if not _alive(state.redis_pid):
            state.redis_pid = self._start_redis(state)
            self._save_state(state)
        if not _alive(state.asterisk_pid):
            state.asterisk_pid = self._start_asterisk()
            self._save_state(state)
        try:
            self._wait_booted(state)
            self._wait_redis(state)
        except SandboxError:
            self.down()
            raise
        staff = self.dir / "staff.toml"
        staff.write_text(render_staff({
            user: Account(user, *SANDBOX_STAFF[user], hash_password(password))
            for user, password in state.staff_passwords.items() if user in SANDBOX_STAFF}))
        os.chmod(staff, 0o600)
        env_file = self.dir / "app.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in self.app_env(state).items()))
        os.chmod(env_file, 0o600)
        logger.info("sandbox up", name=self.name, http=state.ports.http, sip=state.ports.sip,
                    redis=state.ports.redis, suite=state.suite)
        return state

    def _install_config(self, state: SandboxState) -> None:
        etc = self.dir / "etc"
        for old in etc.glob("*.conf"):
            old.unlink()
        repo = repo_root()
        for src in sorted((repo / "config/asterisk").glob("*.conf")) + sorted(
                (repo / "dialplan").glob("*.conf")):
            shutil.copyfile(src, etc / src.name)
        p = state.ports
        _rewrite(etc / "http.conf", r"(?m)^bindport\s*=.*$", f"bindport = {p.http}")
        _rewrite(etc / "http.conf", r"(?m)^bindaddr\s*=.*$", "bindaddr = 127.0.0.1")
        _rewrite(etc / "pjsip.conf", r"(?m)^bind\s*=\s*0\.0\.0\.0:5060$", f"bind = 127.0.0.1:{p.sip}")
        _rewrite(etc / "rtp.conf", r"(?m)^rtpstart\s*=.*$", f"rtpstart = {p.rtp_start}")
        _rewrite(etc / "rtp.conf", r"(?m)^rtpend\s*=.*$", f"rtpend = {p.rtp_end}")
        moddir = next(self.root.glob("usr/lib/*/asterisk/modules"))
        d = self.inner
        (etc / "asterisk.conf").write_text(f"""[directories]
astetcdir => {d}/etc
astmoddir => /{moddir.relative_to(self.root)}
astvarlibdir => {d}/lib
astdbdir => {d}/lib
astkeydir => {d}/lib
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astcachedir => {d}/cache
astsbindir => /usr/sbin

[options]
systemname = etiquette-{self.name}
entityid = {_entity_id(self.name)}
defaultlanguage = en
""")
        (etc / "ari_users.conf").write_text(
            f"[{state.ari_user}]\ntype = user\nread_only = no\npassword = {state.ari_password}\n")
        (etc / "extensions.conf").write_text(
            "[general]\nstatic = yes\nwriteprotect = yes\n\n"
            "#include extensions_etiquette.conf\n#include extensions_sandbox.conf\n")
        (etc / "extensions_sandbox.conf").write_text(self._sandbox_dialplan(state))
        (etc / "pjsip_secrets.conf").write_text("".join(
            f"[{phone}-auth]\ntype = auth\nauth_type = userpass\nusername = {phone}\n"
            f"password = {pw}\n\n" for phone, pw in state.phone_passwords.items()))
        (etc / "pjsip_local.conf").write_text(self._sandbox_pjsip(state))
        for f in etc.iterdir():
            os.chmod(f, 0o600)

    def _install_prompts(self, render) -> None:
        """Render the catalog into the rootfs and link it where Asterisk looks per language.

        Debian's `sounds/<lang>` are absolute symlinks (alternatives) that only resolve inside
        the chroot, so the prompts live in one folder and each language's real sound folder
        gets an `etiquette` link to it.
        """
        prompts = self.root / "usr/share/asterisk/etiquette-prompts"
        render(prompts)
        for lang_dir in prompts.iterdir():
            if not (lang_dir / "etiquette").is_dir():
                continue
            real = _inside(self.root, f"/usr/share/asterisk/sounds/{lang_dir.name}")
            real.mkdir(parents=True, exist_ok=True)
            link = real / "etiquette"
            target = f"/usr/share/asterisk/etiquette-prompts/{lang_dir.name}/etiquette"
            if link.is_symlink() and os.readlink(link) == target:
                continue
            if link.is_symlink():
                link.unlink(missing_ok=True)
            if not link.exists():
                try:
                    link.symlink_to(target)
                except FileExistsError:  # another sandbox on this rootfs (a test worker) was
                    if os.readlink(link) != target:  # first, as this one would have made it
                        raise

    def _install_music(self) -> None:
        """Debian's music on hold without its quiet ends and long pauses, as the docker image
        and an admin's `ari-etiquette music trim` have it (a rerun writes nothing)."""
        report = trim_music(self.root / "usr/share/asterisk/moh")
        if report.trimmed or report.skipped:
            logger.info("sandbox music trimmed", trimmed=sorted(report.trimmed),
                        left=report.skipped)

    def _sandbox_dialplan(self, state: SandboxState) -> str:
        if state.phones == "stasis":
            phone = f" same => n,Stasis({PHONE_APP},phone,${{EXTEN}})\n"
        else:  # a phone that answers and sends audio, like a person picking up
            phone = " same => n,Answer()\n same => n(loop),Playback(silence/10)\n same => n,Goto(loop)\n"
        return (
            "; Sandbox only: simulated desk phones (the operators' SIP endpoints register from\n"
            "; 127.0.0.3 and calls to them land here) and the simulated caller's trunk.\n"
            "[sandbox-phones]\n"
            "exten => _[a-z0-9].,1,NoOp(simulated desk phone ${EXTEN} rings)\n" + phone +
            "\n[sandbox-caller]\n"
            "exten => _[0-9+].,1,NoOp(should not happen: the simulated trunk only calls out)\n"
            " same => n,Hangup(21)\n"
        )

    def _sandbox_pjsip(self, state: SandboxState) -> str:
        p = state.ports
        out = [f"""; Sandbox only. Simulated parties on other loopback addresses.
[sim-caller-transport]
type = transport
protocol = udp
bind = {SIM_CALLER_IP}:{p.sim_caller_sip}

[sim-phone-transport]
type = transport
protocol = udp
bind = {SIM_PHONE_IP}:{p.sim_phone_sip}

; The outside world's side of a trunk: originate PJSIP/100@sim-trunk to place a real SIP call.
[sim-trunk]
type = endpoint
transport = sim-caller-transport
context = sandbox-caller
disallow = all
allow = ulaw
aors = sim-trunk
direct_media = no
[sim-trunk]
type = aor
contact = sip:127.0.0.1:{p.sip}

; The PBX's side of that trunk: calls from 127.0.0.2 enter the inbound context.
[sim-caller]
type = endpoint
transport = transport-udp
context = etiquette-inbound
disallow = all
allow = ulaw,alaw
direct_media = no
[sim-caller]
type = identify
endpoint = sim-caller
match = {SIM_CALLER_IP}

; The desk phones' side: calls from the PBX (127.0.0.1) to a registered phone land here.
[sim-phone]
type = endpoint
transport = sim-phone-transport
context = sandbox-phones
disallow = all
allow = ulaw
direct_media = no
[sim-phone]
type = identify
endpoint = sim-phone
match = 127.0.0.1

; A hard-wired desk phone at 127.0.0.4:5099 (no registration, no qualify): tests put SIPp
; there to press a real phone's hold button (re-INVITE a=sendonly).
[deskphone](phone-endpoint)
aors = deskphone
callerid = "Desk Phone" <208>
[deskphone]
type = aor
contact = sip:deskphone@127.0.0.4:5099
qualify_frequency = 0
"""]
        for phone, pw in state.phone_passwords.items():
            if state.phones == "none":
                break
            out.append(f"""
[sim-reg-{phone}]
type = registration
transport = sim-phone-transport
server_uri = sip:127.0.0.1:{p.sip}
client_uri = sip:{phone}@127.0.0.1:{p.sip}
contact_user = {phone}
outbound_auth = sim-auth-{phone}
retry_interval = 2
expiration = 300
[sim-auth-{phone}]
type = auth
auth_type = userpass
username = {phone}
password = {pw}
; the person at that desk dials out (a desk code): originate PJSIP/*41@sim-desk-{phone}
[sim-desk-{phone}]
type = endpoint
transport = sim-phone-transport
context = sandbox-phones
disallow = all
allow = ulaw
direct_media = no
from_user = {phone}
outbound_auth = sim-auth-{phone}
aors = sim-desk-{phone}
[sim-desk-{phone}]
type = aor
contact = sip:127.0.0.1:{p.sip}
""")
        return "".join(out)

    def _asterisk_cmd(self, *args: str) -> list[str]:
        return ["chroot", str(self.root), "asterisk", "-C", f"{self.inner}/etc/asterisk.conf", *args]

    def _start_asterisk(self) -> int:
        log = open(self.dir / "log" / "console.log", "ab")
        cmd = ["unshare", "--mount", "--pid", "--fork", "--kill-child",
               f"--mount-proc={self.root}/proc", *self._asterisk_cmd("-f", "-n", "-g")]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        log.close()
        (self.dir / "run" / "sandbox-asterisk.pid").write_text(str(proc.pid))
        return proc.pid

    def _start_redis(self, state: SandboxState) -> int:
        if shutil.which("redis-server") is None:
            raise SandboxError("redis-server is not installed: apt-get install redis-server")
        rdir = self.dir / "redis"
        conf = rdir / "redis.conf"
        conf.write_text(
            f"bind 127.0.0.1\nport {state.ports.redis}\ndir {rdir}\nappendonly yes\n"
            f"appendfsync everysec\nsave \"\"\nrequirepass {state.redis_password}\n"
            f"logfile {rdir}/redis.log\npidfile {rdir}/redis.pid\ndaemonize no\n")
        os.chmod(conf, 0o600)
        proc = subprocess.Popen(["redis-server", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        return proc.pid

    def _wait_booted(self, state: SandboxState, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not _alive(state.asterisk_pid):
                raise SandboxError("Asterisk exited while starting; see "
                                   f"{self.dir / 'log' / 'console.log'}:\n{self._console_tail()}")
            r = subprocess.run(self._asterisk_cmd("-rx", "core waitfullybooted"),
                               capture_output=True, text=True, timeout=20)
            last = (r.stdout + r.stderr).strip()
            if r.returncode == 0 and "fully booted" in last.lower():
                return
            time.sleep(0.2)
        raise SandboxError(f"Asterisk did not finish booting in {timeout:.0f} s: {last}")

    def _wait_redis(self, state: SandboxState, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", state.ports.redis), timeout=1) as s:
                    s.sendall(f"AUTH {state.redis_password}\r\nPING\r\n".encode())
                    if b"PONG" in s.recv(100):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SandboxError(f"Redis did not answer on port {state.ports.redis}")

    def _console_tail(self) -> str:
        try:
            return "\n".join((self.dir / "log/console.log").read_text().splitlines()[-15:])
        except OSError:
            return ""

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command against this instance (tests use it to inspect)."""
        r = subprocess.run(self._asterisk_cmd("-rx", command), capture_output=True, text=True,
                           timeout=20)
        return r.stdout

    # --- faults, for tests and drills: one part away while the other runs --------------------

    def stop_redis(self, graceful: bool = False) -> None:
        """Kill Redis as a crash would (SIGKILL): what it had fsynced stays on disk; or stop it
        as a restart does (`graceful`, SIGTERM: it flushes its append-only file first)."""
        state = self._state()
        if _alive(state.redis_pid):
            os.kill(state.redis_pid, signal.SIGTERM if graceful else signal.SIGKILL)
            _wait_gone(state.redis_pid)
        state.redis_pid = None
        self._save_state(state)

    def start_redis(self) -> None:
        """Start Redis again with the same port, password and append-only file."""
        state = self._state()
        if not _alive(state.redis_pid):
            state.redis_pid = self._start_redis(state)
            self._save_state(state)
        self._wait_redis(state)

    def pause_redis(self, paused: bool = True) -> None:
        """SIGSTOP (or SIGCONT): Redis accepts connections but never answers. Returns once
        /proc shows it stopped (or running): the signal lands a moment after kill() under
        load, and a check in that moment (revive's) would read it as still running."""
        pid = self._state().redis_pid
        os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)
        deadline = time.monotonic() + 5.0
        while _paused(pid) != paused and time.monotonic() < deadline:
            time.sleep(0.005)
        if _paused(pid) != paused:
            raise SandboxError(f"redis (pid {pid}) not {'stopped' if paused else 'running'} "
                               "5 s after the signal")

    def restart_asterisk(self, crash: bool = False) -> None:
        """Stop Asterisk at once (calls are lost) and start it again with the same config:
        `core stop now` hangs every channel up first (the app hears each call end), a `crash`
        (SIGKILL) tells nobody anything, as a segfault or a power cut would."""
        state = self._state()
        if _alive(state.asterisk_pid) and crash:
            inside = _children(state.asterisk_pid)  # Asterisk, in its own pid namespace
            _stop_pid(state.asterisk_pid, "unshare", signals=(signal.SIGKILL,))
            for pid in inside:  # --kill-child: it dies with unshare; its ports with it
                _wait_gone(pid, 5.0)
        elif _alive(state.asterisk_pid):
            subprocess.run(self._asterisk_cmd("-rx", "core stop now"), capture_output=True,
                           timeout=20)
            _stop_pid(state.asterisk_pid, "unshare")
        self._wait_control_closed()
        state.asterisk_pid = self._start_asterisk()
        self._save_state(state)
        self._wait_booted(state)

    def revive(self) -> list[str]:
        """Start again (same ports, secrets and config) whichever of Redis and Asterisk is not
        running, and wake a paused Redis: what a test that stopped one and failed before it
        started it again leaves, so that the next test does not fail for it."""
        state = self._state()
        revived = []
        if _paused(state.redis_pid):
            self.pause_redis(False)
            revived.append("redis (paused)")
        if not _alive(state.redis_pid):
            self.start_redis()
            revived.append("redis")
        if not _alive(state.asterisk_pid):
            core = self.core_dump()
            self.restart_asterisk()
            revived.append(f"asterisk (it had crashed: core dump {core})" if core else "asterisk")
        return revived

    def core_dump(self) -> Path | None:
        """The core this instance's Asterisk dumped since it was last started, if it crashed
        (it runs with -g and dumps `core` in the rootfs' root, which other instances share:
        the core's own command line names the instance). Read it with gdb, sysroot the
        rootfs: a crash in CI otherwise shows only as 'Asterisk not answering'."""
        core = self.root / "core"
        try:
            if core.stat().st_mtime < (self.dir / "run" / "sandbox-asterisk.pid").stat().st_mtime:
                return None
            with open(core, "rb") as f:
                head = f.read(1 << 16)
        except OSError:
            return None
        return core if f"{self.inner}/etc/asterisk.conf".encode() in head else None

    def _wait_control_closed(self, timeout: float = 10.0) -> None:
        """Wait until nothing answers on the old Asterisk's control socket: a new one that
        finds it answering refuses to start ("Asterisk already running"). A killed Asterisk
        holds it until its last thread has exited, which can be after its main one."""
        path = str(self.dir / "run" / "asterisk.ctl")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(0.5)
                    s.connect(path)
            except OSError:
                return
            if time.monotonic() > deadline:
                raise SandboxError(f"the stopped Asterisk still answers on {path} after "
                                   f"{timeout:.0f} s; a new one would refuse to start")
            time.sleep(0.05)

    def _state(self) -> SandboxState:
        state = self.load_state()
        if state is None:
            raise SandboxError(f"sandbox {self.name} is not set up: run `sandbox up` first")
        return state

    # --- stopping ---------------------------------------------------------------------------

    def down(self) -> None:
        """Stop what this instance started (by its own pid files, never by name)."""
        state = self.load_state()
        if state is None:
            return
        if _alive(state.asterisk_pid):
            subprocess.run(self._asterisk_cmd("-rx", "core stop now"), capture_output=True,
                           timeout=20)
            _stop_pid(state.asterisk_pid, "unshare")
        if _alive(state.redis_pid):
            _stop_pid(state.redis_pid, "redis-server")
        state.asterisk_pid = state.redis_pid = None
        self._save_state(state)

    def destroy(self) -> None:
        self.down()
        if self.dir.exists():
            shutil.rmtree(self.dir)


def _inside(root: Path, path: str, depth: int = 0) -> Path:
    """Resolve `path` as the chroot would see it (absolute symlinks point inside `root`)."""
    current = root
    for part in Path(path).relative_to("/").parts:
        current = current / part
        if current.is_symlink() and depth < 20:
            target = os.readlink(current)
            current = (_inside(root, target, depth + 1) if target.startswith("/")
                       else _inside(root, str(Path("/") / current.parent.relative_to(root) / target),
                                    depth + 1))
    return current


def _rewrite(path: Path, pattern: str, replacement: str) -> None:
    text, n = re.subn(pattern, replacement, path.read_text())
    if n == 0:
        raise SandboxError(f"{path.name}: expected a line matching {pattern!r} to adapt")
    path.write_text(text)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive (reap it if it is our child), unless threads of it still run
        if _state_of(pid) == "Z" and len(os.listdir(f"/proc/{pid}/task")) <= 1:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return False
    except OSError:
        return False
    return True


def interrupt_on_sigterm() -> None:
    """SIGTERM (kill, pkill, a timeout) as Ctrl-C, for a script that runs a sandbox under
    asyncio.run: KeyboardInterrupt, and asyncio.run cancels its tasks, whose `finally` destroys
    the sandbox. Python's default ends at once, and the sandbox's Asterisk and Redis ran on
    (one did, for hours, with a thousand channels up, under two CI runs). Not by raising
    SIGINT: a job started with `&` ignores that. At exit, what the script started and left
    running (the app it measured, a profiler) is stopped too."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    atexit.register(_stop_children)


def _stop_children() -> None:
    for pid in _children(os.getpid()):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def _state_of(pid: int) -> str:
    """The process state letter from /proc (R, S, T stopped, Z zombie, ...); OSError if gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _paused(pid: int | None) -> bool:
    """Stopped by SIGSTOP (state T), as pause_redis leaves it."""
    try:
        return bool(pid) and _state_of(pid) == "T"
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    except OSError:
        return []


def _stop_pid(pid: int, expected: str, timeout: float = 10.0,
              signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    """Stop a process we started, after checking its command line is what we started."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return
    if not cmdline:  # exited, waiting to be reaped
        _alive(pid)
        return
    if expected not in cmdline:
        logger.warning("pid file points at another program; not killing it", pid=pid,
                       cmdline=cmdline[:80])
        return
    for sig in signals:
        wait = timeout if sig == signal.SIGTERM else 5.0
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def sweep_stale(prefix: str = "test-") -> list[str]:
    """Stop and remove test instances whose run was killed before its teardown."""
    root = ensure_rootfs()
    removed = []
    base = root / "srv/etiquette"
    if not base.exists():
        return removed
    for d in base.iterdir():
        if d.name.startswith(prefix) and d.is_dir():
            inst = SandboxInstance(d.name)
            # a test instance belongs to the pytest process that made it: the name carries its
            # pid (`test-<pid>`, or `test-<pid>-<what>` for a second one), and test workers run
            # side by side, so only a dead pid's are stale
            owner = d.name[len(prefix):].split("-", 1)[0]
            if owner.isdigit() and _alive(int(owner)) and int(owner) != os.getpid():
                continue
            inst.destroy()
            removed.append(d.name)
    return removed


def _entity_id(name: str) -> str:
    """A node's own entity id (a locally administered MAC), stable per sandbox name: nodes on
    one host would all derive the same one from its network card."""
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))
