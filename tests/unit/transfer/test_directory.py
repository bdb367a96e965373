"""Directory: entries from the policy, found by what an operator keys or a phone dials, and
whether they take a transfer now. The clock is injected: no real time is read."""

import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ari_app.policy import Policy, load_policy
from ari_app.transfer.directory import Directory, name_prompt
from ari_app.transfer.machine import TransferTarget

BILLING = {"id": "billing", "kind": "department", "name": "Billing", "endpoint": "PJSIP/billing",
           "direct_number": "+12125554100", "code": "21"}
ANNA = {"id": "anna-petrova", "kind": "person", "name": "Anna Petrova", "endpoint": "PJSIP/anna",
        "direct_number": "4955550123", "code": "22", "name_prompt": "anna-petrova-name",
        "languages": ["ru"], "hours": "09:00-18:00"}
SALES = {"id": "sales", "kind": "department", "name": "Sales",
         "endpoint": "Local/2200@transfers", "direct_number": "+12125554200"}


def policy(*entries: dict, **sections) -> Policy:
    return Policy.model_validate({
        "company": "Example Corp",
        "languages": ["en", "ru"],
        "business_hours": {"time_zone": "Europe/Moscow"},  # UTC+3 all year
        "directory": list(entries or (BILLING, ANNA, SALES)),
        **sections,
    })


def moscow(hour: int, minute: int = 0) -> float:
    """An epoch on Monday 3 June 2024 at this Moscow time."""
    return datetime(2024, 6, 3, hour, minute, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()


def directory(*entries: dict, at: float = moscow(10), **sections) -> Directory:
    return Directory(policy(*entries, **sections), clock=lambda: at)


# --- find -------------------------------------------------------------------------------------
@pytest.mark.parametrize("wanted, found", [
    ("billing", "billing"),            # id
    ("anna-petrova", "anna-petrova"),
    ("21", "billing"),                 # the code keyed after the transfer code
    ("22", "anna-petrova"),
    ("+12125554100", "billing"),       # direct number as written
    ("12125554100", "billing"),        # ... without the +
    ("4955550123", "anna-petrova"),    # a number written without + in the policy
    ("+4955550123", "anna-petrova"),   # ... dialled with one
    ("anna", "anna-petrova"),          # endpoint resource: PJSIP/anna
    ("2200", "sales"),                 # endpoint resource: Local/2200@transfers
    ("  21 ", "billing"),              # surrounding blanks
], ids=lambda v: v if isinstance(v, str) and v.strip() else None)
def test_given_directory_when_find_by_id_code_number_or_endpoint_then_entry(wanted, found):
    entry = directory().find(wanted)

    assert entry is not None and entry.id == found


@pytest.mark.parametrize("wanted", ["99", "marketing", "+12125559999", "PJSIP", "transfers",
                                    "Local/2200@transfers"])
def test_given_directory_when_find_unknown_then_none(wanted):
    assert directory().find(wanted) is None


@pytest.mark.parametrize("wanted", ["", "   ", "+"], ids=["empty", "blanks", "plus-only"])
def test_given_directory_when_find_nothing_then_none(wanted):
    assert directory().find(wanted) is None


def test_given_entry_without_code_when_find_empty_then_none():
    # an entry with no code must not match an empty or missing code
    assert directory(SALES).find("") is None


def test_given_empty_directory_when_find_then_none():
    assert Directory(Policy.model_validate({"company": "Example Corp"})).find("21") is None


def test_given_found_entry_then_languages_filled_from_the_policy():
    entry = directory().find("billing")

    assert entry.languages == ("en", "ru")


# --- unavailable --------------------------------------------------------------------------------
def test_given_entry_for_every_language_and_no_hours_when_asked_then_available():
    found = directory(at=moscow(3))

    assert found.unavailable(found.find("billing"), "en") == ""
    assert found.unavailable(found.find("billing"), "ru") == ""


def test_given_entry_within_its_hours_and_language_when_asked_then_available():
    found = directory(at=moscow(10))

    assert found.unavailable(found.find("anna-petrova"), "ru") == ""


def test_given_entry_not_taking_the_callers_language_when_asked_then_why():
    found = directory(at=moscow(10))

    assert found.unavailable(found.find("anna-petrova"), "en") == (
        "anna-petrova does not take calls in 'en'")


@pytest.mark.parametrize("hour, minute", [(8, 59), (18, 0), (23, 30), (0, 0)],
                         ids=["before", "at-end", "evening", "midnight"])
def test_given_entry_outside_its_hours_when_asked_then_why_with_window_and_zone(hour, minute):
    found = directory(at=moscow(hour, minute))

    assert found.unavailable(found.find("anna-petrova"), "ru") == (
        "anna-petrova takes transfers 09:00-18:00 (Europe/Moscow)")


@pytest.mark.parametrize("hour, minute", [(9, 0), (17, 59)], ids=["at-start", "last-minute"])
def test_given_entry_at_the_edges_of_its_hours_when_asked_then_available(hour, minute):
    found = directory(at=moscow(hour, minute))

    assert found.unavailable(found.find("anna-petrova"), "ru") == ""


def test_given_hours_when_asked_then_read_in_the_business_hours_zone_not_utc():
    # 07:00 UTC is 10:00 in Moscow: open there, though 07:00 is outside 09:00-18:00
    found = directory(at=datetime(2024, 6, 3, 7, 0, tzinfo=timezone.utc).timestamp())

    assert found.unavailable(found.find("anna-petrova"), "ru") == ""


def test_given_wrong_language_and_outside_hours_when_asked_then_language_reported():
    found = directory(at=moscow(22))

    assert found.unavailable(found.find("anna-petrova"), "en") == (
        "anna-petrova does not take calls in 'en'")


def test_given_clock_moves_when_asked_again_then_read_each_time():
    now = [moscow(10)]
    found = Directory(policy(), clock=lambda: now[0])
    anna = found.find("anna-petrova")
    assert found.unavailable(anna, "ru") == ""

    now[0] = moscow(19)

    assert found.unavailable(anna, "ru") != ""


def test_given_no_clock_when_directory_made_then_wall_clock():
    assert Directory(policy()).clock is time.time


# --- target, supervisor ---------------------------------------------------------------------------
def test_given_entry_without_name_prompt_when_target_then_rendered_name_prompt():
    found = directory()

    assert found.target(found.find("billing")) == TransferTarget(
        "billing", "PJSIP/billing", "directory-billing", "+12125554100")


def test_given_entry_with_name_prompt_when_target_then_that_prompt():
    found = directory()

    assert found.target(found.find("anna-petrova")) == TransferTarget(
        "anna-petrova", "PJSIP/anna", "anna-petrova-name", "4955550123")


def test_given_supervisor_direct_number_when_supervisor_then_target_with_it():
    found = directory(supervisor={"direct_number": "+12125550199"})

    assert found.supervisor("PJSIP/supervisor1") == TransferTarget(
        "supervisor", "PJSIP/supervisor1", "supervisor-name", "+12125550199")


def test_given_no_supervisor_direct_number_when_supervisor_then_no_number():
    assert directory().supervisor("PJSIP/supervisor1") == TransferTarget(
        "supervisor", "PJSIP/supervisor1", "supervisor-name", "")


# --- name prompts -------------------------------------------------------------------------------
def test_given_entries_when_rendered_names_then_only_those_without_a_name_prompt():
    assert directory().rendered_names() == {"directory-billing": "Billing",
                                            "directory-sales": "Sales"}


def test_given_empty_directory_when_rendered_names_then_none():
    assert Directory(Policy.model_validate({"company": "Example Corp"})).rendered_names() == {}


def test_given_entries_when_name_prompt_then_policy_prompt_or_directory_id():
    found = directory()

    assert name_prompt(found.find("billing")) == "directory-billing"
    assert name_prompt(found.find("anna-petrova")) == "anna-petrova-name"


# --- from a policy file -------------------------------------------------------------------------
POLICY_FILE = """
company = "Example Corp"
languages = ["en", "ru"]

[business_hours]
time_zone = "America/New_York"

[supervisor]
direct_number = "+12125550199"

[[directory]]
id = "billing"
kind = "department"
name = "Billing"
endpoint = "PJSIP/billing"
direct_number = "+12125554100"
code = "21"
hours = "08:00-17:00"
languages = ["en"]
"""


def test_given_policy_file_when_directory_asked_then_entry_found_and_checked(tmp_path: Path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_FILE, encoding="utf-8")
    loaded = load_policy(path, test_time_ranges=True)
    noon_in_new_york = datetime(2024, 1, 15, 17, 0, tzinfo=timezone.utc).timestamp()  # EST
    found = Directory(loaded, clock=lambda: noon_in_new_york)

    billing = found.find("+12125554100")

    assert billing is not None and billing.id == "billing"
    assert found.unavailable(billing, "en") == ""
    assert found.unavailable(billing, "ru") == "billing does not take calls in 'ru'"
    assert found.supervisor("PJSIP/sup").direct_number == "+12125550199"
    assert found.rendered_names() == {"directory-billing": "Billing"}


def test_given_policy_file_when_after_hours_in_its_zone_then_unavailable(tmp_path: Path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_FILE, encoding="utf-8")
    evening_in_new_york = datetime(2024, 1, 15, 23, 0, tzinfo=timezone.utc).timestamp()  # 18:00
    found = Directory(load_policy(path, test_time_ranges=True), clock=lambda: evening_in_new_york)

    assert found.unavailable(found.find("21"), "en") == (
        "billing takes transfers 08:00-17:00 (America/New_York)")
