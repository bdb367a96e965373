"""ari_app/cli.py: a setting that is wrong stops every command with a line naming the
environment variable to fix, a check across two settings too."""

from __future__ import annotations

import argparse

import pytest

from ari_app.cli import _settings


def settings_from(tmp_path, text: str):
    env = tmp_path / "etiquette.env"
    env.write_text(text)
    return _settings(argparse.Namespace(env_file=str(env)))


def test_given_no_ari_password_when_read_then_the_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("ETIQUETTE_ARI_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as stopped:
        settings_from(tmp_path, "ETIQUETTE_ARI_APP=etq-1\n")
    assert str(stopped.value) == "settings: ETIQUETTE_ARI_PASSWORD: is not set"


def test_given_an_app_outside_its_pool_when_read_then_both_variables_are_named(
        tmp_path, monkeypatch):
    monkeypatch.delenv("ETIQUETTE_POOL_APPS", raising=False)
    with pytest.raises(SystemExit) as stopped:
        settings_from(tmp_path, "ETIQUETTE_ARI_PASSWORD=x\nETIQUETTE_ARI_APP=etq-3\n"
                                "ETIQUETTE_POOL_APPS=etq-1,etq-2\n")
    assert str(stopped.value) == (
        "settings: ETIQUETTE_ARI_APP 'etq-3' must be one of ETIQUETTE_POOL_APPS (etq-1,etq-2): "
        "it is this instance's own app name")
