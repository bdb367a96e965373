"""Test modules are collected in pytest's default (rootdir) import mode, where a module is
known by its basename: two test files with one name make the whole run stop at collection.
Running the unit tests alone does not collect the integration ones, so this says it early."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parents[1]


def test_every_test_module_has_its_own_name() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
