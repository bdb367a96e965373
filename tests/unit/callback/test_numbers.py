"""numbers.check_number: the one check every number the dialer may call passes (web form,
keypad, caller ID, supervisor promise, REST). Real phonenumbers metadata; Hypothesis-generated
numbers: no emergency, premium-rate, satellite, refused or foreign number ever passes."""

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType, shortnumberinfo
from phonenumbers import timezone as number_zones

from ari_app.callback.numbers import (
    HIGH_COST, NumberFacts, NumberRules, RefusedNumber, check_number, number_facts)

US = NumberRules(("US",), ("+1900", "+1976"))
US_RU = NumberRules(("US", "RU"), ("+1900", "+1976"))
EMERGENCY = ["911", "112", "999", "000", "110", "101", "102", "103", "01", "03", "15", "17",
             "18", "08", "100", "108", "933", "9111", "911#"]


def refusal(raw: str, rules: NumberRules = US) -> RefusedNumber:
    with pytest.raises(RefusedNumber) as caught:
        check_number(raw, rules)
    return caught.value


# --- examples -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected", [
    ("+1 212 555 0100", "+12125550100"),
    ("(212) 555-0100", "+12125550100"),       # national: read in the first allowed country
    ("2125550142", "+12125550142"),            # typed on a keypad
    ("+1 800 555 0100", "+18005550100"),       # toll-free: free to call
])
def test_given_callable_us_number_when_checked_then_e164(raw, expected):
    assert check_number(raw, US) == expected


def test_given_second_allowed_country_when_checked_then_e164():
    assert check_number("+7 916 123-45-67", US_RU) == "+79161234567"


@pytest.mark.parametrize("raw", ["911", "112", "9111"])
def test_given_keypad_emergency_number_when_checked_then_refused_as_emergency(raw):
    assert "emergency" in refusal(raw).message


@pytest.mark.parametrize("raw,what", [
    ("+1 900 555 0100", "premium-rate"),
    ("+44 909 879 0000", "premium-rate"),
    ("+44 871 234 5678", "premium-rate"),   # UK 087x: read as premium-rate
    ("+881 6 1234 5678", "satellite"),
    ("+870 772 345 678", "satellite"),
    ("+882 34 5678 9012", "satellite"),
    ("+883 5100 1234 5", "satellite"),
    ("+979 1 2345 6789", "premium-rate"),    # international premium rate
    ("+252 61 234 5678", "Somalia"),
    ("+1 809 234 5678", "Caribbean"),
    ("+1 876 234 5678", "Caribbean"),
])
def test_given_high_cost_number_when_checked_then_refused_saying_what(raw, what):
    everywhere = NumberRules(("US", "GB", "RU", "DE"), ())
    error = refusal(raw, everywhere)
    assert error.error_id == "refused-number" and what in error.message


def test_given_number_of_another_country_when_checked_then_refused_naming_the_allowed():
    error = refusal("+44 20 7946 0958")
    assert error.error_id == "refused-number" and "US" in error.message


def test_given_no_allowed_country_when_checked_then_every_number_refused():
    assert "no country" in refusal("+12125550100", NumberRules()).message


def test_given_refused_prefix_when_checked_then_refused_naming_it():
    assert "+1212" in refusal("+12125550100", NumberRules(("US",), ("+1212",))).message


@pytest.mark.parametrize("raw", ["", "   ", "abc", "+", "4930123456", "1" * 40, "anonymous"])
def test_given_not_a_callable_number_when_checked_then_invalid_number(raw):
    assert refusal(raw).error_id == "invalid-number"


def test_given_rules_when_round_tripped_through_a_dict_then_equal():
    assert NumberRules.from_dict(US_RU.to_dict()) == US_RU
    assert NumberRules.from_dict({}) == NumberRules()


# --- properties -------------------------------------------------------------------------------
def _passes(raw: str, rules: NumberRules) -> str | None:
    try:
        return check_number(raw, rules)
    except RefusedNumber:
        return None


RULES = st.sampled_from([US, US_RU, NumberRules(("GB", "DE", "FR"), ("+4470",)),
                         NumberRules(("US", "CA", "JM"), ("+1900", "+1976", "+1242"))])
DIGITS = st.text("0123456789", min_size=1, max_size=16)
SEPARATED = st.lists(st.sampled_from(list("0123456789") + [" ", "-", "(", ")", "."]),
                     min_size=1, max_size=20).map("".join)
RAW = st.one_of(DIGITS, DIGITS.map(lambda d: "+" + d), SEPARATED,
                SEPARATED.map(lambda d: "+" + d), st.sampled_from(EMERGENCY),
                st.sampled_from(sorted(HIGH_COST)).flatmap(
                    lambda p: DIGITS.map(lambda d: p + d)),
                st.sampled_from(["+800", "+808", "+870", "+881", "+882", "+883", "+979",
                                 "+1900", "+1976", "+44909", "+4487"]).flatmap(
                    lambda p: DIGITS.map(lambda d: p + d)))


@settings(max_examples=1500, deadline=None)
@given(raw=RAW, rules=RULES)
def test_given_any_generated_number_when_it_passes_then_it_is_callable_and_allowed(raw, rules):
    e164 = _passes(raw, rules)
    if e164 is None:
        return
    number = phonenumbers.parse(e164)
    country = phonenumbers.region_code_for_number(number)
    assert phonenumbers.is_valid_number(number)
    assert country in rules.allowed_countries, (raw, e164)
    assert phonenumbers.number_type(number) not in (
        PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL, PhoneNumberType.PAGER), (raw, e164)
    assert not any(e164.startswith(p) for p in rules.refused_prefixes), (raw, e164)
    assert not any(e164.startswith(p) for p in HIGH_COST if country not in rules.allowed_countries)
    assert not any(shortnumberinfo.is_emergency_number(raw, r) for r in rules.allowed_countries)
    assert check_number(e164, rules) == e164  # checked again (the dialer): the same answer


@settings(max_examples=300, deadline=None)
@given(emergency=st.sampled_from(EMERGENCY), noise=st.sampled_from(["", " ", "#", "-"]),
       rules=RULES)
def test_given_emergency_number_when_typed_in_any_way_then_never_passes(emergency, noise, rules):
    for raw in (emergency, noise.join(emergency), emergency + noise):
        if any(shortnumberinfo.is_emergency_number(raw.replace("#", ""), r)
               for r in rules.allowed_countries):
            assert _passes(raw, rules) is None, raw


@settings(max_examples=500, deadline=None)
@given(prefix=st.sampled_from(["+870", "+881", "+882", "+883", "+979", "+800", "+808", "+1900",
                               "+1976", "+252", "+675", "+1809", "+1876"]),
       rest=st.text("0123456789", min_size=4, max_size=12))
def test_given_satellite_premium_or_scam_prefix_when_checked_then_never_passes(prefix, rest):
    assert _passes(prefix + rest, US_RU) is None


# --- the facts a check looks up once ------------------------------------------------------------
@settings(max_examples=2000, deadline=None)
@given(code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
       rest=st.text("0123456789", min_size=4, max_size=12))
def test_given_any_number_when_its_facts_are_read_once_then_they_are_what_phonenumbers_says(
        code, rest):
    """One region lookup, one type lookup and the zones' table, in place of is_valid_number,
    number_type and time_zones_for_number each looking them up again."""
    try:
        number = phonenumbers.parse(f"+{code}{rest}")
    except phonenumbers.NumberParseException:
        return
    facts = NumberFacts.of(number)
    assert (facts.kind != PhoneNumberType.UNKNOWN) == phonenumbers.is_valid_number(number)
    assert facts.kind == phonenumbers.number_type(number)
    assert facts.country == (phonenumbers.region_code_for_number(number) or "")
    assert facts.zones == tuple(z for z in number_zones.time_zones_for_number(number)
                                if z != "Etc/Unknown")
    assert facts.e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_given_a_checked_number_when_its_facts_are_asked_then_they_are_the_checks_own():
    e164 = check_number("(212) 555-0177", US)
    facts = number_facts(e164)
    assert facts is number_facts(e164)  # kept, not looked up again
    assert (facts.country, facts.zones) == ("US", ("America/New_York",))
    assert number_facts("anonymous") is None and number_facts("") is None
