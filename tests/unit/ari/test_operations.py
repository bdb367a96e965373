"""The ARI operation table, and AriClient.call's argument checks (which run before any I/O)."""

import inspect
import re

import pytest

from ari_app.ari import operations as ops
from ari_app.ari.client import AriClient
from ari_app.ari.operations import ALL_OPERATIONS, Op

OPS = sorted(ALL_OPERATIONS.items())
OP_IDS = [name for name, _ in OPS]
OPS_WITH_PATH_PARAMS = [(n, op) for n, op in OPS if op.path_params]
PARAM_NAME = re.compile(r"^[a-z][A-Za-z0-9]*$")  # ARI's camelCase


@pytest.fixture
async def client():
    ari = AriClient("http://127.0.0.1:9", "user", "secret")  # discard port: never reached
    try:
        yield ari
    finally:
        await ari.close()  # no-op unless a session was created


def args_for(op: Op, **extra) -> dict:
    return {**{name: f"v-{name}" for name in op.path_params}, **extra}


# --- the table ---------------------------------------------------------------------------------
def test_given_operations_module_when_collected_then_every_op_is_in_the_table():
    declared = {n: v for n, v in vars(ops).items() if isinstance(v, Op)}
    assert ALL_OPERATIONS == declared
    assert len(ALL_OPERATIONS) >= 30
    assert len({(op.method, op.path) for op in ALL_OPERATIONS.values()}) == len(ALL_OPERATIONS)


@pytest.mark.parametrize("name, op", OPS, ids=OP_IDS)
def test_given_op_when_path_inspected_then_well_formed(name, op):
    assert op.method in {"GET", "POST", "PUT", "DELETE"}
    assert op.path.startswith("/") and not op.path.endswith("/")
    assert "//" not in op.path and " " not in op.path
    # every brace belongs to a {param}: nothing unbalanced or empty is left once they are removed
    assert not re.search(r"[{}]", re.sub(r"{\w+}", "", op.path))
    # each {param} is a whole path segment
    for segment in op.path.strip("/").split("/"):
        assert "{" not in segment or re.fullmatch(r"{\w+}", segment), segment
    assert len(set(op.path_params)) == len(op.path_params)
    assert all(PARAM_NAME.match(p) for p in op.path_params)


@pytest.mark.parametrize("name, op", OPS, ids=OP_IDS)
def test_given_op_when_params_inspected_then_unique_and_disjoint(name, op):
    for group in (op.query, op.body):
        assert isinstance(group, tuple)
        assert len(set(group)) == len(group)
        assert all(PARAM_NAME.match(p) for p in group)
    assert not set(op.query) & set(op.body)
    assert not set(op.path_params) & (set(op.query) | set(op.body))


def test_given_known_paths_when_path_params_parsed_then_in_order():
    assert ops.ENDPOINT.path_params == ("tech", "resource")
    assert ops.ADD_TO_BRIDGE.path_params == ("bridgeId",)
    assert ops.SUBSCRIBE.path_params == ("applicationName",)
    assert ops.STOP_RECORDING.path_params == ("recordingName",)
    assert ops.PING.path_params == ()


@pytest.mark.parametrize("name", ["DIAL", "ORIGINATE"])
def test_given_op_param_when_compared_with_call_signature_then_not_shadowed(name):
    op = ALL_OPERATIONS[name]
    reserved = {p.name for p in inspect.signature(AriClient.call).parameters.values()
                if p.kind is not inspect.Parameter.VAR_KEYWORD} - {"self"}
    assert not reserved & (set(op.query) | set(op.body) | set(op.path_params))


@pytest.mark.parametrize("name, op", [(n, o) for n, o in OPS if n not in {"DIAL", "ORIGINATE"}],
                         ids=[n for n in OP_IDS if n not in {"DIAL", "ORIGINATE"}])
def test_given_other_ops_when_compared_with_call_signature_then_not_shadowed(name, op):
    reserved = {p.name for p in inspect.signature(AriClient.call).parameters.values()
                if p.kind is not inspect.Parameter.VAR_KEYWORD} - {"self"}
    assert not reserved & (set(op.query) | set(op.body) | set(op.path_params))


# --- AriClient.call argument handling -----------------------------------------------------------
@pytest.mark.parametrize("name, op", OPS_WITH_PATH_PARAMS, ids=[n for n, _ in OPS_WITH_PATH_PARAMS])
async def test_given_missing_path_param_when_call_then_type_error_before_io(client, name, op):
    for missing in op.path_params:
        params = args_for(op)
        del params[missing]
        with pytest.raises(TypeError, match=f"missing {missing}"):
            await client.call(op, **params)
    assert client._session is None  # no session, so no connection was attempted


@pytest.mark.parametrize("name, op", OPS, ids=OP_IDS)
async def test_given_unknown_param_when_call_then_type_error_before_io(client, name, op):
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['bogusParam'\]"):
        await client.call(op, **args_for(op, bogusParam="x"))
    assert client._session is None


async def test_given_query_param_in_wrong_case_when_call_then_type_error(client):
    with pytest.raises(TypeError, match="channel_id"):
        await client.call(ops.ANSWER, channelId="c1", channel_id="c1")
    with pytest.raises(TypeError, match="missing channelId"):
        await client.call(ops.ANSWER, channel_id="c1")
    assert client._session is None


async def test_given_missing_and_unknown_params_when_call_then_missing_reported_first(client):
    with pytest.raises(TypeError, match="missing tech"):
        await client.call(ops.ENDPOINT, resource="1001", bogus=1)
    assert client._session is None


async def test_given_named_helper_with_missing_argument_when_called_then_type_error(client):
    with pytest.raises(TypeError):
        await client.answer()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await client.endpoint("PJSIP")  # type: ignore[call-arg]
    assert client._session is None
