"""`ari-etiquette run` under systemd (config/systemd/ari-etiquette.service, `Type=notify`), told
what systemd's own socket would be told: the app, started as the unit starts it, says it is
ready once it serves (its /healthz answers 200 from then on), pings the watchdog, shows the
/healthz verdict as its status (degraded while Redis is away, serving again after), and says
"stopping" at SIGTERM before it exits 0."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import aiohttp
import pytest

from conftest import API_TOKEN
from harness import AppProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class Systemd:
    """systemd's side of $NOTIFY_SOCKET: each message as it comes, with when it came."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages: list[tuple[float, dict[str, str]]] = []

    async def wait_for(self, wanted: Callable[[dict[str, str]], bool],
                       timeout: float = 20.0) -> dict[str, str]:
        """The first message, already heard or to come, that is `wanted`."""
        for _, message in self.messages:
            if wanted(message):
                return message
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096),
                                          max(0.01, deadline - time.monotonic()))
            message = dict(f.split("=", 1) for f in data.decode().split("\n"))
            self.messages.append((time.monotonic(), message))
            if wanted(message):
                return message


async def test_given_the_app_under_systemd_then_ready_watchdog_status_and_stopping(
        settings, sandbox, tmp_path, monkeypatch):
    instance, _ = sandbox
    systemd = Systemd(str(tmp_path / "notify"))
    # as systemd starts the unit: its socket and the watchdog (WatchdogSec=2: a ping a second)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    app = AppProcess(settings, tmp_path, "under-systemd", API_TOKEN)
    try:
        await app.start()
        ready = await systemd.wait_for(lambda m: "READY" in m)
        assert ready["MAINPID"] == str(app.proc.pid)
        assert ready["STATUS"] == "serving: ARI events connected, calls taken back"
        async with aiohttp.ClientSession() as http:  # ready means serving
            async with http.get(f"{app.base_url}/healthz") as r:
                assert r.status == 200
        # then the /healthz verdict every 10 s, and the event loop's pings meanwhile
        status = await systemd.wait_for(lambda m: "STATUS" in m and "READY" not in m)
        assert status["STATUS"] == "serving: ARI events connected, Redis ok, 0 calls in hand"

        # Redis away: the status says so (and so would /healthz); the pings go on, so systemd
        # does not kill an app that is only waiting for its storage
        instance.stop_redis()
        try:
            down = await systemd.wait_for(
                lambda m: m.get("STATUS", "").startswith("degraded"), timeout=15)
            assert down["STATUS"].startswith("degraded: redis: unavailable"), down
        finally:
            instance.start_redis()
        back = await systemd.wait_for(
            lambda m: m is not status and "READY" not in m
            and m.get("STATUS", "").startswith("serving"), timeout=15)
        assert back["STATUS"] == "serving: ARI events connected, Redis ok, 0 calls in hand"
        pings = [t for t, m in systemd.messages if m == {"WATCHDOG": "1"}]
        assert len(pings) >= 20, "a ping about every second all along"
        assert max(b - a for a, b in zip(pings, pings[1:])) < 2.0, "no gap the watchdog kills"
    finally:
        instance.start_redis()  # already up unless the test failed while it was away
        code = await app.stop()
    try:
        stopping = await systemd.wait_for(lambda m: "STOPPING" in m, timeout=5)
    finally:
        systemd.sock.close()
    assert stopping["STATUS"].startswith("stopping: the calls stay up")
    assert code == 0
    assert app.error_lines() == []
