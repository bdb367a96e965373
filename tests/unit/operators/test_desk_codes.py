"""The codes an operator dials from the desk phone (ari_app/operators/feature_codes.py), and the
prompt the desk adapter (operators/stasis.py) answers each outcome with: every one in the
catalog, en and ru; storage away is said, a bug is not hidden as one."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_errors

from ari_app.operators import stasis
from ari_app.operators.feature_codes import DeskCodes, desk_request
from ari_app.operators.machine import InvalidTransition, LogIn, LogOut, Pause, Unpause
from ari_app.operators.service import NoSuchOperator
from ari_app.prompts.catalog import load_catalog

CODES = DeskCodes(reasons=("break", "after-call-work", "meeting"))


@pytest.mark.parametrize(("dialed", "event"), [
    ("*41", LogIn(7.0, "feature-code")),
    ("*42", LogOut(7.0, "feature-code")),
    ("*43", Pause(7.0, None, "feature-code")),
    ("*431", Pause(7.0, "break", "feature-code")),
    ("*433", Pause(7.0, "meeting", "feature-code")),
    ("*44", Unpause(7.0, "feature-code")),
])
def test_given_default_codes_when_dialed_then_the_operator_event(dialed, event):
    assert desk_request(CODES, dialed, 7.0) == event


@pytest.mark.parametrize("dialed", ["*434", "*439", "*430", "*43#", "*4311", "*45", "*7", "", "41"])
def test_given_unknown_code_or_reason_digit_when_dialed_then_none(dialed):
    assert desk_request(CODES, dialed, 7.0) is None


def test_given_codes_of_the_policy_when_dialed_then_those_count_not_the_defaults():
    codes = DeskCodes(login="*51", logout="*52", pause="*53", unpause="*54", reasons=("lunch",))

    assert desk_request(codes, "*531", 1.0) == Pause(1.0, "lunch", "feature-code")
    assert desk_request(codes, "*41", 1.0) is None


@pytest.mark.parametrize(("name", "endpoint"), [
    ("PJSIP/operator1-0000002a", "PJSIP/operator1"),
    ("PJSIP/sales-desk-3-00000001", "PJSIP/sales-desk-3"),
    ("SIP/200-0a1b2c3d", "SIP/200"),
])
def test_given_channel_name_when_endpoint_of_then_who_dialled(name, endpoint):
    assert stasis.endpoint_of(name) == endpoint


def test_given_desk_adapter_prompts_when_catalog_read_then_each_in_en_and_ru():
    catalog = load_catalog()
    prompts = {*stasis.DONE.values(), *stasis.REFUSED.values(), stasis.UNKNOWN,
               stasis.NOT_SAVED, "operator-not-logged-in"}

    for prompt in prompts:
        assert catalog.text(prompt, "en") and catalog.text(prompt, "ru"), prompt


class Operators:
    """Stands in for OperatorService.change: raises what it is told to."""

    def __init__(self, fails_with: BaseException | None = None) -> None:
        self.fails_with, self.changes = fails_with, []

    async def change(self, name: str, event: object) -> dict:
        if self.fails_with is not None:
            raise self.fails_with
        self.changes.append((name, event))
        return {}


def adapter(operators: Operators) -> stasis.OperatorStasis:
    return stasis.OperatorStasis(None, operators, CODES, app="ari-etiquette",  # type: ignore[arg-type]
                                 clock=lambda: 7.0)


@pytest.mark.parametrize(("dialed", "fails_with", "prompt"), [
    ("*41", None, "operator-logged-in"),
    ("*432", None, "operator-paused"),
    ("*44", None, "operator-unpaused"),
    ("*439", None, "operator-code-unknown"),
    ("*41", NoSuchOperator("no operator"), "operator-code-unknown"),
    ("*41", InvalidTransition("paused"), "operator-still-paused"),
    ("*43", InvalidTransition("not logged in"), "operator-not-logged-in"),
    ("*42", redis_errors.ConnectionError("Connection refused"), "operator-state-not-saved"),
])
async def test_given_desk_code_when_applied_then_the_prompt_that_says_what_happened(
        dialed, fails_with, prompt):
    operators = Operators(fails_with)

    assert await adapter(operators)._apply("PJSIP/operator1", dialed) == prompt
    if fails_with is None and prompt != "operator-code-unknown":
        assert operators.changes == [("PJSIP/operator1", desk_request(CODES, dialed, 7.0))]


async def test_given_a_bug_when_applied_then_raised_not_told_as_storage():
    with pytest.raises(ZeroDivisionError):
        await adapter(Operators(ZeroDivisionError()))._apply("PJSIP/operator1", "*41")
