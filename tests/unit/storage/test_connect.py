"""The app's Redis client: one Redis at redis_url, or the master named by Sentinels, whose
addresses are checked when the settings load (not at the first failover)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from pydantic import ValidationError
from redis.asyncio.connection import Connection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import DataError

from ari_app.settings import Settings
from ari_app.storage.connect import (
    MAX_CONNECTIONS, _hiredis_packing, redacted, storage_client, where)


def settings(**kw) -> Settings:
    return Settings(ari_password="x", _env_file=None, **kw)


def test_given_no_sentinels_then_the_one_redis_at_the_url():
    client = storage_client(settings(redis_url="redis://:secret@10.0.0.5:6380/2"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.0.0.5", 6380, 2)
    assert where(settings(redis_url="redis://:secret@10.0.0.5:6380/2")) == \
        "redis://:***@10.0.0.5:6380/2"


def test_given_sentinels_then_master_asked_of_them_with_the_urls_password_and_db():
    s = settings(redis_url="redis://:secret@ignored:1/3", redis_master="calls",
                 redis_sentinels="127.0.0.1:26379, [::1]:26380,sentinel-3:26381")
    assert s.sentinels() == [("127.0.0.1", 26379), ("::1", 26380), ("sentinel-3", 26381)]
    client = storage_client(s)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "calls"
    assert pool.connection_kwargs["password"] == "secret"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["socket_timeout"] == s.redis_timeout  # still bounded
    assert where(s) == ("the master 'calls' of the sentinels at 127.0.0.1:26379, ::1:26380, "
                        "sentinel-3:26381")


@pytest.mark.parametrize("bad", ["127.0.0.1", "host:port", "host:0", ":26379",
                                 "127.0.0.1:26379,,127.0.0.1:26380"])
def test_given_a_sentinel_without_host_and_port_then_refused_naming_it(bad):
    with pytest.raises(ValidationError, match="a sentinel is host:port"):
        settings(redis_sentinels=bad)


def test_given_empty_sentinels_then_the_one_redis():
    assert settings(redis_sentinels="  ").sentinels() == []


def test_given_sentinels_empty_in_the_environment_then_the_one_redis(monkeypatch):
    """docker/compose.yaml passes ETIQUETTE_REDIS_SENTINELS: ${REDIS_SENTINELS:-}, empty
    without the sentinel profile."""
    monkeypatch.setenv("ETIQUETTE_REDIS_SENTINELS", "")
    s = settings(redis_url="redis://:secret@127.0.0.1:6379/0")
    assert s.redis_sentinels is None and s.sentinels() == []
    assert where(s) == "redis://:***@127.0.0.1:6379/0"


def test_given_url_without_password_then_unchanged():
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_given_either_client_then_its_connections_pack_with_hiredis_over_their_own_class():
    one = storage_client(settings()).connection_pool.connection_class
    group = storage_client(settings(redis_sentinels="127.0.0.1:26379"))
    assert one.__name__ == "HiredisConnection" and issubclass(one, Connection)
    assert group.connection_pool.connection_class.__name__ == "HiredisSentinelManagedConnection"


@settings_hypothesis(max_examples=500, deadline=None)
@given(values=st.lists(st.one_of(st.text(), st.binary(), st.integers(), st.floats(),
                                 st.binary().map(bytearray), st.binary().map(memoryview)),
                       max_size=12))
def test_given_any_command_when_packed_by_hiredis_then_the_bytes_redis_py_would_send(values):
    """The client's connections pack with hiredis alone (redis-py encodes each argument in
    Python first): the same bytes for every value Redis takes, the same error for the rest."""
    plain, packed = Connection(), _hiredis_packing(Connection)()
    for command in (("EVALSHA", "ab12", 1, *values), ("CONFIG GET", *values)):
        assert b"".join(packed.pack_command(*command)) == b"".join(plain.pack_command(*command))
    for refused in (True, None, object()):
        with pytest.raises(DataError):
            plain.pack_command("SET", "k", refused)
        with pytest.raises(DataError):
            packed.pack_command("SET", "k", refused)


def test_given_either_client_then_its_pool_is_not_capped_below_a_burst_of_calls():
    """redis-py 8 caps a pool at 100 connections and fails the 101st command at once: 100
    callers hanging up together failed their last step ("Too many connections")."""
    for client in (storage_client(settings()),
                   storage_client(settings(redis_sentinels="127.0.0.1:26379"))):
        assert client.connection_pool.max_connections == MAX_CONNECTIONS >= 1000
