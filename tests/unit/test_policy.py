from datetime import datetime, time, timezone
from pathlib import Path

import pytest

from ari_app.policy import (
    BusinessHours,
    SupervisorPolicy,
    CallbackPolicy,
    FeatureCodes,
    HoldPolicy,
    NoSuchQueue,
    Policy,
    PolicyError,
    QuietHours,
    TimeWindow,
    TransferPolicy,
    load_policy,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "policy.example.toml"

DIRECTORY_ENTRY = """
[[directory]]
id = "{id}"
kind = "department"
name = "Billing"
endpoint = "{endpoint}"
direct_number = "+12125550100"
"""


def write_policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(body, encoding="utf-8")
    return path


def problems_of(path: Path, *, test_time_ranges: bool = False) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(path, test_time_ranges=test_time_ranges)
    return caught.value.problems


def entry(id: str = "billing", endpoint: str = "PJSIP/billing") -> str:
    return DIRECTORY_ENTRY.format(id=id, endpoint=endpoint)


# --- the shipped example ---------------------------------------------------------


def test_given_example_file_when_load_then_shipped_defaults_and_examples():
    policy = load_policy(EXAMPLE)

    assert policy.company == "Example Corp"
    assert policy.languages == ("en", "ru")
    assert policy.default_language == "en"
    assert policy.operators.endpoints == ("PJSIP/operator1", "PJSIP/operator2")
    assert policy.operators.ring_timeout == 15
    assert policy.recording.enabled is True
    assert policy.hold == HoldPolicy()
    assert policy.hold.check_in_interval == 25
    assert policy.hold.fallback_after == 150
    assert policy.feature_codes == FeatureCodes()
    assert policy.transfer == TransferPolicy()
    assert policy.business_hours == BusinessHours()
    assert policy.quiet_hours == QuietHours()
    assert policy.callback == CallbackPolicy()
    assert policy.supervisor.endpoints == ("PJSIP/supervisor1",)
    assert policy.supervisor.callback_window == 60
    assert policy.supervisor.caller_key_allowed is False


def test_given_example_file_when_load_then_directory_has_billing_and_anna():
    policy = load_policy(EXAMPLE)

    billing = policy.directory_entry("billing")
    anna = policy.directory_entry("anna-petrova")
    assert (billing.kind, billing.endpoint, billing.direct_number) == (
        "department",
        "PJSIP/billing",
        "+12125550100",
    )
    assert (anna.kind, anna.name, anna.endpoint, anna.direct_number) == (
        "person",
        "Anna Petrova",
        "PJSIP/anna",
        "+12125550101",
    )


def test_given_only_company_when_load_then_every_section_has_its_default(tmp_path):
    policy = load_policy(write_policy(tmp_path, 'company = "Example Corp"\n'))

    assert policy == Policy(company="Example Corp")
    assert policy.hold.reasons == {
        "lookup": "hold-reason-lookup",
        "consult": "hold-reason-consult",
        "system": "hold-reason-system",
    }
    assert policy.business_hours.hours_on(0) == TimeWindow(time(9), time(18))
    assert policy.business_hours.hours_on(6) is None


# --- ranges ----------------------------------------------------------------------


def test_given_check_in_45_when_load_then_error_names_key_and_range(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[hold]\ncheck_in_interval = 45\n')

    assert problems_of(path) == [
        f"{path}: hold.check_in_interval = 45 is outside the allowed range 20-30 (seconds)"
    ]


RANGES = [
    ("operators", "ring_timeout", "5-60 (seconds)", 4, 61),
    ("operators", "connecting_prompt_after", "5-60 (seconds), or 0 (off)", 4, 61),
    ("operators", "connecting_prompt_every", "20-30 (seconds), or 0 (off)", 19, 31),
    ("hold", "check_in_interval", "20-30 (seconds)", 19, 31),
    ("hold", "fallback_after", "120-180 (seconds)", 119, 181),
    ("hold", "fallback_choice_timeout", "3-20 (seconds)", 2, 21),
    ("hold", "max_holds_per_call", "1-5", 0, 6),
    ("hold", "menu_repeat_after", "2-5 (seconds)", 1, 6),
    ("transfer", "ring_timeout", "10-60 (seconds)", 9, 61),
    ("transfer", "choice_timeout", "3-20 (seconds)", 2, 21),
    ("transfer", "accept_timeout", "5-30 (seconds)", 4, 31),
    ("transfer", "menu_repeat_after", "2-5 (seconds)", 1, 6),
    ("callback", "max_attempts", "1-10", 0, 11),
    ("callback", "retry_backoff", "60-3600 (seconds)", 59, 3601),
    ("callback", "requests_per_ip_per_hour", "1-1000", 0, 1001),
    ("callback", "requests_per_server_per_hour", "1-100000", 0, 100001),
    ("supervisor", "callback_window", "15-1440 (minutes)", 14, 1441),
    ("etiquette_log", "retention_days", "1-3650 (days)", 0, 3651),
    ("operators", "wrap_up", "0-300 (seconds)", -1, 301),
]


@pytest.mark.parametrize(("section", "key", "allowed", "below", "above"), RANGES)
def test_given_value_outside_range_when_load_then_error_names_key_and_range(
    tmp_path, section, key, allowed, below, above
):
    for value in (below, above):
        path = write_policy(tmp_path, f'company = "X"\n[{section}]\n{key} = {value}\n')

        assert problems_of(path) == [
            f"{path}: {section}.{key} = {value} is outside the allowed range {allowed}"
        ]


@pytest.mark.parametrize(("section", "key", "allowed", "below", "above"), RANGES)
def test_given_range_bounds_when_load_then_accepted(tmp_path, section, key, allowed, below, above):
    for value in (below + 1, above - 1):
        body = f'company = "X"\n[{section}]\n{key} = {value}\n'
        if (section, key) == ("hold", "check_in_interval"):
            body += "fallback_after = 150\n"
        policy = load_policy(write_policy(tmp_path, body))

        assert getattr(getattr(policy, section), key) == value


@pytest.mark.parametrize("section", ["hold", "transfer"])
def test_given_menu_repeat_after_in_seconds_with_a_fraction_when_load_then_kept(tmp_path, section):
    policy = load_policy(write_policy(tmp_path, f'company = "X"\n[{section}]\nmenu_repeat_after = 3.5\n'))

    assert getattr(policy, section).menu_repeat_after == 3.5


def test_given_menu_repeat_after_as_text_when_load_then_error_names_key(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[hold]\nmenu_repeat_after = "4"\n')

    assert problems_of(path) == [f'{path}: hold.menu_repeat_after = "4" should be a valid number']


def test_given_menu_repeat_after_6_when_load_with_test_time_ranges_then_still_rejected(tmp_path):
    # more than 5 s of silence is never allowed, not even in tests
    path = write_policy(tmp_path, 'company = "X"\n[transfer]\nmenu_repeat_after = 6\n')

    with pytest.raises(PolicyError):
        load_policy(path, test_time_ranges=True)


# --- test_time_ranges --------------------------------------------------------------

SHORT_HOLD = 'company = "X"\n[hold]\ncheck_in_interval = 2\nfallback_after = 6\n'


def test_given_2s_check_in_when_load_by_default_then_rejected(tmp_path):
    path = write_policy(tmp_path, SHORT_HOLD)

    assert problems_of(path) == [
        f"{path}: hold.check_in_interval = 2 is outside the allowed range 20-30 (seconds)",
        f"{path}: hold.fallback_after = 6 is outside the allowed range 120-180 (seconds)",
    ]


def test_given_2s_check_in_when_load_with_test_time_ranges_then_loaded(tmp_path):
    policy = load_policy(write_policy(tmp_path, SHORT_HOLD), test_time_ranges=True)

    assert policy.hold.check_in_interval == 2
    assert policy.hold.fallback_after == 6


def test_given_1s_ring_timeouts_when_load_with_test_time_ranges_then_loaded(tmp_path):
    body = 'company = "X"\n[operators]\nring_timeout = 1\n[transfer]\nring_timeout = 1\n'

    policy = load_policy(write_policy(tmp_path, body), test_time_ranges=True)

    assert (policy.operators.ring_timeout, policy.transfer.ring_timeout) == (1, 1)


def test_given_connecting_prompt_after_when_load_then_0_is_off_and_tests_may_shrink_it(tmp_path):
    assert load_policy(EXAMPLE).operators.connecting_prompt_after == 10
    off = write_policy(tmp_path, 'company = "X"\n[operators]\nconnecting_prompt_after = 0\n')
    assert load_policy(off).operators.connecting_prompt_after == 0
    short = write_policy(tmp_path, 'company = "X"\n[operators]\nconnecting_prompt_after = 1\n')
    assert load_policy(short, test_time_ranges=True).operators.connecting_prompt_after == 1
    assert problems_of(short) == [f"{short}: operators.connecting_prompt_after = 1 is outside "
                                  "the allowed range 5-60 (seconds), or 0 (off)"]


def test_given_connecting_prompt_every_when_load_then_25_shipped_0_is_the_first_word_only(tmp_path):
    assert load_policy(EXAMPLE).operators.connecting_prompt_every == 25
    plain = write_policy(tmp_path, 'company = "X"\n')
    assert load_policy(plain).operators.connecting_prompt_every == 25
    off = write_policy(tmp_path, 'company = "X"\n[operators]\nconnecting_prompt_every = 0\n')
    assert load_policy(off).operators.connecting_prompt_every == 0


def test_given_1s_transfer_timeouts_when_load_with_test_time_ranges_then_loaded(tmp_path):
    body = 'company = "X"\n[transfer]\nchoice_timeout = 1\naccept_timeout = 1\n'

    policy = load_policy(write_policy(tmp_path, body), test_time_ranges=True)

    assert (policy.transfer.choice_timeout, policy.transfer.accept_timeout) == (1, 1)


def test_given_1s_transfer_timeouts_when_load_by_default_then_rejected(tmp_path):
    body = 'company = "X"\n[transfer]\nchoice_timeout = 1\naccept_timeout = 1\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path) == [
        f"{path}: transfer.choice_timeout = 1 is outside the allowed range 3-20 (seconds)",
        f"{path}: transfer.accept_timeout = 1 is outside the allowed range 5-30 (seconds)",
    ]


def test_given_test_time_ranges_when_transfer_timeouts_zero_then_error_reports_widened_range(
    tmp_path,
):
    body = 'company = "X"\n[transfer]\nchoice_timeout = 0\naccept_timeout = 31\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path, test_time_ranges=True) == [
        f"{path}: transfer.choice_timeout = 0 is outside the allowed range 1-20 (seconds)",
        f"{path}: transfer.accept_timeout = 31 is outside the allowed range 1-30 (seconds)",
    ]


def test_given_test_time_ranges_when_value_below_widened_range_then_error_reports_widened_range(
    tmp_path,
):
    body = 'company = "X"\n[hold]\ncheck_in_interval = 0\nfallback_after = 2\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path, test_time_ranges=True) == [
        f"{path}: hold.check_in_interval = 0 is outside the allowed range 1-30 (seconds)",
        f"{path}: hold.fallback_after = 2 is outside the allowed range 3-180 (seconds)",
    ]


def test_given_test_time_ranges_when_non_widened_key_out_of_range_then_still_rejected(tmp_path):
    body = 'company = "X"\n[hold]\nmax_holds_per_call = 0\ncheck_in_interval = 31\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path, test_time_ranges=True) == [
        f"{path}: hold.check_in_interval = 31 is outside the allowed range 1-30 (seconds)",
        f"{path}: hold.max_holds_per_call = 0 is outside the allowed range 1-5",
    ]


# --- cross-field rules ---------------------------------------------------------------


def test_given_fallback_not_after_check_in_when_load_then_error_names_both_keys(tmp_path):
    body = 'company = "X"\n[hold]\ncheck_in_interval = 5\nfallback_after = 5\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path, test_time_ranges=True) == [
        f"{path}: hold.fallback_after = 5 must be greater than hold.check_in_interval (5)"
    ]


def test_given_default_language_not_offered_when_load_then_error(tmp_path):
    body = 'company = "X"\nlanguages = ["en"]\ndefault_language = "ru"\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path) == [f'{path}: default_language = "ru" must be one of languages ["en"]']


def test_given_duplicate_feature_codes_when_load_then_error_names_both_keys(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[feature_codes]\nresume = "*7"\n')

    assert problems_of(path) == [
        f'{path}: feature_codes.resume = "*7" is already used by feature_codes.hold'
    ]


def test_given_feature_code_prefix_of_another_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[feature_codes]\nsupervisor = "*71"\n')

    (problem,) = problems_of(path)
    assert problem.startswith(f'{path}: feature_codes.supervisor = "*71" clashes with feature_codes.hold')


def test_given_bad_dtmf_when_load_then_error_names_allowed_characters(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[feature_codes]\nhold = "*7A"\n')

    assert problems_of(path) == [
        f'{path}: feature_codes.hold = "*7A" is not valid; expected 1-4 characters from 0-9, * and #'
    ]


# --- the operators' pool ---------------------------------------------------------------


def test_given_no_operators_section_when_load_then_no_login_needed_5s_wrap_up_three_reasons():
    operators = Policy(company="X").operators

    assert (operators.login_required, operators.wrap_up) == (False, 5)
    assert operators.pause_reasons == ("break", "after-call-work", "meeting")
    codes = Policy(company="X").feature_codes
    assert (codes.login, codes.logout, codes.pause, codes.unpause) == ("*41", "*42", "*43", "*44")


@pytest.mark.parametrize(("reasons", "problem"), [
    ('["break", "missed"]', 'must not include "missed"'),
    ("[]", "must name 1-9 reasons"),
    ('["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]', "must name 1-9 reasons"),
    ('["break", "break"]', 'lists "break" twice'),
])
def test_given_bad_pause_reasons_when_load_then_error_names_the_key(tmp_path, reasons, problem):
    path = write_policy(tmp_path, f'company = "X"\n[operators]\npause_reasons = {reasons}\n')

    (found,) = problems_of(path)
    assert found.startswith(f"{path}: operators.pause_reasons") and problem in found


def test_given_bad_pause_reason_name_when_load_then_error_names_the_entry(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[operators]\npause_reasons = ["Lunch break"]\n')

    (found,) = problems_of(path)
    assert found.startswith(f"{path}: operators.pause_reasons[0]")


def test_given_desk_code_clashing_with_an_in_call_code_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[feature_codes]\npause = "*7"\n')

    assert problems_of(path) == [
        f'{path}: feature_codes.pause = "*7" is already used by feature_codes.hold'
    ]


# --- directory -------------------------------------------------------------------------


def test_given_duplicate_directory_ids_when_load_then_error_names_both_entries(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n' + entry() + entry())

    assert problems_of(path) == [f'{path}: directory[1].id = "billing" is already used by directory[0]']


def test_given_entry_without_languages_when_load_then_it_gets_every_language(tmp_path):
    body = 'company = "X"\nlanguages = ["en", "ru", "de"]\n' + entry()

    policy = load_policy(write_policy(tmp_path, body))

    assert policy.directory_entry("billing").languages == ("en", "ru", "de")


def test_given_entry_language_not_offered_when_load_then_error(tmp_path):
    body = 'company = "X"\n' + entry() + 'languages = ["en", "de"]\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path) == [
        f'{path}: directory[0].languages = ["en", "de"] includes "de", '
        "which is not in the top-level languages"
    ]


def test_given_unknown_id_when_directory_entry_then_key_error_lists_known_ids():
    policy = load_policy(EXAMPLE)

    with pytest.raises(KeyError) as caught:
        policy.directory_entry("sales")

    assert str(caught.value) == "no directory entry with id 'sales' (known ids: billing, anna-petrova)"


# --- endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["operator1", "PJSIP/", "PJSIP/op 1", "Local/100", "/x"])
def test_given_bad_operator_endpoint_when_load_then_error_names_key_and_format(tmp_path, endpoint):
    path = write_policy(tmp_path, f'company = "X"\n[operators]\nendpoints = ["{endpoint}"]\n')

    assert problems_of(path) == [
        f'{path}: operators.endpoints[0] = "{endpoint}" is not a valid endpoint; expected '
        '"TECH/resource" such as "PJSIP/operator1", or "Local/ext@context"'
    ]


def test_given_local_endpoint_without_context_when_load_then_directory_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n' + entry(endpoint="Local/200"))

    (problem,) = problems_of(path)
    assert problem.startswith(f'{path}: directory[0].endpoint = "Local/200" is not a valid endpoint')


def test_given_local_endpoint_with_context_when_load_then_accepted(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n' + entry(endpoint="Local/200@etiquette"))

    assert load_policy(path).directory_entry("billing").endpoint == "Local/200@etiquette"


def test_given_bad_supervisor_endpoint_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[supervisor]\nendpoints = ["supervisor1"]\n')

    (problem,) = problems_of(path)
    assert problem.startswith(f'{path}: supervisor.endpoints[0] = "supervisor1" is not a valid endpoint')


def test_given_repeated_operator_when_load_then_error(tmp_path):
    body = 'company = "X"\n[operators]\nendpoints = ["PJSIP/a", "PJSIP/a"]\n'
    path = write_policy(tmp_path, body)

    assert problems_of(path) == [
        f'{path}: operators.endpoints = ["PJSIP/a", "PJSIP/a"] lists "PJSIP/a" twice'
    ]


# --- transfer reasons -----------------------------------------------------------------------


def test_given_no_transfer_reasons_when_load_then_question_and_escalation():
    assert TransferPolicy().reasons == {
        "question": "transfer-reason-question",
        "escalation": "transfer-reason-escalation",
    }
    assert (TransferPolicy().choice_timeout, TransferPolicy().accept_timeout) == (6, 10)


def test_given_transfer_reasons_when_load_then_they_replace_the_defaults(tmp_path):
    body = (
        'company = "X"\n[transfer]\n'
        'reasons = { billing-question = "transfer-reason-billing", escalation = "escalate-2" }\n'
    )

    policy = load_policy(write_policy(tmp_path, body))

    assert policy.transfer.reasons == {
        "billing-question": "transfer-reason-billing",
        "escalation": "escalate-2",
    }


def test_given_bad_transfer_reason_key_and_prompt_when_load_then_each_is_named(tmp_path):
    body = (
        'company = "X"\n[transfer]\n'
        'reasons = { "Bad Key" = "transfer-reason-question", billing = "Transfer Reason" }\n'
    )
    path = write_policy(tmp_path, body)

    assert problems_of(path) == [
        f'{path}: key transfer.reasons."Bad Key" is not valid; '
        "expected lowercase letters, digits and single dashes",
        f'{path}: transfer.reasons.billing = "Transfer Reason" is not valid; '
        "expected lowercase letters, digits and dashes",
    ]


def test_given_transfer_reasons_not_a_table_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[transfer]\nreasons = ["question"]\n')

    assert problems_of(path) == [f'{path}: transfer.reasons = ["question"] should be a table']


# --- supervisor ---------------------------------------------------------------------------------


def test_given_no_supervisor_section_when_load_then_no_direct_number_and_no_own_hours():
    assert (SupervisorPolicy().direct_number, SupervisorPolicy().hours) == (None, None)


def test_given_supervisor_direct_number_and_hours_when_load_then_parsed(tmp_path):
    body = 'company = "X"\n[supervisor]\ndirect_number = "+12125550190"\nhours = "08:30-20:00"\n'

    supervisor = load_policy(write_policy(tmp_path, body)).supervisor

    assert supervisor.direct_number == "+12125550190"
    assert supervisor.hours == TimeWindow(time(8, 30), time(20))
    assert time(8, 30) in supervisor.hours
    assert time(20) not in supervisor.hours


def test_given_supervisor_number_without_plus_when_load_then_accepted(tmp_path):
    body = 'company = "X"\n[supervisor]\ndirect_number = "5550190"\n'

    assert load_policy(write_policy(tmp_path, body)).supervisor.direct_number == "5550190"


@pytest.mark.parametrize("number", ["12-34", "12", "+", "++123", "555 0190", "1" * 21])
def test_given_bad_supervisor_direct_number_when_load_then_error_names_format(tmp_path, number):
    path = write_policy(tmp_path, f'company = "X"\n[supervisor]\ndirect_number = "{number}"\n')

    assert problems_of(path) == [
        f'{path}: supervisor.direct_number = "{number}" is not valid; '
        "expected 3-20 digits with an optional leading +"
    ]


def test_given_supervisor_direct_number_as_toml_number_when_load_then_not_coerced(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[supervisor]\ndirect_number = 12125550190\n')

    assert problems_of(path) == [
        f"{path}: supervisor.direct_number = 12125550190 should be a valid string"
    ]


def test_given_supervisor_hours_ending_before_they_start_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[supervisor]\nhours = "20:00-08:00"\n')

    assert problems_of(path) == [f'{path}: supervisor.hours = "20:00-08:00" must start before it ends']


@pytest.mark.parametrize("hours", ["8-20", "closed", "08:00", "08:00-24:00"])
def test_given_malformed_supervisor_hours_when_load_then_error_names_format(tmp_path, hours):
    path = write_policy(tmp_path, f'company = "X"\n[supervisor]\nhours = "{hours}"\n')

    assert problems_of(path) == [
        f'{path}: supervisor.hours = "{hours}" is not a time span; '
        'expected "HH:MM-HH:MM" such as "09:00-18:00"'
    ]


# --- directory codes ------------------------------------------------------------------------------


def test_given_entry_without_code_when_load_then_no_code(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n' + entry())

    assert load_policy(path).directory_entry("billing").code is None


@pytest.mark.parametrize("code", ["1", "21", "007", "123456"])
def test_given_directory_code_of_1_to_6_digits_when_load_then_kept_as_text(tmp_path, code):
    path = write_policy(tmp_path, 'company = "X"\n' + entry() + f'code = "{code}"\n')

    assert load_policy(path).directory_entry("billing").code == code


@pytest.mark.parametrize("code", ["12a", "", "1234567", "*21", "2#", " 21"])
def test_given_bad_directory_code_when_load_then_error_names_entry_and_format(tmp_path, code):
    path = write_policy(tmp_path, 'company = "X"\n' + entry() + f'code = "{code}"\n')

    assert problems_of(path) == [
        f'{path}: directory[0].code = "{code}" is not valid; expected 1-6 digits'
    ]


def test_given_bad_code_in_second_entry_when_load_then_error_names_that_entry(tmp_path):
    body = (
        'company = "X"\n'
        + entry()
        + 'code = "21"\n'
        + entry(id="sales", endpoint="PJSIP/sales")
        + 'code = "12a"\n'
    )
    path = write_policy(tmp_path, body)

    assert problems_of(path) == [
        f'{path}: directory[1].code = "12a" is not valid; expected 1-6 digits'
    ]


def test_given_directory_code_as_toml_number_when_load_then_not_coerced(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n' + entry() + "code = 21\n")

    assert problems_of(path) == [f"{path}: directory[0].code = 21 should be a valid string"]


# --- hours ----------------------------------------------------------------------------------


def test_given_bad_time_zone_when_load_then_error_names_key(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[business_hours]\ntime_zone = "Mars/Olympus"\n')

    assert problems_of(path) == [
        f'{path}: business_hours.time_zone = "Mars/Olympus" is not a known IANA time zone '
        'such as "Europe/Moscow"'
    ]


def test_given_day_ending_before_it_starts_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[business_hours]\nmon = "18:00-09:00"\n')

    assert problems_of(path) == [f'{path}: business_hours.mon = "18:00-09:00" must start before it ends']


def test_given_malformed_day_when_load_then_error_names_format(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[business_hours]\nsat = "9-17"\n')

    assert problems_of(path) == [
        f'{path}: business_hours.sat = "9-17" is not a time span; expected '
        '"HH:MM-HH:MM" such as "09:00-18:00", or "closed"'
    ]


def test_given_moscow_hours_when_is_open_then_read_in_company_zone(tmp_path):
    body = 'company = "X"\n[business_hours]\ntime_zone = "Europe/Moscow"\n'
    hours = load_policy(write_policy(tmp_path, body)).business_hours

    # Monday 2024-01-01 06:30 UTC is 09:30 in Moscow.
    assert hours.is_open(datetime(2024, 1, 1, 6, 30, tzinfo=timezone.utc))
    assert not hours.is_open(datetime(2024, 1, 1, 5, 30, tzinfo=timezone.utc))
    assert not hours.is_open(datetime(2024, 1, 6, 10, 0, tzinfo=timezone.utc))  # Saturday


def test_given_default_quiet_hours_when_contains_then_wraps_midnight():
    quiet = QuietHours()

    assert quiet.contains(time(23, 0))
    assert quiet.contains(time(3, 0))
    assert not quiet.contains(time(9, 0))
    assert not quiet.contains(time(20, 59))


def test_given_bad_quiet_hours_time_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[quiet_hours]\nstart = "24:00"\n')

    assert problems_of(path) == [
        f'{path}: quiet_hours.start = "24:00" is not a time; expected "HH:MM" from "00:00" to "23:59"'
    ]


# --- file-level problems ------------------------------------------------------------------


def test_given_unknown_key_when_load_then_error_names_key(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[hold]\ncheck_in_intervl = 25\n')

    assert problems_of(path) == [
        f"{path}: unknown key hold.check_in_intervl (did you mean check_in_interval?)"
    ]


def test_given_unknown_section_and_entry_key_when_load_then_each_is_named(tmp_path):
    body = 'company = "X"\n[welcome]\ntext = "hi"\n' + entry() + "floor = 3\n"
    path = write_policy(tmp_path, body)

    problems = sorted(problems_of(path))

    assert problems[0].startswith(f"{path}: unknown key directory[0].floor (allowed keys: id, kind,")
    assert problems[1].startswith(f"{path}: unknown key welcome (allowed keys: company, ")


def test_given_toml_syntax_error_when_load_then_error_names_line(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[hold]\ncheck_in_interval = \n')

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: TOML syntax error: ")
    assert "line 3" in problem


def test_given_no_company_when_load_then_error_says_required(tmp_path):
    path = write_policy(tmp_path, "[hold]\ncheck_in_interval = 25\n")

    assert problems_of(path) == [f"{path}: company is required"]


def test_given_several_problems_when_load_then_str_lists_one_per_line(tmp_path):
    body = 'company = ""\n[transfer]\nmode = "blind"\n[recording]\nenabled = "yes"\n'
    path = write_policy(tmp_path, body)

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert caught.value.problems == [
        f'{path}: company = "" must be 1-80 characters',
        f'{path}: recording.enabled = "yes" should be a valid boolean',
        f'{path}: transfer.mode = "blind" is not allowed; expected "announced" or "attended"',
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_given_string_number_when_load_then_not_coerced(tmp_path):
    path = write_policy(tmp_path, 'company = "X"\n[hold]\ncheck_in_interval = "25"\n')

    assert problems_of(path) == [f'{path}: hold.check_in_interval = "25" should be a valid integer']


def test_given_missing_file_when_load_then_error_names_file(tmp_path):
    path = tmp_path / "absent.toml"

    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: cannot read the policy file")


def test_given_two_entries_with_one_code_when_load_then_error_names_the_second(tmp_path):
    body = ('company = "X"\n'
            '[[directory]]\nid = "a"\nkind = "department"\nname = "A"\nendpoint = "PJSIP/a"\n'
            'direct_number = "4100"\ncode = "21"\n'
            '[[directory]]\nid = "b"\nkind = "department"\nname = "B"\nendpoint = "PJSIP/b"\n'
            'direct_number = "4101"\ncode = "21"\n')
    problems = problems_of(write_policy(tmp_path, body))
    assert any("directory[1].code" in p and "directory[0]" in p for p in problems), problems


# --- callback.allowed_countries: the company's own country unless listed ------------------------
def test_given_no_allowed_countries_when_business_zone_in_a_country_then_that_country(tmp_path):
    body = 'company = "X"\n[business_hours]\ntime_zone = "America/New_York"\n'
    assert load_policy(write_policy(tmp_path, body)).callback.allowed_countries == ("US",)


def test_given_allowed_countries_listed_when_loaded_then_the_list_wins(tmp_path):
    body = ('company = "X"\n[business_hours]\ntime_zone = "Europe/Moscow"\n'
            '[callback]\nallowed_countries = ["US", "CA"]\n')
    assert load_policy(write_policy(tmp_path, body)).callback.allowed_countries == ("US", "CA")


def test_given_no_allowed_countries_when_business_zone_in_no_country_then_none_allowed(tmp_path):
    # UTC names no country: nothing may be called back until the admin lists countries
    assert load_policy(write_policy(tmp_path, 'company = "X"\n')).callback.allowed_countries == ()


def test_given_menu_repeat_after_when_app_builds_the_rules_settings_then_each_rule_gets_its_own(
        tmp_path):
    from ari_app.app import _hold_settings, _transfer_settings

    body = ('company = "X"\n[hold]\nmenu_repeat_after = 3\nfallback_choice_timeout = 9\n'
            '[transfer]\nmenu_repeat_after = 2.5\n')
    policy = load_policy(write_policy(tmp_path, body))

    hold, transfer = _hold_settings(policy), _transfer_settings(policy)
    assert (hold.menu_repeat_after, hold.choice_timeout) == (3.0, 9)
    assert (transfer.menu_repeat_after, transfer.choice_timeout) == (2.5, 6)


# --- queues ----------------------------------------------------------------------


QUEUE_OPERATORS = '[operators]\nendpoints = ["PJSIP/operator1", "PJSIP/operator2"]\n'


def test_given_no_queues_when_load_then_none():
    assert Policy(company="Acme").queues == ()


def test_given_the_example_when_load_then_one_queue_for_every_number_at_the_shipped_defaults():
    """A caller the example's deployment cannot put through waits in line with check-ins and
    the way out, not on music alone."""
    [general] = load_policy(EXAMPLE).queues
    assert (general.name, general.extensions, general.department) == ("general", (), None)
    assert (general.check_in_interval, general.threshold, general.max_wait) == (25, 90, 600)


def test_given_a_queue_with_only_a_name_when_load_then_the_shipped_defaults(tmp_path):
    policy = load_policy(write_policy(tmp_path, 'company = "Acme"\n[[queues]]\nname = "sales"\n'))

    queue = policy.queue("sales")
    assert (queue.check_in_interval, queue.threshold, queue.max_wait) == (25, 90, 600)
    assert queue.default_after_max_wait == "callback" and queue.menu_repeat_after == 4.0
    assert queue.department is None and queue.operators == () and queue.hours is None
    assert queue.default_handle_time is None


def test_given_an_unknown_queue_name_when_asked_then_error_names_the_known_ones(tmp_path):
    policy = load_policy(write_policy(tmp_path, 'company = "Acme"\n[[queues]]\nname = "sales"\n'))

    with pytest.raises(NoSuchQueue, match="no queue named 'support'.*known: sales"):
        policy.queue("support")


@pytest.mark.parametrize("key, value, problem", [
    ("check_in_interval", 45, "queues[0].check_in_interval = 45 is outside the allowed range 20-30 (seconds)"),
    ("threshold", 200, "queues[0].threshold = 200 is outside the allowed range 60-180 (seconds)"),
    ("threshold", 30, "queues[0].threshold = 30 is outside the allowed range 60-180 (seconds)"),
    ("max_wait", 70, "queues[0].max_wait = 70 must be at least threshold (90)"),
    ("default_after_max_wait", '"hangup"', "queues[0].default_after_max_wait = \"hangup\" is not allowed"),
    ("menu_repeat_after", 6.0, "queues[0].menu_repeat_after = 6.0 is outside the allowed range 2-5"),
    ("max_waiting", 0, "queues[0].max_waiting = 0 is outside the allowed range 1-1000"),
])
def test_given_a_bad_queue_value_when_load_then_error_names_the_key(tmp_path, key, value, problem):
    path = write_policy(tmp_path, f'company = "Acme"\n[[queues]]\nname = "sales"\n{key} = {value}\n')

    assert any(problem in p for p in problems_of(path)), problems_of(path)


def test_given_shrunk_queue_times_when_load_with_test_time_ranges_then_loaded(tmp_path):
    path = write_policy(tmp_path, 'company = "Acme"\n[[queues]]\nname = "sales"\n'
                        "check_in_interval = 2\nthreshold = 5\nmax_wait = 8\n")

    assert problems_of(path)
    queue = load_policy(path, test_time_ranges=True).queue("sales")
    assert (queue.check_in_interval, queue.threshold, queue.max_wait) == (2, 5, 8)


def test_given_two_queues_with_one_name_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "Acme"\n[[queues]]\nname = "sales"\n'
                        '[[queues]]\nname = "sales"\n')

    assert problems_of(path) == [f"{path}: queues[1].name = \"sales\" is already used by queues[0]"]


def test_given_a_department_not_in_the_directory_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "Acme"\n' + entry() +
                        '[[queues]]\nname = "sales"\ndepartment = "support"\n')

    assert problems_of(path) == [f"{path}: queues[0].department = \"support\" is not a "
                                 "department of the directory (departments: billing)"]


def test_given_a_queue_operator_not_in_the_pool_when_load_then_error(tmp_path):
    path = write_policy(tmp_path, 'company = "Acme"\n' + QUEUE_OPERATORS +
                        '[[queues]]\nname = "sales"\noperators = ["PJSIP/operator3"]\n')

    [problem] = problems_of(path)
    assert 'queues[0].operators' in problem and '"PJSIP/operator3"' in problem


def test_given_a_full_queue_when_load_then_kept(tmp_path):
    path = write_policy(tmp_path, 'company = "Acme"\n' + QUEUE_OPERATORS + entry() +
                        '[[queues]]\nname = "billing"\ndepartment = "billing"\n'
                        'operators = ["PJSIP/operator2"]\nhours = "08:00-20:00"\n'
                        'default_handle_time = 240\ndefault_after_max_wait = "voicemail"\n')

    queue = load_policy(path).queue("billing")
    assert queue.operators == ("PJSIP/operator2",) and str(queue.hours) == "08:00-20:00"
    assert queue.default_handle_time == 240 and queue.default_after_max_wait == "voicemail"


def test_given_greeting_keys_when_queue_or_language_unknown_then_named(tmp_path):
    queues = ('[[directory]]\nid = "billing"\nkind = "department"\nname = "Billing"\n'
              'endpoint = "PJSIP/b"\ndirect_number = "4100"\n'
              '[[queues]]\nname = "sales"\n[[queues]]\nname = "billing"\ndepartment = "billing"\n')
    good = write_policy(tmp_path, 'company = "X"\n[greeting]\nqueue_keys = {"2" = "billing"}\n'
                        'language_keys = {"9" = "ru"}\n' + queues)
    assert dict(load_policy(good).greeting.queue_keys) == {"2": "billing"}
    for keys, wrong in (('queue_keys = {"2" = "nope"}', "is not a queue"),
                        ('queue_keys = {"2" = "sales"}', "has no department"),
                        ('queue_keys = {"0" = "billing"}', "one digit 1-9"),
                        ('language_keys = {"9" = "de"}', "is not one of languages"),
                        ('queue_keys = {"2" = "billing"}\nlanguage_keys = {"2" = "ru"}',
                         "both a queue key and a language key")):
        path = write_policy(tmp_path, f'company = "X"\n[greeting]\n{keys}\n' + queues)
        assert any(wrong in p for p in problems_of(path)), (keys, problems_of(path))


def test_given_greeting_keys_when_the_app_builds_the_offers_then_departments_then_0_then_languages(
        tmp_path):
    """What the caller hears after the greeting: each department by name and its key, then 0
    for an operator (only with a department menu: 0 is a person), then each language said in
    that language, its key too ("девять", not "nine")."""
    from ari_app.app import _greeting_offers

    queues = ('[[directory]]\nid = "billing"\nkind = "department"\nname = "Billing"\n'
              'endpoint = "PJSIP/b"\ndirect_number = "4100"\n'
              '[[queues]]\nname = "billing"\ndepartment = "billing"\n')
    both = write_policy(tmp_path, 'company = "X"\n[greeting]\nqueue_keys = {"2" = "billing"}\n'
                        'language_keys = {"9" = "ru"}\n' + queues)
    assert _greeting_offers(load_policy(both)) == (
        ("2", "queue", "billing", "sound:etiquette/greeting-key-queue",
         "sound:etiquette/directory-billing", "sound:etiquette/greeting-key-press", "digits:2"),
        ("0", "operator", "any", "sound:etiquette/press-0-for-operator"),
        ("9", "language", "ru", "sound:ru/etiquette/language-offer", "sound:ru/digits/9"))
    languages = write_policy(tmp_path, 'company = "X"\n[greeting]\nlanguage_keys = {"9" = "ru"}\n')
    assert [o[0] for o in _greeting_offers(load_policy(languages))] == ["9"]


# --- the post-call survey and the abusive-caller warning ---------------------------------------


def test_given_a_queue_without_survey_when_load_then_no_survey(tmp_path):
    policy = load_policy(write_policy(tmp_path, 'company = "Acme"\n[[queues]]\nname = "sales"\n'))

    assert policy.queue("sales").survey is False


def test_given_a_queue_with_survey_when_load_then_surveyed(tmp_path):
    policy = load_policy(write_policy(tmp_path, 'company = "Acme"\n[[queues]]\nname = "sales"\n'
                                      "survey = true\n[[queues]]\nname = \"support\"\n"))

    assert [(q.name, q.survey) for q in policy.queues] == [("sales", True), ("support", False)]


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_given_a_survey_that_is_not_true_or_false_when_load_then_error_names_the_key(
        tmp_path, value):
    path = write_policy(tmp_path, f'company = "Acme"\n[[queues]]\nname = "sales"\nsurvey = {value}\n')

    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: queues[0].survey = {value}"), problem


def test_given_no_warn_code_when_load_then_star_5_and_a_clash_is_named(tmp_path):
    assert Policy(company="X").feature_codes.warn == "*5"
    path = write_policy(tmp_path, 'company = "X"\n[feature_codes]\nwarn = "*9"\n')

    assert problems_of(path) == [
        f'{path}: feature_codes.warn = "*9" is already used by feature_codes.supervisor']


# --- what a valid policy leaves callers without ---------------------------------------------


def test_given_the_example_policy_then_it_leaves_callers_nothing_short():
    assert load_policy(EXAMPLE).shortfalls() == []


def test_given_no_queues_when_doctor_then_waiting_callers_warned_with_the_fix(tmp_path):
    """Valid, so the app runs, but a caller who finds nobody free would hear music alone:
    doctor says WARN (never FAIL: its exit code stays 0) and names what to add."""
    from ari_app.doctor import waiting_check

    bare = load_policy(write_policy(tmp_path, 'company = "X"\n'))
    [shortfall] = bare.shortfalls()
    assert "no [[queues]]" in shortfall and "no check-in" in shortfall

    check = waiting_check(bare)
    assert (check.ok, check.warn) == (True, True)
    assert check.line().startswith("WARN waiting callers: no [[queues]] in the policy")
    assert 'config/policy.example.toml ships "general"' in check.line()

    queued = waiting_check(load_policy(EXAMPLE))
    assert queued.line() == ("OK   waiting callers: callers who find nobody free wait in general "
                             "(check-ins, their place in line, the way out)")
