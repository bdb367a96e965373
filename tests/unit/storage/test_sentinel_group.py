"""The sandbox's Sentinel group as files: what each process is told, and the state `ari-etiquette
sentinel` keeps between runs (no process is started here; test_sentinel.py starts them)."""

from __future__ import annotations

import stat

from ari_app.sandbox.sentinel import MASTER_NAME, SentinelGroup
from ari_app.settings import Settings


def test_given_group_then_replicas_follow_the_master_and_sentinels_watch_it(tmp_path):
    group = SentinelGroup(tmp_path, password="pw", data_ports=[7001, 7002, 7003],
                          sentinel_ports=[7101, 7102, 7103])
    master, replica = group._data_conf(7001, None), group._data_conf(7002, 7001)
    assert "replicaof" not in master and "replicaof 127.0.0.1 7001" in replica
    for conf in (master, replica):
        assert "appendonly yes" in conf and "appendfsync everysec" in conf
        assert "requirepass pw" in conf and "masterauth pw" in conf
    sentinel = group._sentinel_conf(7101, 7001)
    assert f"sentinel monitor {MASTER_NAME} 127.0.0.1 7001 2" in sentinel  # quorum 2 of 3
    assert f"sentinel auth-pass {MASTER_NAME} pw" in sentinel


def test_given_saved_group_then_loaded_the_same_and_its_settings_load(tmp_path):
    group = SentinelGroup(tmp_path, password="pw", data_ports=[7001, 7002, 7003],
                          sentinel_ports=[7101, 7102, 7103], pids={7001: 11, 7101: 12})
    env = group.save()
    assert SentinelGroup.load(tmp_path) == group
    assert stat.S_IMODE(env.stat().st_mode) == 0o600  # it holds the password
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    settings = Settings(ari_password="x", _env_file=None,
                        **{k.removeprefix("ETIQUETTE_").lower(): v for k, v in values.items()})
    assert settings.sentinels() == [("127.0.0.1", 7101), ("127.0.0.1", 7102),
                                    ("127.0.0.1", 7103)]
    assert settings.redis_master == MASTER_NAME
