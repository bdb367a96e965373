"""ari_app/systemd.py: what systemd hears from `ari-etiquette run`, on a real datagram socket
where systemd's own would be ($NOTIFY_SOCKET)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest
from structlog.testing import capture_logs

from ari_app.systemd import ServiceManager


@pytest.fixture
def listener(tmp_path):
    """systemd's side: a datagram socket, and what it has been told, message by message."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def heard(sock: socket.socket) -> dict[str, str]:
    fields = sock.recv(4096).decode().split("\n")
    return dict(field.split("=", 1) for field in fields)


def test_given_no_notify_socket_then_every_message_is_a_no_op():
    manager = ServiceManager({})
    assert not manager.enabled
    assert manager.ready("serving") is False
    assert manager.watchdog_every is None


def test_given_a_notify_socket_then_ready_status_and_stopping_reach_it(listener):
    path, sock = listener
    manager = ServiceManager({"NOTIFY_SOCKET": path})
    assert manager.ready("serving: ARI events connected")
    assert heard(sock) == {"READY": "1", "STATUS": "serving: ARI events connected",
                           "MAINPID": str(os.getpid())}
    manager.status("degraded: redis: unavailable")
    assert heard(sock) == {"STATUS": "degraded: redis: unavailable"}
    manager.stopping("stopping")
    assert heard(sock) == {"STOPPING": "1", "STATUS": "stopping"}
    manager.close()


def test_given_an_abstract_socket_name_then_the_message_reaches_it():
    name = f"etiquette-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        manager = ServiceManager({"NOTIFY_SOCKET": "@" + name})
        assert manager.ready("serving")
        assert heard(sock)["READY"] == "1"
        manager.close()


def test_given_the_watchdog_for_this_process_or_another_then_it_pings_only_its_own():
    assert ServiceManager({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000"}
                          ).watchdog_every == 15.0
    assert ServiceManager({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000",
                           "WATCHDOG_PID": str(os.getpid())}).watchdog_every == 15.0
    assert ServiceManager({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "30000000",
                           "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_every is None
    assert ServiceManager({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "0"}).watchdog_every is None


async def test_given_a_watchdog_when_kept_informed_then_pings_and_status_lines_till_cancelled(
        listener):
    path, sock = listener
    sock.setblocking(False)
    manager = ServiceManager({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    asked = []

    async def report() -> str:
        asked.append(1)
        if len(asked) > 1:  # a status that fails is said as such, and the loop goes on
            raise ConnectionError("Redis away")
        return "serving: 2 calls in hand"

    loop = asyncio.get_running_loop()
    informing = loop.create_task(manager.keep_informed(report, every=0.05))
    messages: list[dict[str, str]] = []
    while not (sum("WATCHDOG" in m for m in messages) >= 3
               and any(m.get("STATUS", "").startswith("status unknown") for m in messages)):
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        messages.append(dict(f.split("=", 1) for f in data.decode().split("\n")))
    informing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await informing
    statuses = [m["STATUS"] for m in messages if "STATUS" in m]
    assert statuses[0] == "serving: 2 calls in hand"
    assert statuses[1] == "status unknown: ConnectionError: Redis away"
    assert {"WATCHDOG": "1"} in messages
    assert len(asyncio.all_tasks()) == 1, "the pings stopped with it"
    manager.close()


def test_given_systemd_gone_when_told_then_false_and_one_warning(tmp_path):
    manager = ServiceManager({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with capture_logs() as logs:
        assert manager.status("serving") is False
        assert manager.status("serving") is False
    assert [e["event"] for e in logs] == ["systemd did not take a notification"]
    assert logs[0]["log_level"] == "warning"
    manager.close()
