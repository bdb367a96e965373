"""Process settings from the environment and `.env` (prefix ETIQUETTE_).

Connection details only; what the etiquette rules say lives in the policy file (policy.py).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ETIQUETTE_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    ari_url: str = Field("http://127.0.0.1:8088", description="Asterisk HTTP server (no /ari)")
    ari_user: str = "etiquette"
    ari_password: SecretStr = Field(..., description="ARI password from ari.conf; no default")
    ari_app: str = Field("ari-etiquette", description="Stasis application name in the dialplan")
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_sentinels: str | None = Field(None, description=(
        "Redis Sentinel: the sentinels, host:port,host:port,...; the app asks them for the "
        "master `redis_master` and follows a failover (redis_url then gives only the "
        "password and the database); unset = the one Redis at redis_url"))
    redis_master: str = Field("etiquette", min_length=1, description=(
        "the master's name the sentinels watch (`sentinel monitor <name> ...`)"))
    policy_file: Path = Path("config/policy.example.toml")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8090, ge=0, le=65535, description="the app's own REST API and pages")
    intake_port: int = Field(8095, ge=1, le=65535,
                             description="the public callback form's own processes "
                                         "(ari-etiquette intake)")
    api_token: SecretStr | None = Field(
        None, description="bearer token for /api/ calls that act on calls; unset = those refused")
    staff_file: Path | None = Field(None, description=(
        "the staff accounts (TOML, scrypt hashes) who may sign in to the console and the "
        "dashboard; unset = no sign-in, the API takes the bearer token only"))
    session_idle: int = Field(28800, ge=1, le=7 * 86400, description=(
        "seconds a staff session lives without a request"))
    session_longest: int = Field(43200, ge=1, le=30 * 86400, description=(
        "seconds a staff session lives at most after sign-in (a shift)"))
    cookie_secure: bool | None = Field(None, description=(
        "send the session cookie over HTTPS only; unset = when the request came over HTTPS "
        "(set true behind a proxy that ends TLS)"))
    log_level: str = "INFO"
    log_format: str = Field("auto", pattern="^(auto|json|console)$")
    event_loop: str = Field("uvloop", pattern="^(uvloop|asyncio)$", description=(
        "the event loop `run` uses: uvloop (libuv, faster sockets: bench/callback_api.py) or "
        "asyncio's own; uvloop not installed = asyncio's"))
    # Explicit, for tests only: lets the policy shrink times below the etiquette ranges.
    test_time_ranges: bool = False
    ari_request_timeout: float = Field(5.0, gt=0)
    redis_timeout: float = Field(0.8, gt=0, le=30, description=(
        "seconds a Redis command may take; past that (Redis stopped or unreachable) the API "
        "answers 503 storage-unavailable and calls wait for storage with their music on"))
    voicemail_webhook: str | None = Field(None, description=(
        "URL that gets a JSON POST for every new voice message"))
    callback_dialer: bool = Field(True, description=(
        "run the callback dialer in this instance (several may run it at once)"))
    ari_pool_size: int = Field(64, ge=4, le=512,
                               description="REST connections to Asterisk; keep it below "
                                           "http.conf's sessionlimit")
    instance_id: str | None = Field(None, description=(
        "this process's name in the call leases (unique among running instances; the same "
        "across a restart, so a restarted process takes its calls back at once); default: "
        "the host name and the Stasis app name"))
    call_lease: float = Field(15.0, ge=1, le=300, description=(
        "seconds a call's lease lives without renewal: how soon another instance may take "
        "over the calls of one that died"))

    pool_apps: str | None = Field(None, description=(
        "a pool of instances on one Asterisk: every instance's ARI app name, comma-separated "
        "(the same list in every instance; `ari_app` is this instance's own, one of them). "
        "New callers enter with StasisBroadcast and the first instance to claim takes them; "
        "a survivor takes over the calls of one that died. Unset = one instance"))
    pool_lease: float = Field(5.0, ge=1, le=60, description=(
        "seconds a pool app name's lease lives without renewal: how soon a survivor takes "
        "over the calls of an instance that died or was cut off"))

    node: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$", description=(
        "several Asterisk nodes sharing one Redis: the name of the node this instance "
        "serves (its callers wait in the shared queues for an operator registered on the "
        "same node; callbacks are dialed by an instance whose node has a free operator); "
        "unset = one node"))
    nodes: str | None = Field(None, description=(
        "several Asterisk nodes, every one served by this instance: name=ARI URL, "
        "comma-separated (a=http://10.0.0.1:8088,b=http://10.0.0.2:8088), each with ari_user "
        "and ari_password unless its URL names its own (http://user:password@host:port); "
        "with a pool, a survivor takes over a dead instance's callers "
        "on every node. `node` (if set) names one of them: the node whose Asterisk serves the "
        "API's own reads (voice messages, operator phones). Unset = the one node at ari_url"))

    @field_validator("nodes")
    @classmethod
    def _nodes_listed(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        node_urls(value)  # a clear error at startup
        return value.strip()

    def ari_nodes(self) -> list["NodeAri"]:
        """Every node this instance serves, its own (`node`) first, with its credentials."""
        password = self.ari_password.get_secret_value()
        if self.nodes is None:
            return [NodeAri(self.node, self.ari_url, self.ari_user, password)]
        listed = [_node_ari(name, url, self.ari_user, password)
                  for name, url in node_urls(self.nodes)]
        home = self.node or listed[0].node
        return sorted(listed, key=lambda n: n.node != home)

    @field_validator("pool_apps")
    @classmethod
    def _pool_listed(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        names = [n.strip() for n in value.split(",")]
        bad = [n for n in names if not n or not all(c.isalnum() or c in "-_." for c in n)]
        if bad:
            raise ValueError(f"a pool app name is letters, digits, '-', '_' or '.', not {bad[0]!r} "
                             "(e.g. etiquette-pool-1,etiquette-pool-2)")
        if len(set(names)) != len(names):
            raise ValueError("a pool app name is listed twice")
        return ",".join(names)

    @model_validator(mode="after")
    def _home_in_pool(self) -> "Settings":
        if self.pool_apps is not None and self.ari_app not in self.pool():
            raise ValueError(f"ETIQUETTE_ARI_APP {self.ari_app!r} must be one of "
                             f"ETIQUETTE_POOL_APPS ({self.pool_apps}): it is this instance's "
                             "own app name")
        if self.nodes is not None and self.node is not None and self.node not in dict(
                node_urls(self.nodes)):
            raise ValueError(f"ETIQUETTE_NODE {self.node!r} is not one of ETIQUETTE_NODES "
                             f"({self.nodes})")
        return self

    def pool(self) -> list[str]:
        return self.pool_apps.split(",") if self.pool_apps else []

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_listed(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            sentinel_addresses(value)  # a clear error at startup, not at the first failover
            return value.strip()
        return None

    def sentinels(self) -> list[tuple[str, int]]:
        return sentinel_addresses(self.redis_sentinels) if self.redis_sentinels else []

    def instance(self) -> str:
        return self.instance_id or f"{socket.gethostname()}/{self.ari_app}"



class NodeAri(NamedTuple):
    node: str | None
    url: str  # without credentials: it is named in logs and errors
    user: str
    password: str

    def __repr__(self) -> str:
        return f"NodeAri({self.node!r}, {self.url!r})"


def _node_ari(node: str, url: str, user: str, password: str) -> NodeAri:
    parts = urlsplit(url)
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return NodeAri(node, url, user, password)


def node_urls(text: str) -> list[tuple[str, str]]:
    """"a=http://10.0.0.1:8088,b=..." -> [(name, url), ...]; ValueError naming the bad one."""
    out: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        name, sep, url = (x.strip() for x in item.partition("="))
        if (not sep or not name or not all(c.isalnum() or c in "._-" for c in name)
                or not url.startswith(("http://", "https://"))):
            raise ValueError(f"a node is name=ARI URL, not {item!r} "
                             "(e.g. a=http://10.0.0.1:8088,b=http://10.0.0.2:8088)")
        if name in dict(out):
            raise ValueError(f"node {name!r} is listed twice")
        out.append((name, url.rstrip("/")))
    return out


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """"127.0.0.1:26379, [::1]:26380" -> [(host, port), ...]; ValueError naming the bad one."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        host, sep, port = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a sentinel is host:port, not {item!r} "
                             "(e.g. 127.0.0.1:26379,127.0.0.1:26380)")
        out.append((host, int(port)))
    return out
