"""Unit tests run in milliseconds: a unit test still running after UNIT_TIMEOUT seconds is stuck
(pyproject.toml's 120 s default is for the integration tests' real calls). `redis`: a client of
a redis-server of the test's own, for what only Redis itself proves (scripts, fencing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redis.asyncio import Redis

from redis_server import REDIS_SERVER, RedisServer

UNIT_TIMEOUT = 30


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None and "tests/unit/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT))


@pytest.fixture
def server(tmp_path: Path):
    """A redis-server of the test's own: skipped where none is installed, except in CI, where
    a missing Redis fails the run."""
    if not Path(REDIS_SERVER).exists():
        if os.environ.get("CI"):
            pytest.fail(f"redis-server not installed ({REDIS_SERVER}); CI needs it")
        pytest.skip("redis-server not installed")
    srv = RedisServer(tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def redis(server: RedisServer):
    """A client of that server."""
    client = Redis(port=server.port, socket_timeout=2, socket_connect_timeout=1)
    yield client
    await client.aclose()
