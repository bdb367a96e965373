"""Unit tests run in milliseconds: a unit test still running after UNIT_TIMEOUT seconds is stuck
(pyproject.toml's 120 s default is for the integration tests' real calls)."""

from __future__ import annotations

import pytest

UNIT_TIMEOUT = 30


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None and "tests/unit/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT))
