"""config/systemd/: the unit files an admin copies to /etc/systemd/system, checked by systemd's
own `systemd-analyze verify` (every key known, every value parsed), and kept in step with what
the app does at start and stop."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ari_app.cli import SHUTDOWN_LIMIT

UNITS = Path(__file__).resolve().parents[2] / "config" / "systemd"
INSTALLED = "/opt/ari-etiquette/bin/ari-etiquette"  # where the README installs it


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("name", ["ari-etiquette.service", "ari-etiquette-intake.service"])
def test_given_a_shipped_unit_when_systemd_verifies_it_then_it_says_nothing(name, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd (scripts/test does)"
    # verify checks that ExecStart can run: point it at this checkout's installed command
    command = Path(sys.executable).with_name("ari-etiquette")
    assert command.exists(), f"{command}: the app is not installed in this environment"
    text = (UNITS / name).read_text()
    assert INSTALLED in text
    (tmp_path / name).write_text(text.replace(INSTALLED, str(command)))
    done = subprocess.run([analyze, "verify", str(tmp_path / name)], capture_output=True,
                          text=True, timeout=25)
    # an unknown key or a bad value is only a warning on stderr: none is allowed
    assert (done.returncode, done.stderr.strip()) == (0, "")


def test_given_the_app_unit_then_its_times_and_exit_codes_fit_the_app():
    service = unit("ari-etiquette.service")["Service"]
    assert service["Type"] == "notify"  # ari_app/systemd.py tells it when the app is ready
    assert service["ExecStart"] == f"{INSTALLED} run"
    # systemd's SIGKILL comes only after the app's own limit has run out
    assert int(service["TimeoutStopSec"]) > SHUTDOWN_LIMIT
    # an invalid policy exits 2 (cli.py): restarting cannot help
    assert service["RestartPreventExitStatus"] == "2"
    intake = unit("ari-etiquette-intake.service")["Service"]
    assert intake["ExecStart"] == f"{INSTALLED} intake"
    assert intake["KillMode"] == "mixed"  # the first process stops its workers itself
