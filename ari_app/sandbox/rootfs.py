"""The Debian sid (or testing) rootfs that the sandbox Asterisk 22 runs in.

Bookworm has no Asterisk and sid's binaries need a newer glibc, so Asterisk lives in a
debootstrapped tree cached outside the repo. Building is idempotent: a finished tree carries a
stamp naming its package set; an unfinished one is thrown away and built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import structlog

__all__ = ["PACKAGES", "SUITES", "RootfsError", "cache_dir", "ensure_rootfs", "rootfs_path"]

logger = structlog.get_logger()

PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-en",
    "asterisk-core-sounds-ru",
    "asterisk-moh-opsound-wav",
)
# sid first; testing moves more slowly but may carry the same Asterisk when sid breaks.
SUITES = ("sid", "testing")
STAMP = ".ari-etiquette-rootfs.json"


class RootfsError(RuntimeError):
    pass


def cache_dir() -> Path:
    """Everything the sandbox builds lives here, never in the repo."""
    base = os.environ.get("ETIQUETTE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ari-etiquette"
    )
    return Path(base)


def _package_key() -> str:
    return hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:10]


def rootfs_path() -> Path:
    return cache_dir() / f"rootfs-{_package_key()}"


def _is_complete(root: Path) -> bool:
    return (root / STAMP).is_file() and (root / "usr/sbin/asterisk").exists()


def ensure_rootfs() -> Path:
    """Return the ready rootfs, building it first when needed (about a minute, ~530 MB)."""
    root = rootfs_path()
    if _is_complete(root):
        return root
    if os.geteuid() != 0:
        raise RootfsError("building the Asterisk rootfs needs root (debootstrap and chroot)")
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap is not installed: apt-get install debootstrap")
    root.parent.mkdir(parents=True, exist_ok=True)
    building = root.with_name(root.name + ".building")
    errors = []
    for suite in SUITES:
        _remove_tree(building)
        started = time.monotonic()
        logger.info("rootfs build started", suite=suite, path=str(building))
        cmd = [
            "debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
            suite, str(building),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0 and (building / "usr/sbin/asterisk").exists():
            version = subprocess.run(
                ["chroot", str(building), "asterisk", "-V"], capture_output=True, text=True
            ).stdout.strip()
            (building / STAMP).write_text(json.dumps(
                {"suite": suite, "packages": PACKAGES, "asterisk": version,
                 "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2))
            _remove_tree(root)
            building.rename(root)
            logger.info("rootfs built", suite=suite, asterisk=version,
                        seconds=round(time.monotonic() - started, 1))
            return root
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        errors.append(f"{suite}: debootstrap exited {proc.returncode}: {' | '.join(tail)}")
        logger.warning("rootfs suite failed, trying the next", suite=suite, error=errors[-1])
    _remove_tree(building)
    raise RootfsError("could not build the Asterisk rootfs:\n" + "\n".join(errors))


def rootfs_info(root: Path) -> dict:
    return json.loads((root / STAMP).read_text())


def _remove_tree(path: Path) -> None:
    """Delete a rootfs tree, refusing if anything is still mounted inside it."""
    if not path.exists():
        return
    mounts = Path("/proc/self/mounts").read_text().split("\n")
    inside = [m for m in mounts if len(m.split()) > 1 and m.split()[1].startswith(str(path) + "/")]
    if inside:
        raise RootfsError(f"refusing to delete {path}: still mounted inside it: {inside[0]}")
    shutil.rmtree(path)
