"""Free local ports for the sandbox's processes (Asterisk, Redis, sentinels, app instances).

Ports are picked one after another and bound later by another process, so the kernel may offer
the same free port twice in a row: a sentinel once got a Redis node's port and died on bind.
`free_port` never hands out a port twice in one process.
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]

_handed_out: set[int] = set()


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port nobody holds now and this process has not handed out before."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
