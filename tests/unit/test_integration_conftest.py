"""The integration tests' own guard (tests/integration/conftest.py `errors_fail_the_test`): an
error-level line fails the test that logged it, at teardown, with the line; `allow_errors`
lets a named one pass. Run in a pytest of its own, no sandbox needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"

CONFTEST = f"""
import importlib.util
import sys

sys.path.insert(0, {str(INTEGRATION)!r})
spec = importlib.util.spec_from_file_location("integration_conftest",
                                              {str(INTEGRATION / "conftest.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
errors_fail_the_test = module.errors_fail_the_test
"""

TESTS = '''
import asyncio
import logging

import pytest
import structlog
from structlog.testing import capture_logs


def test_structlog_error():
    structlog.get_logger().error("boom", call_id="c1")


def test_exception_inside_capture_logs():
    with capture_logs():
        try:
            1 / 0
        except ZeroDivisionError:
            structlog.get_logger().exception("call handler failed", item="StasisStart")


def test_stdlib_error():
    logging.getLogger("aiohttp.server").error("Error handling request")


def test_task_exception_never_retrieved():
    async def lost():
        raise RuntimeError("nobody awaited me")

    async def main():
        asyncio.get_running_loop().create_task(lost())
        await asyncio.sleep(0.01)

    asyncio.run(main())


@pytest.mark.allow_errors("expected failure")
def test_allowed():
    structlog.get_logger().error("an expected failure, handled")


def test_warning_passes():
    structlog.get_logger().warning("storage away")
'''


def _run(tmp_path: Path) -> str:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_guard.py").write_text(textwrap.dedent(TESTS))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-p", "no:randomly", "-W", "ignore", "test_guard.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


def test_given_error_lines_when_integration_test_ends_then_it_fails_naming_them(tmp_path):
    out = _run(tmp_path)
    assert "6 passed, 4 errors" in out, out  # the four fail at teardown
    for name, line in [("test_structlog_error", "[error] boom call_id='c1'"),
                       ("test_exception_inside_capture_logs", "ZeroDivisionError"),
                       ("test_stdlib_error", "[error] aiohttp.server: Error handling request"),
                       ("test_task_exception_never_retrieved",
                        "Task exception was never retrieved")]:
        assert f"ERROR test_guard.py::{name}" in out, out
        assert line in out, out
    assert "test_allowed" not in out.split("short test summary")[-1], out
