"""Bad deployments get a clear, specific error: doctor names the fault, the app refuses to
start with a message saying what to fix (wrong ARI password, Asterisk down, Redis down)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from aiohttp import web
from pydantic import SecretStr
from structlog.testing import capture_logs

from ari_app.app import StartupError, build_app
from ari_app.doctor import run_doctor
from ari_app.policy import load_policy

pytestmark = pytest.mark.integration


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _verdicts(checks) -> dict[str, bool | None]:
    return {c.name: c.ok for c in checks}


async def test_given_sandbox_when_doctor_then_every_check_is_green(settings):
    checks = await run_doctor(settings)
    assert all(c.ok for c in checks), "\n".join(c.line() for c in checks)
    names = {c.name for c in checks}
    assert {"ARI reachable", "ARI credentials", "Asterisk modules", "ARI events WebSocket",
            "sound files", "operators", "Redis", "policy", "callback countries",
            "staff sign-in", "several instances (StasisBroadcast)", "waiting callers"} <= names
    # the tests' policy has no queue (callers wait on music, as most tests want): said, not failed
    assert [c.name for c in checks if c.warn] == ["waiting callers"]


async def test_given_wrong_ari_password_when_doctor_then_credentials_named(settings):
    bad = settings.model_copy(update={"ari_password": SecretStr("not-the-password")})
    checks = await run_doctor(bad)
    failed = [c for c in checks if c.ok is False]
    assert [c.name for c in failed] == ["ARI credentials"]
    assert "rejected user 'etiquette'" in failed[0].detail
    assert _verdicts(checks)["Redis"] is True


async def test_given_stopped_asterisk_and_redis_when_doctor_then_both_named_unreachable(settings):
    port = _unused_port()
    bad = settings.model_copy(update={"ari_url": f"http://127.0.0.1:{port}",
                                      "redis_url": f"redis://127.0.0.1:{_unused_port()}/0"})
    checks = await run_doctor(bad)
    failed = {c.name: c.detail for c in checks if c.ok is False}
    assert set(failed) == {"ARI reachable", "Redis"}
    assert f"not answering at http://127.0.0.1:{port}" in failed["ARI reachable"]
    assert "not reachable" in failed["Redis"]


async def test_given_no_operators_in_the_policy_when_doctor_then_it_says_nobody_could_answer(
        settings, tmp_path):
    """A policy with no `[operators] endpoints` is valid TOML, but no caller could ever be put
    through: doctor fails it, naming the key."""
    policy = tmp_path / "no-operators.toml"
    policy.write_text('company = "Example Corp"\nlanguages = ["en", "ru"]\n'
                      '[callback]\nallowed_countries = ["US"]\n')
    checks = await run_doctor(settings.model_copy(update={"policy_file": policy,
                                                          "staff_file": None}))
    failed = {c.name: c.detail for c in checks if c.ok is False}
    assert set(failed) == {"operators"}, "\n".join(c.line() for c in checks)
    assert "[operators] endpoints" in failed["operators"]


def test_given_wrong_password_when_doctor_cli_then_exit_1_and_message(settings, tmp_path):
    env = tmp_path / "bad.env"
    env.write_text(f"ETIQUETTE_ARI_URL={settings.ari_url}\nETIQUETTE_ARI_PASSWORD=wrong\n"
                   f"ETIQUETTE_REDIS_URL={settings.redis_url}\n"
                   f"ETIQUETTE_POLICY_FILE={settings.policy_file}\nETIQUETTE_TEST_TIME_RANGES=true\n")
    proc = subprocess.run([sys.executable, "-m", "ari_app.cli", "doctor", "--env-file", str(env)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL ARI credentials" in proc.stdout


async def test_given_broken_staff_file_when_doctor_and_start_then_both_name_the_line(
        settings, tmp_path):
    staff = tmp_path / "broken-staff.toml"
    staff.write_text('[users.operator9]\nrole = "operator"\nendpoint = "PJSIP/operator9"\n'
                     'password = "hunter2"\n')
    bad = settings.model_copy(update={"staff_file": staff})
    failed = {c.name: c.detail for c in await run_doctor(bad) if c.ok is False}
    assert set(failed) == {"staff sign-in"}
    assert "[users.operator9]: password must be a scrypt hash" in failed["staff sign-in"]
    runner = web.AppRunner(build_app(bad, load_policy(settings.policy_file,
                                                      test_time_ranges=True)))
    with pytest.raises(StartupError, match=r"\[users.operator9\]: password must be"):
        await runner.setup()
    await runner.cleanup()


@pytest.mark.parametrize("fault", ["ari_password", "ari_down", "redis_down"])
async def test_given_bad_deployment_when_app_starts_then_startup_error_says_what(settings, fault):
    update = {"ari_password": {"ari_password": SecretStr("wrong")},
              "ari_down": {"ari_url": f"http://127.0.0.1:{_unused_port()}"},
              "redis_down": {"redis_url": f"redis://127.0.0.1:{_unused_port()}/0"}}[fault]
    bad = settings.model_copy(update=update)
    app = build_app(bad, load_policy(settings.policy_file, test_time_ranges=True))
    runner = web.AppRunner(app)
    with pytest.raises(StartupError) as info:
        await runner.setup()
    await runner.cleanup()
    message = str(info.value)
    expected = {"ari_password": "rejected user 'etiquette'", "ari_down": "not answering",
                "redis_down": "Redis not reachable"}[fault]
    assert expected in message, message


def test_given_no_ari_password_when_run_then_clear_settings_error(tmp_path):
    env = tmp_path / "empty.env"
    env.write_text("ETIQUETTE_ARI_URL=http://127.0.0.1:1\n")
    proc = subprocess.run([sys.executable, "-m", "ari_app.cli", "run", "--env-file", str(env)],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert "ETIQUETTE_ARI_PASSWORD: is not set" in proc.stderr


def test_given_broken_policy_when_run_then_exit_2_naming_key_and_range(settings, tmp_path):
    policy = tmp_path / "broken.toml"
    policy.write_text('company = "Example Corp"\n[hold]\ncheck_in_interval = 45\n')
    env = tmp_path / "app.env"
    env.write_text(f"ETIQUETTE_ARI_URL={settings.ari_url}\n"
                   f"ETIQUETTE_ARI_PASSWORD={settings.ari_password.get_secret_value()}\n"
                   f"ETIQUETTE_REDIS_URL={settings.redis_url}\nETIQUETTE_POLICY_FILE={policy}\n")
    proc = subprocess.run([sys.executable, "-m", "ari_app.cli", "run", "--env-file", str(env)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "hold.check_in_interval = 45 is outside the allowed range 20-30" in proc.stderr


async def test_given_a_policy_without_queues_when_the_app_starts_then_it_warns_what_callers_miss(
        app_runner):
    """It runs (a lab may want music alone), and says once, at start, in its log, what a caller
    who finds nobody free will not get, and what to add."""
    with capture_logs() as logs:
        await app_runner.start()
    warned = [e for e in logs if e["event"] == "policy leaves callers without etiquette"]
    assert [e["log_level"] for e in warned] == ["warning"], warned
    assert "no [[queues]]" in warned[0]["why"] and "no way out" in warned[0]["why"]
