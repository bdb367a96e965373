"""Static checks of docker/: no Docker engine runs where the tests do, so nothing is built here.

What is checked: compose.yaml's paths and variables (with PyYAML, if installed), the Dockerfiles'
instructions and COPY sources (with a small line parser), the Asterisk image's package list
against the sandbox's, the entrypoint script (syntax and behaviour), and that no file under
docker/ holds a password. `docker compose config` runs only where the client has the plugin.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
ENTRYPOINT = DOCKER / "asterisk-entrypoint.sh"
REDIS_NODE = DOCKER / "redis-node.sh"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"

KNOWN_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip


# --- a small Dockerfile parser ------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int  # where it starts
    keyword: str  # upper case
    args: str  # continuations joined

    def json_args(self) -> list[str] | None:
        """The exec (JSON) form's list, or None for the shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        return value if isinstance(value, list) else None


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, `\\` continuations joined.

    Comment lines inside a continuation are skipped, as Docker does. Heredocs are not supported
    (their body would show up as unknown instructions).
    """
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1] if continued else stripped)
        if continued:
            continue
        text = " ".join(part for part in pending if part).strip()
        pending = []
        keyword, _, args = text.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    assert not pending, f"{path.name}: the last instruction ends with a line continuation"
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped per build stage (each starts with its FROM)."""
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def stage_name(from_ins: Instruction) -> str | None:
    words = from_ins.args.split()
    return words[2] if len(words) >= 3 and words[1].upper() == "AS" else None


def copy_parts(ins: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY or ADD."""
    words = ins.json_args() or shlex.split(ins.args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    assert len(words) >= 2, f"line {ins.line}: {ins.keyword} needs a source and a destination"
    return flags, words[:-1], words[-1]


def apt_installed(stage: list[Instruction]) -> set[str]:
    """Package names given to `apt-get install` in a stage's RUN instructions."""
    packages: set[str] = set()
    for ins in stage:
        if ins.keyword != "RUN":
            continue
        for command in re.split(r"&&|\|\||;", ins.args):
            words = command.split()
            for i in range(len(words) - 1):
                if words[i] in ("apt-get", "apt") and words[i + 1] == "install":
                    packages |= {w for w in words[i + 2:] if not w.startswith("-")}
    return packages


def args_defaults(instructions: list[Instruction]) -> dict[str, str]:
    defaults = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            key, _, value = ins.args.partition("=")
            defaults[key.strip()] = value.strip().strip('"')
    return defaults


# --- .dockerignore (the per-Dockerfile kind BuildKit reads) ---------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether BuildKit leaves `rel` out of the context: the last matching pattern decides, and a
    pattern that matches a parent folder matches everything inside it."""
    parents = ["/".join(rel.split("/")[: i + 1]) for i in range(rel.count("/") + 1)]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _ignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(p) for p in parents):
            result = not negated
    return result


def ignore_patterns(dockerfile: Path) -> list[str] | None:
    path = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not path.exists():
        return None
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --- the Dockerfiles ----------------------------------------------------------------------------


def test_the_expected_files_exist():
    names = {p.name for p in DOCKER.iterdir()}
    assert {"asterisk.Dockerfile", "app.Dockerfile", "asterisk-entrypoint.sh", "compose.yaml",
            ".env.example"} <= names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_starts_with_from_and_uses_known_instructions(dockerfile):
    instructions = parse_dockerfile(dockerfile)
    assert instructions, f"{dockerfile.name} is empty"
    unknown = [f"line {i.line}: {i.keyword}" for i in instructions
               if i.keyword not in KNOWN_INSTRUCTIONS]
    assert not unknown, f"{dockerfile.name}: unknown instructions {unknown}"
    # Docker's rule: only ARGs (global build arguments for FROM lines) may come before the first FROM.
    keywords = [i.keyword for i in instructions]
    assert "FROM" in keywords, f"{dockerfile.name} has no FROM"
    before = keywords[: keywords.index("FROM")]
    assert set(before) <= {"ARG"}, f"{dockerfile.name}: {before} before the first FROM"
    for ins in instructions:
        assert ins.args, f"{dockerfile.name} line {ins.line}: {ins.keyword} without arguments"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_the_repo(dockerfile):
    """Build contexts are the repo root (compose.yaml says `context: ..`)."""
    instructions = parse_dockerfile(dockerfile)
    names = set()
    patterns = ignore_patterns(dockerfile)
    args: dict[str, str] = {}
    for stage in stages(instructions):
        for ins in stage:
            if ins.keyword == "ARG" and "=" in ins.args:
                name, _, default = ins.args.partition("=")
                args[name.strip()] = default.strip().strip('"')
            if ins.keyword not in ("COPY", "ADD"):
                continue
            flags, sources, _ = copy_parts(ins)
            if "from" in flags:
                assert flags["from"] in names, (
                    f"{dockerfile.name} line {ins.line}: --from={flags['from']} is no earlier stage")
                continue
            for source in sources:
                for arg, default in args.items():  # COPY ${ARG}: its default must exist
                    source = source.replace(f"${{{arg}}}", default)
                assert not source.startswith(("/", "..")), f"line {ins.line}: {source} leaves the context"
                matches = sorted(REPO.glob(source.rstrip("/"))) if any(c in source for c in "*?[") \
                    else [REPO / source.rstrip("/")]
                matches = [m for m in matches if m.exists()]
                assert matches, f"{dockerfile.name} line {ins.line}: COPY source {source} not in the repo"
                if patterns is None:
                    continue
                for match in matches:
                    files = [match] if match.is_file() else [
                        f for f in match.rglob("*") if f.is_file()
                        and "__pycache__" not in f.parts and f.suffix != ".pyc"]
                    left_out = [str(f.relative_to(REPO)) for f in files
                                if ignored(str(f.relative_to(REPO)), patterns)]
                    assert not left_out, (f"{dockerfile.name} line {ins.line}: its .dockerignore "
                                          f"leaves out {left_out[:3]}")
        name = stage_name(stage[0])
        if name:
            names.add(name)


def test_dockerignore_files_keep_secrets_out():
    for dockerfile in DOCKERFILES:
        patterns = ignore_patterns(dockerfile)
        assert patterns is not None, f"{dockerfile.name}.dockerignore is missing"
        for rel in ("docker/.env", ".git/config", ".venv/bin/python", "ari_app/__pycache__/x.pyc"):
            assert ignored(rel, patterns), f"{dockerfile.name}.dockerignore lets {rel} in"


def test_dockerignore_matcher():
    patterns = ["**", "!ari_app/", "**/__pycache__"]
    assert ignored("docker/.env", patterns)
    assert not ignored("ari_app/prompts/catalog.toml", patterns)
    assert ignored("ari_app/prompts/__pycache__/a.pyc", patterns)
    assert not ignored("x", ["**", "!x"]) and ignored("y/z", ["y"])


def test_asterisk_image_installs_the_sandbox_packages():
    from ari_app.sandbox.rootfs import PACKAGES, SUITES

    instructions = parse_dockerfile(DOCKER / "asterisk.Dockerfile")
    prompts_stage, asterisk_stage = stages(instructions)
    assert set(PACKAGES) == apt_installed(asterisk_stage), (
        "docker/asterisk.Dockerfile and ari_app/sandbox/rootfs.py PACKAGES disagree")
    assert {"festival", "festvox-us-slt-hts", "festvox-ru", "sox", "python3"} <= apt_installed(
        prompts_stage)
    assert prompts_stage[0].args.split()[0] == "debian:bookworm-slim"
    # The Asterisk stage is sid (or testing): the only suites with Asterisk 22.
    image = asterisk_stage[0].args.split()[0]
    suite = args_defaults(instructions).get("ASTERISK_SUITE")
    assert image == "debian:${ASTERISK_SUITE}-slim" and suite in SUITES


def test_asterisk_image_details():
    instructions = parse_dockerfile(DOCKER / "asterisk.Dockerfile")
    by_keyword = {}
    for ins in instructions:
        by_keyword.setdefault(ins.keyword, []).append(ins)
    cmd = by_keyword["CMD"][-1].json_args()
    assert cmd and cmd[:3] == ["asterisk", "-f", "-n"]
    assert not {"-U", "-G"} & set(cmd), "-U makes Asterisk unable to read its 0640 configs"
    assert by_keyword["ENTRYPOINT"][-1].json_args() == ["/usr/local/bin/asterisk-entrypoint"]
    exposed = " ".join(i.args for i in by_keyword["EXPOSE"]).split()
    assert {"8088/tcp", "5060/udp", "10000-10999/udp"} <= set(exposed)
    runs = " ".join(i.args for i in by_keyword["RUN"])
    assert "readlink -f" in runs and "/var/spool/asterisk/recording" in runs
    assert "#include extensions_etiquette.conf" in runs
    # the RTP range exposed is the one rtp.conf configures
    rtp = (REPO / "config/asterisk/rtp.conf").read_text()
    start = re.search(r"(?m)^rtpstart\s*=\s*(\d+)", rtp).group(1)
    end = re.search(r"(?m)^rtpend\s*=\s*(\d+)", rtp).group(1)
    assert f"{start}-{end}/udp" in exposed


def test_app_image_details():
    instructions = parse_dockerfile(DOCKER / "app.Dockerfile")
    assert instructions[0].args.split()[0] == "python:3.11-slim-bookworm"
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the app must not run as root"
    cmd = [i for i in instructions if i.keyword == "CMD"][-1].json_args()
    assert cmd == ["ari-etiquette", "run"]
    assert 'ari-etiquette = "ari_app.cli:main"' in (REPO / "pyproject.toml").read_text()
    health = [i.args for i in instructions if i.keyword == "HEALTHCHECK"]
    assert health and "/healthz" in health[-1] and "127.0.0.1" in health[-1]
    env = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert "ETIQUETTE_HTTP_HOST=0.0.0.0" in env
    assert "ETIQUETTE_POLICY_FILE=/etc/ari-etiquette/policy.toml" in env


# --- the entrypoint -----------------------------------------------------------------------------


def test_entrypoint_syntax():
    result = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# The head of Debian's /etc/asterisk/asterisk.conf (the upstream sample): the image keeps it.
ASTERISK_CONF = """[directories](!)
astetcdir => /etc/asterisk
astspooldir => /var/spool/asterisk

[options]
;verbose = 3
;entityid=00:11:22:33:44:55	; Entity ID.
;systemname = my_system_name	; Prefix uniqueid with a system name.
documentation_language = en_US

[compat]
pbx_realtime=1.6
"""


def _run_entrypoint(tmp_path: Path, env: dict[str, str], *command: str):
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "http.conf").write_text("[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = 8088\n")
    for name in ("pjsip.conf", "rtp.conf"):  # as the image ships them
        if not (etc / name).exists():
            shutil.copyfile(REPO / "config/asterisk" / name, etc / name)
    if not (etc / "asterisk.conf").exists():
        (etc / "asterisk.conf").write_text(ASTERISK_CONF)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ASTERISK_ETC_DIR": str(etc),
            "ASTERISK_RUN_DIR": str(tmp_path / "run"), "ASTERISK_SPOOL_DIR": str(tmp_path / "spool")}
    return subprocess.run(["bash", str(ENTRYPOINT), *command], env={**base, **env},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("env", [{}, {"ARI_PASSWORD": ""}], ids=["unset", "empty"])
def test_entrypoint_refuses_to_start_without_a_password(tmp_path, env):
    result = _run_entrypoint(tmp_path, env, "sh", "-c", "echo started")
    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "ARI_PASSWORD is empty" in result.stderr and "openssl rand" in result.stderr
    assert not (tmp_path / "etc/ari_users.conf").exists()


@pytest.mark.parametrize("bad", ["with space", "semi;colon", "new\nline"])
def test_entrypoint_refuses_passwords_that_break_the_config(tmp_path, bad):
    result = _run_entrypoint(tmp_path, {"ARI_PASSWORD": bad}, "true")
    assert result.returncode != 0 and "ARI_PASSWORD contains" in result.stderr


def test_entrypoint_writes_ari_users_and_runs_the_command(tmp_path):
    password = secrets.token_hex(24)
    result = _run_entrypoint(
        tmp_path, {"ARI_USER": "etiq", "ARI_PASSWORD": password, "ASTERISK_HTTP_BINDADDR": "10.0.0.5"},
        "sh", "-c", 'echo "started; secret in env: ${ARI_PASSWORD:-no}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started; secret in env: no"
    users = tmp_path / "etc/ari_users.conf"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    assert "[etiq]" in text and "type = user" in text and f"password = {password}" in text
    assert "bindaddr = 10.0.0.5" in (tmp_path / "etc/http.conf").read_text()
    assert (tmp_path / "spool/recording").is_dir() and (tmp_path / "run").is_dir()


def test_entrypoint_reads_a_password_file(tmp_path):
    password = secrets.token_hex(24)
    (tmp_path / "secret").write_text(password + "\n")
    result = _run_entrypoint(tmp_path, {"ARI_PASSWORD_FILE": str(tmp_path / "secret")}, "true")
    assert result.returncode == 0, result.stderr
    assert f"password = {password}\n" in (tmp_path / "etc/ari_users.conf").read_text()


NODE_B = {"ASTERISK_HTTP_PORT": "8188", "ASTERISK_SIP_PORT": "5160", "ASTERISK_RTP_START": "11000",
          "ASTERISK_RTP_END": "11999", "ASTERISK_ENTITY_ID": "02:00:00:00:00:0b",
          "ASTERISK_SYSTEM_NAME": "etiquette-b"}


def _conf_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()]


def test_entrypoint_gives_a_second_node_its_own_ports_and_identity(tmp_path):
    env = {"ARI_PASSWORD": secrets.token_hex(24), **NODE_B}
    for start in (1, 2):  # a restarted container rewrites its lines again, the same way
        result = _run_entrypoint(tmp_path, env, "true")
        assert result.returncode == 0, (start, result.stderr)
        etc = tmp_path / "etc"
        assert "bindport = 8188" in _conf_lines(etc / "http.conf")
        pjsip = _conf_lines(etc / "pjsip.conf")
        assert "bind = 0.0.0.0:5160" in pjsip and not [x for x in pjsip if x.endswith(":5060")]
        rtp = _conf_lines(etc / "rtp.conf")
        assert "rtpstart = 11000" in rtp and "rtpend = 11999" in rtp
        conf = _conf_lines(etc / "asterisk.conf")
        options = conf[conf.index("[options]"):conf.index("[compat]")]
        assert options.count("entityid = 02:00:00:00:00:0b") == 1
        assert options.count("systemname = etiquette-b") == 1
        assert sorted(x for x in conf if x.startswith(("entityid", "systemname"))) == [
            "entityid = 02:00:00:00:00:0b", "systemname = etiquette-b"]  # once each, nowhere else
        assert "documentation_language = en_US" in options and "[directories](!)" in conf


def test_entrypoint_without_the_node_variables_leaves_the_configs_as_shipped(tmp_path):
    result = _run_entrypoint(tmp_path, {"ARI_PASSWORD": secrets.token_hex(24)}, "true")
    assert result.returncode == 0, result.stderr
    etc = tmp_path / "etc"
    for name in ("pjsip.conf", "rtp.conf"):
        assert (etc / name).read_text() == (REPO / "config/asterisk" / name).read_text()
    assert (etc / "asterisk.conf").read_text() == ASTERISK_CONF


def test_entrypoint_adds_an_options_section_when_asterisk_conf_has_none(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/asterisk.conf").write_text("[directories]\nastetcdir => /etc/asterisk\n")
    result = _run_entrypoint(tmp_path, {"ARI_PASSWORD": secrets.token_hex(24),
                                        "ASTERISK_ENTITY_ID": "02:00:00:00:00:0b"}, "true")
    assert result.returncode == 0, result.stderr
    conf = _conf_lines(tmp_path / "etc/asterisk.conf")
    assert conf[-2:] == ["[options]", "entityid = 02:00:00:00:00:0b"]


@pytest.mark.parametrize("env, says", [
    ({"ASTERISK_HTTP_PORT": "80a"}, "ASTERISK_HTTP_PORT '80a' is not a port number"),
    ({"ASTERISK_HTTP_PORT": "65536"}, "ASTERISK_HTTP_PORT '65536' is not a port number"),
    ({"ASTERISK_SIP_PORT": "0"}, "ASTERISK_SIP_PORT '0' is not a port number"),
    ({"ASTERISK_RTP_START": "11000"}, "set ASTERISK_RTP_START and ASTERISK_RTP_END together"),
    ({"ASTERISK_RTP_START": "12000", "ASTERISK_RTP_END": "11999"}, "must be below"),
    ({"ASTERISK_ENTITY_ID": "02:00:00:00:0b"}, "is not a MAC address"),
    ({"ASTERISK_SYSTEM_NAME": "node b"}, "is not a valid system name"),
], ids=["http-letters", "http-too-high", "sip-zero", "rtp-alone", "rtp-reversed", "entity-short",
        "system-space"])
def test_entrypoint_refuses_bad_node_settings_and_does_not_start(tmp_path, env, says):
    result = _run_entrypoint(tmp_path, {"ARI_PASSWORD": secrets.token_hex(24), **env},
                             "sh", "-c", "echo started")
    assert result.returncode != 0 and "started" not in result.stdout
    assert says in result.stderr, result.stderr


def test_entrypoint_says_which_line_it_could_not_find(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/pjsip.conf").write_text("[transport-udp]\ntype = transport\n")
    result = _run_entrypoint(tmp_path, {"ARI_PASSWORD": secrets.token_hex(24),
                                        "ASTERISK_SIP_PORT": "5160"}, "true")
    assert result.returncode != 0
    assert "ASTERISK_SIP_PORT:" in result.stderr and "pjsip.conf has no line" in result.stderr


# --- the Sentinel group's start script (redis-node.sh) --------------------------------------------


def test_redis_node_syntax():
    result = subprocess.run(["sh", "-n", str(REDIS_NODE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


GROUP = {"REDIS_MASTER_PORT": "6379", "REDIS_DATA_PORTS": "6379 6380 6381",
         "SENTINEL_PORTS": "26379 26380 26381", "REDIS_MASTER_NAME": "etiquette",
         "SENTINEL_QUORUM": "2", "SENTINEL_DOWN_AFTER_MS": "5000",
         "SENTINEL_FAILOVER_TIMEOUT_MS": "10000"}


def _run_redis_node(tmp_path: Path, kind: str, env: dict[str, str]):
    """redis-node.sh with a stand-in for the image's entrypoint that prints what it was given."""
    (tmp_path / "data").mkdir(exist_ok=True)
    fake = tmp_path / "docker-entrypoint.sh"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_NODE_DIR": str(tmp_path / "data"),
            "REDIS_ENTRYPOINT": str(fake), **GROUP}
    return subprocess.run(["sh", str(REDIS_NODE), kind], env={**base, **env},
                          capture_output=True, text=True, timeout=30)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_redis_node_replica_follows_the_master_then_keeps_the_role_the_sentinels_gave(tmp_path):
    password = secrets.token_hex(24)
    env = {"REDIS_PASSWORD": password, "NODE_PORT": "6380"}
    result = _run_redis_node(tmp_path, "replica", env)
    assert result.returncode == 0, result.stderr
    conf = tmp_path / "data/redis.conf"
    assert result.stdout.split() == ["redis-server", str(conf)]  # no password on the command line
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    lines = _lines(conf)
    for line in ("bind 127.0.0.1", "port 6380", "appendonly yes", "appendfsync everysec",
                 f"requirepass {password}", f"masterauth {password}", "min-replicas-to-write 1",
                 "replicaof 127.0.0.1 6379"):
        assert line in lines
    # promoted by the sentinels: CONFIG REWRITE took its replicaof line away
    conf.write_text(conf.read_text().replace("replicaof 127.0.0.1 6379\n", ""))
    new_password = secrets.token_hex(24)
    assert _run_redis_node(tmp_path, "replica", {**env, "REDIS_PASSWORD": new_password}).returncode == 0
    lines = _lines(conf)
    assert not [x for x in lines if x.startswith(("replicaof", "slaveof"))]  # still the master
    assert f"requirepass {new_password}" in lines  # the environment's settings, always
    # demoted again, under another master
    conf.write_text(conf.read_text() + "replicaof 127.0.0.1 6381\n")
    _run_redis_node(tmp_path, "replica", env)
    assert [x for x in _lines(conf) if x.startswith("replicaof")] == ["replicaof 127.0.0.1 6381"]
    # other ports: the group starts over from the first roles
    _run_redis_node(tmp_path, "replica", {**env, "REDIS_DATA_PORTS": "6379 6390 6391"})
    assert [x for x in _lines(conf) if x.startswith("replicaof")] == ["replicaof 127.0.0.1 6379"]


def test_redis_node_sentinel_watches_the_master_then_keeps_what_it_learnt(tmp_path):
    password = secrets.token_hex(24)
    env = {"REDIS_PASSWORD": password, "NODE_PORT": "26380"}
    result = _run_redis_node(tmp_path, "sentinel", env)
    assert result.returncode == 0, result.stderr
    conf = tmp_path / "data/sentinel.conf"
    assert result.stdout.split() == ["redis-server", str(conf), "--sentinel"]
    lines = _lines(conf)
    for line in ("bind 127.0.0.1", "port 26380", "sentinel monitor etiquette 127.0.0.1 6379 2",
                 f"sentinel auth-pass etiquette {password}",
                 "sentinel down-after-milliseconds etiquette 5000",
                 "sentinel failover-timeout etiquette 10000"):
        assert line in lines
    # after a failover, as the sentinel rewrites its file
    learnt = ["sentinel myid 0123456789abcdef0123456789abcdef01234567", "sentinel current-epoch 1",
              "sentinel config-epoch etiquette 1", "sentinel leader-epoch etiquette 1",
              "sentinel known-replica etiquette 127.0.0.1 6379",
              "sentinel known-replica etiquette 127.0.0.1 6381",
              "sentinel known-sentinel etiquette 127.0.0.1 26379 fedcba9876543210fedcba9876543210fedcba98"]
    text = conf.read_text().replace("127.0.0.1 6379 2", "127.0.0.1 6380 2")
    conf.write_text(text + 'dir "/data"\nsentinel resolve-hostnames no\n' + "\n".join(learnt) + "\n")
    assert _run_redis_node(tmp_path, "sentinel", {**env, "SENTINEL_DOWN_AFTER_MS": "3000"}).returncode == 0
    lines = _lines(conf)
    assert "sentinel monitor etiquette 127.0.0.1 6380 2" in lines  # the master it elected
    assert set(learnt) <= set(lines)
    assert "sentinel down-after-milliseconds etiquette 3000" in lines
    assert lines.index("sentinel monitor etiquette 127.0.0.1 6380 2") < lines.index(learnt[2])
    # another master name: it starts over
    _run_redis_node(tmp_path, "sentinel", {**env, "REDIS_MASTER_NAME": "calls"})
    lines = _lines(conf)
    assert "sentinel monitor calls 127.0.0.1 6379 2" in lines
    assert not [x for x in lines if "etiquette" in x or x.startswith("sentinel myid")]


@pytest.mark.parametrize("kind, env, says", [
    ("replica", {"REDIS_PASSWORD": ""}, "REDIS_PASSWORD is empty"),
    ("replica", {"REDIS_PASSWORD": "has space"}, "REDIS_PASSWORD has a character"),
    ("replica", {"NODE_PORT": "63a0"}, "NODE_PORT '63a0' is not a number"),
    ("sentinel", {"SENTINEL_QUORUM": "two"}, "SENTINEL_QUORUM 'two' is not a number"),
    ("sentinel", {"REDIS_MASTER_NAME": "a b"}, "REDIS_MASTER_NAME 'a b'"),
    ("master", {}, "usage"),
])
def test_redis_node_refuses_bad_settings(tmp_path, kind, env, says):
    result = _run_redis_node(tmp_path, kind, {"REDIS_PASSWORD": secrets.token_hex(24),
                                              "NODE_PORT": "6380", **env})
    assert result.returncode != 0 and "redis-server" not in result.stdout
    assert says in result.stderr, result.stderr


# --- compose.yaml -------------------------------------------------------------------------------


def _compose() -> dict:
    try:
        import yaml
    except ImportError:
        if os.environ.get("CI"):  # any CI value (CI=1 too): a missing check is a failure there
            pytest.fail("PyYAML is not installed (the test extras have it): compose.yaml unchecked")
        pytest.skip("PyYAML is not installed: compose.yaml not checked")
    return yaml.safe_load(COMPOSE.read_text())


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=VALUE"
            values[key.strip()] = value.strip()
    return values


def test_compose_paths_exist():
    compose = _compose()
    assert {"asterisk", "redis", "app"} <= set(compose["services"])
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = (COMPOSE.parent / build["context"]).resolve()
            assert context == REPO, f"{name}: build context should be the repo root"
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source.startswith((".", "/")):
                path = (COMPOSE.parent / source).resolve()
                assert path.exists(), f"{name}: volume source {source} does not exist"
                assert path.is_relative_to(REPO), f"{name}: {source} is outside the repo"
            else:
                assert source in declared_volumes, f"{name}: named volume {source} not declared"


def test_compose_wiring():
    compose = _compose()
    services = compose["services"]
    assert services["asterisk"]["network_mode"] == "host"
    assert set(services["app"]["depends_on"]) >= {"asterisk", "redis"}
    assert services["redis"]["image"] == "redis:7-bookworm"
    command = services["redis"]["command"]
    words = command if isinstance(command, list) else command.split()
    assert words[words.index("--appendonly") + 1] == "yes"
    assert words[words.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    env = services["app"]["environment"]
    assert env["ETIQUETTE_ARI_PASSWORD"].startswith("${ARI_PASSWORD:?")
    assert services["asterisk"]["environment"]["ARI_PASSWORD"].startswith("${ARI_PASSWORD:?")
    # the app container finds the policy where its image says (ETIQUETTE_POLICY_FILE)
    mounts = [v.split(":") for v in services["app"]["volumes"]]
    assert ["../config/policy.example.toml", "/etc/ari-etiquette/policy.toml", "ro"] in mounts


def test_env_example_lists_every_compose_variable_with_empty_secrets():
    text = "\n".join(line for line in COMPOSE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    example = _env_example()
    assert used <= set(example), f"missing from docker/.env.example: {sorted(used - set(example))}"
    for key in ("ARI_PASSWORD", "REDIS_PASSWORD", "API_TOKEN"):
        assert example[key] == "", f".env.example must leave {key} empty"
        assert re.search(r"\$\{" + key + r":\?", text), f"compose must require {key} (${{{key}:?...}})"
    assert "openssl rand -hex 24" in ENV_EXAMPLE.read_text()


def _compose_command() -> list[str]:
    """Compose v2 (the docker plugin) or v1 (Debian's docker-compose): both parse without an engine."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no compose client: scripts/test installs Debian's docker-compose")


def test_docker_compose_config(tmp_path):
    """`compose config` validates the file and its variables; it needs no Docker engine."""
    compose = _compose_command()
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    base = [k for k in os.environ if k in ("ARI_PASSWORD", "REDIS_PASSWORD", "API_TOKEN")]
    env = {k: v for k, v in os.environ.items() if k not in base}
    cmd = [*compose, "--env-file", str(empty_env), "-f", str(COMPOSE), "config"]
    refused = subprocess.run(cmd + ["--quiet"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert re.search(r"set (ARI_PASSWORD|REDIS_PASSWORD|API_TOKEN) in docker/\.env",
                     refused.stderr), refused.stderr
    env |= {"ARI_PASSWORD": secrets.token_hex(24), "REDIS_PASSWORD": secrets.token_hex(24),
            "API_TOKEN": secrets.token_hex(24)}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert env["REDIS_PASSWORD"] in result.stdout and "network_mode: host" in result.stdout
    profiles = ["--profile", "pool", "--profile", "sentinel", "--profile", "node-b"]
    everything = subprocess.run([*compose, "--env-file", str(empty_env), "-f", str(COMPOSE),
                                 *profiles, "config"], env=env, capture_output=True, text=True,
                                timeout=60)
    assert everything.returncode == 0, everything.stderr
    for name in ("app-pool-2", "redis-sentinel-3", "redis-replica-2", "asterisk-b", "app-pool-b-2"):
        assert f"  {name}:" in everything.stdout, name


# --- no secrets in docker/ ----------------------------------------------------------------------

_SECRET_KEY = r"\w*(?:password|passwd|secret|_auth)['\"]?"
_VALUE = r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s#]*)"
# KEY=value anywhere (shell, .env, Dockerfile ENV, Asterisk configs); `key: value` only as a YAML
# mapping entry at the start of a line, so that prose like "no default password: ..." is fine.
_KEY_VALUE = re.compile(r"(?i)(?<![{$#\w])" + _SECRET_KEY + r"[ \t]*=[ \t]*" + _VALUE)
_YAML_KEY_VALUE = re.compile(r"(?i)^[ \t]*(?:-[ \t]+)?['\"]?" + _SECRET_KEY + r"[ \t]*:[ \t]+" + _VALUE)
_REQUIREPASS = re.compile(r"--requirepass[ \t]+(?P<value>\S+)")
_URL_PASSWORD = re.compile(r"\w+://[^\s/@:]*:(?P<value>[^\s/@]+)@")


def _placeholder(value: str) -> bool:
    value = value.strip("\"'")
    return value == "" or value.startswith(("$", "<", "..."))


def hardcoded_passwords(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for regex in (_KEY_VALUE, _YAML_KEY_VALUE, _REQUIREPASS, _URL_PASSWORD):
            for match in regex.finditer(line):
                if not _placeholder(match.group("value")):
                    found.append(f"line {number}: {line.strip()}")
    return found


def test_the_password_detector_works():
    for bad in ("ARI_PASSWORD=hunter2", "password = s3cret", "  ETIQUETTE_ARI_PASSWORD: abc",
                "--requirepass abc", "ETIQUETTE_REDIS_URL: redis://:abc@127.0.0.1/0",
                'REDISCLI_AUTH: "x"', "-e ARI_PASSWORD='x'"):
        assert hardcoded_passwords(bad), bad
    for fine in ("ARI_PASSWORD=", "password = ${ari_password}", 'ARI_PASSWORD: "${ARI_PASSWORD}"',
                 "--requirepass ${REDIS_PASSWORD:?set it}", "redis://:${REDIS_PASSWORD}@h:1/0",
                 'x="${ARI_PASSWORD:-}"', "-e ETIQUETTE_ARI_PASSWORD=...", "password = <secret>",
                 "# there is no default password: set one"):
        assert not hardcoded_passwords(fine), fine


def test_no_file_in_docker_holds_a_password():
    checked = []
    for path in sorted(DOCKER.rglob("*")):
        if not path.is_file() or path.name == ".env":  # docker/.env: the admin's own, git-ignored
            continue
        found = hardcoded_passwords(path.read_text(encoding="utf-8", errors="replace"))
        assert not found, f"{path.relative_to(REPO)} has what looks like a password: {found}"
        checked.append(path.name)
    assert "compose.yaml" in checked and ".env.example" in checked


def _interpolate(value, env: dict[str, str]) -> str:
    """A compose value as compose reads it with `env` (docker/.env): ${VAR}, ${VAR:-default},
    ${VAR-default}, ${VAR:?message}, and $$ for a literal $."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        if op in (":-", ":?") and not value or op == "-" and value is None:
            assert op != ":?", f"{name} is required: {arg}"
            return arg or ""
        return value or ""
    text = re.sub(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?|-)(?P<arg>[^}]*))?\}", one, str(value))
    return text.replace("$$", "$")


def _resolved(service: dict, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment with docker/.env.example's values (the secrets filled in)."""
    if env is None:
        env = {**_env_example(), "ARI_PASSWORD": "a" * 48, "REDIS_PASSWORD": "r" * 48,
               "API_TOKEN": "t" * 48}
    return {key: _interpolate(value, env) for key, value in (service.get("environment") or {}).items()}


def _profile(services: dict, name: str) -> dict[str, dict]:
    return {n: s for n, s in services.items() if name in (s.get("profiles") or [])}


def _command_option(service: dict, option: str, env: dict[str, str]) -> str:
    words = service["command"]
    return _interpolate(words[words.index(option) + 1], env)


def test_compose_pool_profile():
    """The pool's instances: profile `pool`, each its own Stasis app name and port, the same
    list of names, everything else as the one app; node a's (ETIQUETTE_NODE=a)."""
    from ari_app.sandbox.pool import PREFIX

    services = _compose()["services"]
    pool = _profile(services, "pool")
    assert set(pool) == {"app-pool-1", "app-pool-2"}
    apps = {s["environment"]["ETIQUETTE_ARI_APP"] for s in pool.values()}
    assert apps == {"etiquette-pool-1", "etiquette-pool-2"}
    for service in pool.values():
        env = service["environment"]
        assert set(env["ETIQUETTE_POOL_APPS"].split(",")) == apps
        assert env["ETIQUETTE_ARI_PASSWORD"] == services["app"]["environment"]["ETIQUETTE_ARI_PASSWORD"]
        assert env["ETIQUETTE_ARI_URL"] == services["app"]["environment"]["ETIQUETTE_ARI_URL"]
        assert env["ETIQUETTE_NODE"] == "a" and env["ETIQUETTE_ARI_APP"].startswith(PREFIX)
        assert service["network_mode"] == "host" and service["volumes"] == services["app"]["volumes"]
        assert set(service["depends_on"]) == {"asterisk", "redis"}
    assert len({s["environment"]["ETIQUETTE_HTTP_PORT"] for s in pool.values()}) == 2
    assert "profiles" not in services["app"]  # the default stack is unchanged
    assert "ETIQUETTE_NODE" not in services["app"]["environment"]
    assert "PREFIX = \"etiquette-pool-\"" in (REPO / "ari_app/sandbox/pool.py").read_text()
    assert re.search(r"(?m)^ETIQUETTE_POOL = etiquette-pool-$",
                     (REPO / "dialplan/extensions_etiquette.conf").read_text())


def test_compose_redis_alone_on_loopback_of_the_hosts_network():
    """The one Redis, as before but on the host's network (so that a failover's "replicaof
    127.0.0.1 <port>" means the host): bound to loopback, and writing with no replica."""
    redis = _compose()["services"]["redis"]
    env = _env_example()
    assert redis["network_mode"] == "host" and "ports" not in redis
    assert _command_option(redis, "--bind", env) == "127.0.0.1"
    assert _command_option(redis, "--port", env) == env["REDIS_PORT"] == "6379"
    assert redis["command"][redis["command"].index("--masterauth") + 1].startswith("${REDIS_PASSWORD:?")
    assert _command_option(redis, "--min-replicas-to-write", env) == "0"  # 1 would refuse writes
    assert _command_option(redis, "--min-replicas-to-write", {}) == "0"
    assert "${REDIS_PORT:-6379}" in redis["healthcheck"]["test"][1]


def test_compose_sentinel_profile():
    """Two replicas and three sentinels on the host's network, each on its own port; the
    sentinels watch the master's port with a quorum of 2 under the app's master name; the app's
    setting names them."""
    from ari_app.sandbox.sentinel import MASTER_NAME
    from ari_app.settings import Settings

    services = _compose()["services"]
    group = _profile(services, "sentinel")
    replicas = {n: s for n, s in group.items() if s["command"][-1] == "replica"}
    sentinels = {n: s for n, s in group.items() if s["command"][-1] == "sentinel"}
    assert set(group) == set(replicas) | set(sentinels)
    assert len(replicas) == 2 and len(sentinels) == 3
    app_env = services["app"]["environment"]
    for env in (_env_example(), {}):  # as .env.example has it, and with no docker/.env at all
        filled = {**env, "REDIS_PASSWORD": "r" * 48, "ARI_PASSWORD": "a" * 48, "API_TOKEN": "t" * 48}
        master = _command_option(services["redis"], "--port", filled)
        data_ports = [master]
        for name, service in replicas.items():
            e = _resolved(service, filled)
            assert e["REDIS_MASTER_PORT"] == master, name
            data_ports.append(e["NODE_PORT"])
        sentinel_ports = []
        for name, service in sentinels.items():
            e = _resolved(service, filled)
            assert e["REDIS_MASTER_PORT"] == master and e["SENTINEL_QUORUM"] == "2", name
            assert e["REDIS_MASTER_NAME"] == _interpolate(app_env["ETIQUETTE_REDIS_MASTER"], filled)
            assert e["REDIS_MASTER_NAME"] == MASTER_NAME
            sentinel_ports.append(e["NODE_PORT"])
        for name, service in group.items():
            e = _resolved(service, filled)
            assert e["REDIS_DATA_PORTS"].split() == data_ports, name
            if name in sentinels:
                assert e["SENTINEL_PORTS"].split() == sentinel_ports, name
        ports = data_ports + sentinel_ports
        assert len(set(ports)) == 6 and all(p.isdigit() for p in ports), ports
        assert sentinel_ports == ["26379", "26380", "26381"]
    for name, service in group.items():
        assert service["network_mode"] == "host" and service["image"] == services["redis"]["image"]
        assert service["command"][:2] == ["sh", "/usr/local/bin/redis-node"]
        assert "./redis-node.sh:/usr/local/bin/redis-node:ro" in service["volumes"]
        assert service["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    data = [v for s in group.values() for v in s["volumes"] if v.endswith(":/data")]
    assert len(set(data)) == len(data) == 5 and "redis-data:/data" not in data  # each its own
    # the app: no sentinel unless REDIS_SENTINELS is set; .env.example says what to set
    assert _interpolate(app_env["ETIQUETTE_REDIS_SENTINELS"], _env_example()) == ""
    assert Settings(ari_password="x", redis_sentinels="", _env_file=None).sentinels() == []
    suggested = re.search(r"(?m)^#\s*REDIS_SENTINELS=(\S+)$", ENV_EXAMPLE.read_text()).group(1)
    assert Settings(ari_password="x", redis_sentinels=suggested, _env_file=None).sentinels() == [
        ("127.0.0.1", int(p)) for p in sentinel_ports]


def _shipped(name: str, key: str) -> str:
    text = (REPO / "config/asterisk" / name).read_text()
    return re.search(rf"(?m)^{key}\s*=\s*(\S+)$", text).group(1)


def test_compose_node_b_profile(tmp_path):
    """A second Asterisk with its own ports, RTP range, identity and recordings, and instances
    of node b on its ARI port; the entrypoint takes its settings."""
    from ari_app.sandbox.pool import PREFIX

    services = _compose()["services"]
    node_b = _profile(services, "node-b")
    asterisk, a = node_b.pop("asterisk-b"), services["asterisk"]
    assert asterisk["image"] == a["image"] and asterisk["network_mode"] == "host"
    assert "build" not in asterisk  # the asterisk service builds the image
    env = _resolved(asterisk)
    assert env["ARI_PASSWORD"] == _resolved(a)["ARI_PASSWORD"]
    assert env["ASTERISK_HTTP_PORT"] != _shipped("http.conf", "bindport") == "8088"
    assert env["ASTERISK_SIP_PORT"] != _shipped("pjsip.conf", "bind").rsplit(":", 1)[1] == "5060"
    b_rtp = range(int(env["ASTERISK_RTP_START"]), int(env["ASTERISK_RTP_END"]) + 1)
    a_rtp = range(int(_shipped("rtp.conf", "rtpstart")), int(_shipped("rtp.conf", "rtpend")) + 1)
    assert b_rtp and not set(b_rtp) & set(a_rtp)
    assert env["ASTERISK_ENTITY_ID"] and env["ASTERISK_SYSTEM_NAME"]
    assert not {"ASTERISK_ENTITY_ID", "ASTERISK_SYSTEM_NAME"} & set(a["environment"])
    recordings = [v for v in asterisk["volumes"] if v.endswith(":/var/spool/asterisk/recording")]
    assert recordings and recordings[0] not in a["volumes"]
    result = _run_entrypoint(tmp_path, {k: v for k, v in env.items() if k != "ARI_USER"}, "true")
    assert result.returncode == 0, result.stderr
    assert f"bindport = {env['ASTERISK_HTTP_PORT']}" in (tmp_path / "etc/http.conf").read_text()
    assert set(node_b) == {"app-pool-b-1", "app-pool-b-2"}
    apps = {s["environment"]["ETIQUETTE_ARI_APP"] for s in node_b.values()}
    for name, service in node_b.items():
        e = _resolved(service)
        assert e["ETIQUETTE_ARI_URL"] == f"http://127.0.0.1:{env['ASTERISK_HTTP_PORT']}", name
        assert e["ETIQUETTE_NODE"] == "b" and e["ETIQUETTE_ARI_APP"].startswith(PREFIX), name
        assert set(e["ETIQUETTE_POOL_APPS"].split(",")) == apps, name
        assert set(service["depends_on"]) == {"asterisk-b", "redis"}, name
        assert service["network_mode"] == "host" and service["volumes"] == services["app"]["volumes"]
        assert e["ETIQUETTE_REDIS_URL"] == _resolved(services["app"])["ETIQUETTE_REDIS_URL"]


def test_compose_app_names_and_ports_are_unique():
    """Every app name, instance id and loopback port once, whichever profiles are on."""
    from ari_app.settings import Settings

    services = _compose()["services"]
    instances = [_resolved(s) for s in services.values()
                 if "ETIQUETTE_ARI_APP" in (s.get("environment") or {})]
    assert len(instances) == 4
    env = _resolved(services["app"])  # the one app: the settings' default app name
    assert "ETIQUETTE_ARI_APP" not in env
    names = [e["ETIQUETTE_ARI_APP"] for e in instances] + [Settings.model_fields["ari_app"].default]
    assert len(names) == len(set(names)) == 5, names
    ids = [e["ETIQUETTE_INSTANCE_ID"] for e in instances]
    assert len(ids) == len(set(ids)) == 4, ids
    http = [e["ETIQUETTE_HTTP_PORT"] for e in instances] + [env["ETIQUETTE_HTTP_PORT"]]
    assert len(http) == len(set(http)) == 5, http
    redis = [_command_option(services["redis"], "--port", _env_example())] + [
        _resolved(s)["NODE_PORT"] for s in _profile(services, "sentinel").values()]
    ari = [_shipped("http.conf", "bindport"), _resolved(services["asterisk-b"])["ASTERISK_HTTP_PORT"]]
    intake = [_resolved(services["intake"])["ETIQUETTE_INTAKE_PORT"]]
    tcp = http + redis + ari + intake
    assert len(tcp) == len(set(tcp)) == 14, tcp


def test_compose_profiles_commands_are_written_down():
    text = COMPOSE.read_text()
    for profiles in ("--profile pool", "--profile pool --profile sentinel",
                     "--profile pool --profile sentinel --profile node-b"):
        assert f"docker compose -f docker/compose.yaml {profiles} up -d --build --scale app=0" in text
    assert "docker compose -f docker/compose.yaml --profile intake up -d --build" in text
    assert "Sentinel is not in this file" not in text
    services = _compose()["services"]
    assert {p for s in services.values() for p in s.get("profiles") or []} == {
        "pool", "sentinel", "node-b", "intake"}
