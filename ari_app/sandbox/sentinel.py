"""A Redis Sentinel group on loopback, for tests and for trying a failover by hand: a master,
two replicas and three sentinels (quorum 2), each a `redis-server` process of its own in one
folder, all with one password.

Every data node keeps append-only persistence (`appendfsync everysec`). A sentinel declares
the master down after `DOWN_AFTER_MS` without an answer, two agree, one promotes a replica and
the other replica follows it (about 5-8 s here); the app finds the new master by itself
(storage/connect.py).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time

from ari_app.sandbox.ports import free_port
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["DOWN_AFTER_MS", "MASTER_NAME", "SentinelGroup"]

MASTER_NAME = "etiquette"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class SentinelGroup:
    directory: Path
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    data_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    pids: dict[int, int] = field(default_factory=dict)  # port -> pid

    @property
    def sentinels(self) -> str:
        """ETIQUETTE_REDIS_SENTINELS for the app."""
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    @property
    def url(self) -> str:
        """ETIQUETTE_REDIS_URL for the app: the password and the database only."""
        return f"redis://:{self.password}@127.0.0.1/0"

    def up(self, timeout: float = 20.0) -> "SentinelGroup":
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        master = self.data_ports[0]
        for port in self.data_ports:
            self._start(port, self._data_conf(port, None if port == master else master))
        try:  # the replicas first: a sentinel learns them from the master's first INFO
            self._wait(lambda: self.replicas_of(master) == 2, timeout, "the replicas in sync")
            for port in self.sentinel_ports:
                self._start(port, self._sentinel_conf(port, master), "--sentinel")
            self._wait(self.known_by_sentinels, timeout,
                       "every sentinel watching the master and both replicas")
        except BaseException:
            self.down()
            raise
        return self

    def save(self) -> Path:
        """The group's ports, password and pids in `group.json` (mode 600), and the app's
        settings for it in `sentinel.env`, for `ari-etiquette sentinel` run again."""
        state = self.directory / "group.json"
        state.write_text(json.dumps({**asdict(self), "directory": str(self.directory)}))
        env = self.directory / "sentinel.env"
        env.write_text(f"ETIQUETTE_REDIS_URL={self.url}\nETIQUETTE_REDIS_SENTINELS="
                       f"{self.sentinels}\nETIQUETTE_REDIS_MASTER={MASTER_NAME}\n")
        for path in (state, env):
            os.chmod(path, 0o600)
        return env

    @classmethod
    def load(cls, directory: Path) -> "SentinelGroup":
        data = json.loads((directory / "group.json").read_text())
        data["directory"] = Path(data["directory"])
        data["pids"] = {int(port): pid for port, pid in data["pids"].items()}
        return cls(**data)

    def down(self) -> None:
        for pid in self.pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.clear()

    def master_port(self) -> int | None:
        """The master's port as the sentinels say now (None while none is known)."""
        for port in self.sentinel_ports:
            try:
                reply = self._ask(port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
            except OSError:
                continue
            if reply:
                return int(reply[1])
        return None

    def kill(self, port: int) -> None:
        """SIGKILL the Redis on `port`: no shutdown save, no goodbye to the replicas."""
        os.kill(self.pids.pop(port), signal.SIGKILL)

    def replicas_of(self, port: int) -> int:
        try:
            info = self._ask(port, "INFO", "replication", password=True)
        except OSError:
            return 0
        return sum(1 for key, value in info.items()
                   if key.startswith("slave") and isinstance(value, dict)
                   and value.get("state") == "online")

    def known_by_sentinels(self) -> bool:
        """Every sentinel watches the master and knows both replicas (a replica it does not
        know is never moved to the new master)."""
        try:
            return all(len(self._ask(p, "SENTINEL", "replicas", MASTER_NAME)) == 2
                       for p in self.sentinel_ports)
        except OSError:
            return False

    def wait_failover(self, old: int, timeout: float = 30.0) -> int:
        """The new master's port once the sentinels promoted a replica and it takes writes."""
        self._wait(lambda: self.master_port() not in (None, old)
                   and self.replicas_of(self.master_port() or 0) >= 1, timeout,
                   f"a replica promoted in place of the master on {old}")
        return self.master_port()  # type: ignore[return-value]

    # --- the processes ------------------------------------------------------------------
    def _data_conf(self, port: int, master: int | None) -> str:
        lines = ["bind 127.0.0.1", f"port {port}", f"dir {self.directory}",
                 f"dbfilename dump-{port}.rdb", f"appendfilename appendonly-{port}.aof",
                 f"appenddirname aof-{port}", "appendonly yes", "appendfsync everysec",
                 'save ""', f"requirepass {self.password}", f"masterauth {self.password}",
                 # a master alone (its replicas cut off) refuses writes after 10 s instead of
                 # acknowledging what a failover would then throw away (NoReplicasError: 503)
                 "min-replicas-to-write 1", "min-replicas-max-lag 10",
                 f"logfile {self.directory}/redis-{port}.log"]
        if master is not None:
            lines.append(f"replicaof 127.0.0.1 {master}")
        return "\n".join(lines) + "\n"

    def _sentinel_conf(self, port: int, master: int) -> str:
        return "\n".join([
            "bind 127.0.0.1", f"port {port}", f"dir {self.directory}",
            f"logfile {self.directory}/sentinel-{port}.log",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2",
            f"sentinel auth-pass {MASTER_NAME} {self.password}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1"]) + "\n"

    def _start(self, port: int, conf: str, *extra: str) -> None:
        path = self.directory / f"{'sentinel' if extra else 'redis'}-{port}.conf"
        path.write_text(conf)  # a sentinel rewrites its own file: it stays writable
        os.chmod(path, 0o600)
        proc = subprocess.Popen(["redis-server", str(path), *extra], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.pids[port] = proc.pid

    def _ask(self, port: int, *command: str, password: bool = False):
        import redis  # the synchronous client: a sandbox step, not the app's loop

        client = redis.Redis(port=port, password=self.password if password else None,
                             socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
        try:
            return client.execute_command(*command)
        except redis.RedisError as exc:
            raise OSError(str(exc)) from exc
        finally:
            client.close()

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)  # processes starting: polled until the deadline
        raise RuntimeError(f"Sentinel group: timed out waiting for {what} "
                           f"(logs in {self.directory})")
