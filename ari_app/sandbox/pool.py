"""A pool of app instances on the sandbox's Asterisk, with one command: N `ari-etiquette run`
processes, each with its own Stasis app name (`etiquette-pool-<n>`, the dialplan's prefix) and
HTTP port, optionally on a Redis Sentinel group (a master, two replicas, three sentinels), all
on loopback. For users to try the pool (send a call to 100@etiquette-pool, kill an instance,
watch the other take over) and for tests.

Its state (pids, ports) is in `<dir>/pool.json`; each instance's settings in
`<dir>/etiquette-pool-<n>.env` and its JSON log in `<dir>/etiquette-pool-<n>.log`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ari_app.sandbox.ports import free_port
from ari_app.sandbox.sentinel import SentinelGroup

__all__ = ["AppPool", "PREFIX", "read_env"]

PREFIX = "etiquette-pool-"  # the dialplan's ETIQUETTE_POOL


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _with_credentials(ari: dict[str, str]) -> str:
    """A node's ARI URL carrying its own user and password (each sandbox has its own)."""
    scheme, _, rest = ari["ETIQUETTE_ARI_URL"].partition("://")
    user = quote(ari.get("ETIQUETTE_ARI_USER", "etiquette"), safe="")
    return f"{scheme}://{user}:{quote(ari['ETIQUETTE_ARI_PASSWORD'], safe='')}@{rest}"


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if "=" in line and not line.lstrip().startswith("#"))


@dataclass
class AppPool:
    directory: Path
    instances: dict[str, dict] = field(default_factory=dict)  # app -> {"pid", "port"}
    sentinel: bool = False

    # --- the settings ---------------------------------------------------------------------------
    def settings(self, base: dict[str, str], count: int, first_port: int | None = None,
                 lease: float = 5.0, nodes: dict[str, dict[str, str]] | None = None,
                 every_node: bool = False) -> dict[str, dict[str, str]]:
        """Each instance's settings: the sandbox's (ARI, Redis, staff) and its own name and port;
        the same pool list everywhere. With `nodes` (name -> that node's ARI settings), `count`
        instances per node, each with ETIQUETTE_NODE, all on `base`'s Redis; with
        `every_node`, `count` instances each serving every node (ETIQUETTE_NODES)."""
        if count < 1:
            raise ValueError("a pool needs at least one instance")
        apps = [f"{PREFIX}{n}" for n in range(1, count + 1)]
        out, i = {}, 0
        if nodes and every_node:
            listed = ",".join(f"{node}={_with_credentials(ari)}" for node, ari in nodes.items())
            base = {**base, "ETIQUETTE_NODES": listed, "ETIQUETTE_NODE": next(iter(nodes))}
            nodes = None
        for node, ari in (nodes or {"": {}}).items():
            for app in apps:
                port = first_port + i if first_port else free_port()
                i += 1
                name = f"{node}/{app}" if node else app
                out[name] = {**base, **ari, "ETIQUETTE_ARI_APP": app,
                             "ETIQUETTE_POOL_APPS": ",".join(apps),
                             "ETIQUETTE_POOL_LEASE": f"{lease:g}",
                             "ETIQUETTE_HTTP_PORT": str(port),
                             "ETIQUETTE_INSTANCE_ID": f"{socket.gethostname()}/{name}",
                             "ETIQUETTE_LOG_FORMAT": "json",
                             **({"ETIQUETTE_NODE": node} if node else {})}
        return out

    # --- up and down ----------------------------------------------------------------------------
    def up(self, base: dict[str, str], count: int, *, sentinel: bool = False,
           first_port: int | None = None, lease: float = 5.0, timeout: float = 40.0,
           nodes: dict[str, dict[str, str]] | None = None, every_node: bool = False
           ) -> "AppPool":
        self.directory.mkdir(parents=True, exist_ok=True)
        if sentinel:
            group = SentinelGroup(self.directory / "sentinel").up()
            base = {**base, **read_env(group.save())}
            self.sentinel = True
        for name, env in self.settings(base, count, first_port, lease, nodes,
                                       every_node).items():
            app = name.replace("/", "-")  # its files' names
            env_file = self.directory / f"{app}.env"
            env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            os.chmod(env_file, 0o600)
            with (self.directory / f"{app}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "ari_app.cli", "run", "--env-file", str(env_file)],
                    stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
            self.instances[app] = {"pid": proc.pid, "port": int(env["ETIQUETTE_HTTP_PORT"])}
            self.save()
        deadline = time.monotonic() + timeout
        for app, info in self.instances.items():
            while not self._healthy(info["port"]):
                if not _alive(info["pid"]) or time.monotonic() > deadline:
                    log = (self.directory / f"{app}.log").read_text(errors="replace")[-2000:]
                    self.down()
                    raise RuntimeError(f"{app} did not come up; its log ends:\n{log}")
                time.sleep(0.2)
        return self

    @staticmethod
    def _healthy(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def kill(self, app: str, sig: int = signal.SIGKILL) -> None:
        """As a crash would (SIGKILL), or SIGSTOP / SIGCONT to pause one past its lease."""
        os.kill(self.instances[app]["pid"], sig)

    def down(self, timeout: float = 30.0) -> None:
        for info in self.instances.values():
            if _alive(info["pid"]):
                os.kill(info["pid"], signal.SIGCONT)
                os.kill(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for info in self.instances.values():
            while _alive(info["pid"]) and time.monotonic() < deadline:
                try:  # reap our own child; another process's exits by itself
                    if os.waitpid(info["pid"], os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    pass
                time.sleep(0.1)
            if _alive(info["pid"]):
                os.kill(info["pid"], signal.SIGKILL)
        if self.sentinel and (self.directory / "sentinel" / "group.json").exists():
            SentinelGroup.load(self.directory / "sentinel").down()
        self.instances = {}
        self.save()

    def status(self) -> dict:
        return {app: {**info, "running": _alive(info["pid"]),
                      "healthy": _alive(info["pid"]) and self._healthy(info["port"]),
                      "url": f"http://127.0.0.1:{info['port']}"}
                for app, info in self.instances.items()}

    # --- the state file -------------------------------------------------------------------------
    def save(self) -> Path:
        path = self.directory / "pool.json"
        path.write_text(json.dumps({"instances": self.instances, "sentinel": self.sentinel}))
        return path

    @classmethod
    def load(cls, directory: Path) -> "AppPool":
        data = json.loads((directory / "pool.json").read_text())
        return cls(directory, data["instances"], data.get("sentinel", False))

