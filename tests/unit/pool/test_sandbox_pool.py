"""`ari-etiquette pool up`: each instance's settings, one node or several."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.sandbox.pool import AppPool
from ari_app.settings import Settings

BASE = {"ETIQUETTE_ARI_URL": "http://127.0.0.1:8088", "ETIQUETTE_ARI_PASSWORD": "x",
        "ETIQUETTE_REDIS_URL": "redis://:pw@127.0.0.1:6390/0"}


def _loads(env: dict[str, str]) -> Settings:
    """The settings the app would load from this instance's env file."""
    return Settings(**{k.removeprefix("ETIQUETTE_").lower(): v for k, v in env.items()},
                    _env_file=None)


def test_given_one_node_when_planned_then_names_ports_and_the_same_list(tmp_path: Path):
    out = AppPool(tmp_path).settings(BASE, 3, first_port=9001, lease=3)
    assert list(out) == ["etiquette-pool-1", "etiquette-pool-2", "etiquette-pool-3"]
    assert [e["ETIQUETTE_HTTP_PORT"] for e in out.values()] == ["9001", "9002", "9003"]
    for app, env in out.items():
        settings = _loads(env)
        assert settings.ari_app == app and app in settings.pool() and len(settings.pool()) == 3
        assert settings.pool_lease == 3 and settings.node is None


def test_given_two_nodes_when_planned_then_instances_per_node_on_one_redis(tmp_path: Path):
    nodes = {"a": {"ETIQUETTE_ARI_URL": "http://127.0.0.1:8088"},
             "b": {"ETIQUETTE_ARI_URL": "http://127.0.0.1:8188"}}
    out = AppPool(tmp_path).settings(BASE, 2, first_port=9001, nodes=nodes)
    assert list(out) == ["a/etiquette-pool-1", "a/etiquette-pool-2",
                         "b/etiquette-pool-1", "b/etiquette-pool-2"]
    loaded = {name: _loads(env) for name, env in out.items()}
    assert {s.node for s in loaded.values()} == {"a", "b"}
    assert loaded["b/etiquette-pool-1"].ari_url == "http://127.0.0.1:8188"
    assert len({s.redis_url for s in loaded.values()}) == 1
    assert len({s.instance() for s in loaded.values()}) == 4
    assert len({s.http_port for s in loaded.values()}) == 4


def test_given_no_instance_when_planned_then_refused(tmp_path: Path):
    with pytest.raises(ValueError):
        AppPool(tmp_path).settings(BASE, 0)


def test_given_every_node_when_planned_then_each_instance_serves_all_nodes(tmp_path: Path):
    nodes = {"a": {"ETIQUETTE_ARI_URL": "http://127.0.0.1:8088", "ETIQUETTE_ARI_USER": "etiquette",
                   "ETIQUETTE_ARI_PASSWORD": "pa"},
             "b": {"ETIQUETTE_ARI_URL": "http://127.0.0.1:8188", "ETIQUETTE_ARI_USER": "etiquette",
                   "ETIQUETTE_ARI_PASSWORD": "p/b"}}
    out = AppPool(tmp_path).settings(BASE, 2, first_port=9001, nodes=nodes, every_node=True)
    assert list(out) == ["etiquette-pool-1", "etiquette-pool-2"]
    for env in out.values():
        served = _loads(env).ari_nodes()
        assert [(n.node, n.url, n.password) for n in served] == [
            ("a", "http://127.0.0.1:8088", "pa"), ("b", "http://127.0.0.1:8188", "p/b")]


def test_given_ports_picked_one_after_another_when_none_bound_yet_then_never_the_same_twice():
    """A sentinel once got a Redis node's port (the kernel offered it again before either was
    bound) and died on bind: free_port never hands one port out twice in a process."""
    from ari_app.sandbox.ports import free_port

    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
