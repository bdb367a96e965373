"""Tells systemd how `ari-etiquette run` is doing (config/systemd/ari-etiquette.service,
`Type=notify`): ready once the HTTP API listens (so `systemctl start` returns when the app
serves, and units ordered after it start then), a one-line status that `systemctl status`
shows (the /healthz verdict), watchdog pings from the event loop (`WatchdogSec=`: a loop that
stops turning is restarted), and "stopping" at SIGTERM.

The protocol is one datagram per message to `$NOTIFY_SOCKET` (man sd_notify): a dozen lines
of socket code, where the PyPI wrappers are unmaintained (sdnotify) or need libsystemd's
headers to build (systemd-python). Not under systemd (no `$NOTIFY_SOCKET`), everything here
is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

import structlog

__all__ = ["ServiceManager"]

logger = structlog.get_logger()

STATUS_EVERY = 10.0  # s between two status lines


class ServiceManager:
    """The service manager that started this process, if it listens (`$NOTIFY_SOCKET`)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name": a socket in the abstract namespace (a leading NUL byte on the wire)
        self.address = "\0" + address[1:] if address.startswith("@") else address or None
        # `WatchdogSec=`: ping at half the interval, as sd_watchdog_enabled advises; a
        # WATCHDOG_PID naming another process (a child that inherited it) is not ours to ping
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        self.watchdog_every = int(usec) / 2e6 if usec.isdigit() and int(usec) and ours else None
        self._socket: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """One message (`READY=1`, `STATUS=...`); False when nobody listens or it failed (a
        warning, once: systemd not hearing us must not stop the calls)."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("systemd did not take a notification", error=str(exc),
                               socket=os.environ.get("NOTIFY_SOCKET"))
            return False

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    async def keep_informed(self, report: Callable[[], Awaitable[str]],
                            every: float = STATUS_EVERY) -> None:
        """The status every `every` s, and the watchdog's pings, till cancelled. The pings have
        their own task: a status that waits on Redis away must not make systemd think the loop
        is stuck (the calls go on without Redis for a while)."""
        pings = (asyncio.get_running_loop().create_task(self._ping())
                 if self.watchdog_every else None)
        try:
            while True:
                await asyncio.sleep(every)
                try:
                    self.status(await report())
                except Exception as exc:  # a status is a nicety; never the end of the loop
                    self.status(f"status unknown: {type(exc).__name__}: {exc}")
        finally:
            if pings is not None:
                pings.cancel()

    async def _ping(self) -> None:
        assert self.watchdog_every is not None
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_every)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
