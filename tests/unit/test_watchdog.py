"""The watchdog: a long-lived task that dies is logged and started again; cancel stops it."""

import asyncio

from structlog.testing import capture_logs

from ari_app.watchdog import Watchdog


async def test_given_task_that_dies_when_watched_then_logged_and_started_again():
    runs: list[int] = []
    again = asyncio.Event()

    async def reader():
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("reconcile failed: Redis down")
        again.set()
        await asyncio.Event().wait()  # runs for good the second time

    dog = Watchdog()
    with capture_logs() as logs:
        watched = dog.watch("ari-events", reader, backoff=(0.01, 0.02))
        await asyncio.wait_for(again.wait(), 2)
    status = dog.status()["ari-events"]
    assert runs == [0, 1] and status["running"] and status["restarts"] == 1
    assert status["last_error"] == "RuntimeError: reconcile failed: Redis down"
    assert watched.failed.is_set()
    died = [e for e in logs if e["event"] == "background task died; starting it again"]
    assert len(died) == 1 and died[0]["task"] == "ari-events" and died[0]["exc_info"]
    await dog.stop()
    assert not dog.status()["ari-events"]["running"]


async def test_given_task_that_returns_when_watched_then_it_is_started_again():
    runs: list[int] = []
    twice = asyncio.Event()

    async def dialer():
        runs.append(1)
        if len(runs) >= 2:
            twice.set()
            await asyncio.Event().wait()

    dog = Watchdog()
    with capture_logs() as logs:
        dog.watch("callback-dialer", dialer, backoff=(0.01, 0.02))
        await asyncio.wait_for(twice.wait(), 2)
    assert [e["event"] for e in logs] == ["background task ended; starting it again"]
    await dog.stop()
