"""The pool's settings: names checked when the settings load, the home among them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ari_app.settings import Settings


def test_given_pool_list_when_loaded_then_names_trimmed_and_home_among_them():
    s = Settings(ari_password="x", ari_app="etq-2", pool_apps=" etq-1, etq-2 ", _env_file=None)
    assert s.pool() == ["etq-1", "etq-2"]


def test_given_no_pool_when_loaded_then_one_instance():
    assert Settings(ari_password="x", pool_apps=" ", _env_file=None).pool() == []


@pytest.mark.parametrize("apps, says", [
    ("etq-1,etq 2", "'etq 2'"), ("etq-1,,etq-2", "''"), ("etq-1,etq-1", "listed twice"),
    ("etq-3,etq-4", "must be one of ETIQUETTE_POOL_APPS")])
def test_given_bad_pool_when_loaded_then_clear_error(apps, says):
    with pytest.raises(ValidationError) as error:
        Settings(ari_password="x", ari_app="etq-1", pool_apps=apps, _env_file=None)
    assert says in str(error.value)


def test_given_node_name_when_loaded_then_checked():
    assert Settings(ari_password="x", node="a-1", _env_file=None).node == "a-1"
    with pytest.raises(ValidationError):
        Settings(ari_password="x", node="a b", _env_file=None)


def test_given_nodes_when_shard_keys_named_then_per_node():
    from ari_app.storage import Keyspace
    assert Keyspace().shards().lease("etq-1") == "etq:shard:{etq-1}:owner"
    assert Keyspace().shards("b").lease("etq-1") == "etq:shard:b:{etq-1}:owner"
