"""intake.check_form: a submitted "call me back" form -> a request that may be dialled, or
InvalidField naming the field and the problem. Real phonenumbers metadata, fixed `now`."""

import unicodedata
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.callback.intake import CallbackForm, InvalidField, check_form
from ari_app.policy import CallbackPolicy

LANGUAGES = ("en", "ru")
NOW_AT = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # a Wednesday
NOW = NOW_AT.timestamp()
US_NUMBER = "+12125550100"
RU_MOBILE = "+79161234567"

NO_COUNTRY = CallbackPolicy.model_validate({})  # as shipped, outside a Policy: none set up
# the countries these tests call (a policy must name them: an empty list allows none)
SOME = CallbackPolicy.model_validate({"allowed_countries": ["US", "RU", "GB"]})
US_ONLY = CallbackPolicy.model_validate({"allowed_countries": ["US"]})
US_AND_RU = CallbackPolicy.model_validate({"allowed_countries": ["US", "RU"]})


def check(body: dict, policy: CallbackPolicy = SOME) -> CallbackForm:
    return check_form(body, policy, LANGUAGES, now=NOW)


def refused(body: dict, policy: CallbackPolicy = SOME) -> InvalidField:
    with pytest.raises(InvalidField) as caught:
        check(body, policy)
    return caught.value


def at(delta: timedelta) -> str:
    return (NOW_AT + delta).isoformat()


# --- the policy the tests rely on ------------------------------------------------------------
def test_given_default_callback_policy_when_read_then_no_country_and_us_premium_prefixes_refused():
    assert NO_COUNTRY.allowed_countries == ()
    assert NO_COUNTRY.refused_prefixes == ("+1900", "+1976")


# --- accepted numbers ------------------------------------------------------------------------
def test_given_us_number_in_e164_when_check_form_then_accepted_as_e164():
    assert check({"number": "+1 212 555 0100"}).number == US_NUMBER
    assert check({"number": "+1 212 555 0100"}, US_ONLY).number == US_NUMBER


def test_given_us_only_policy_when_national_format_number_then_read_as_us():
    assert check({"number": "(212) 555-0100"}, US_ONLY).number == US_NUMBER
    assert check({"number": "212.555.0100"}, US_ONLY).number == US_NUMBER


def test_given_russian_mobile_when_check_form_then_accepted_as_e164():
    assert check({"number": "+7 916 123-45-67"}).number == RU_MOBILE
    assert check({"number": "+7 916 123-45-67"}, US_AND_RU).number == RU_MOBILE


def test_given_full_form_when_check_form_then_every_field_cleaned():
    form = check({"number": " +1 212 555 0100 ", "name": "  Ann \t  Lee ",
                  "topic": "Refund\n for   order 42 ", "language": "ru",
                  "time_zone": "America/New_York", "preferred_time": "2026-11-26T15:30:00+00:00"})
    assert form == CallbackForm(number=US_NUMBER, name="Ann Lee", topic="Refund for order 42",
                                preferred_at=datetime(2026, 11, 26, 15, 30,
                                                      tzinfo=timezone.utc).timestamp(),
                                time_zone="America/New_York", language="ru")


def test_given_only_a_number_when_check_form_then_defaults_for_the_rest():
    assert check({"number": US_NUMBER}) == CallbackForm(US_NUMBER, "", "", None, None, "en")


def test_given_null_name_and_topic_when_check_form_then_empty_text():
    form = check({"number": US_NUMBER, "name": None, "topic": None})
    assert (form.name, form.topic) == ("", "")


def test_given_unknown_language_when_check_form_then_first_language():
    assert check({"number": US_NUMBER, "language": "de"}).language == "en"
    assert check({"number": US_NUMBER, "language": ["ru"]}).language == "en"
    assert check_form({"number": US_NUMBER, "language": "de"}, SOME, ("ru", "en"),
                      now=NOW).language == "ru"


def test_given_name_and_topic_at_their_limits_when_check_form_then_accepted():
    form = check({"number": US_NUMBER, "name": "n" * 80, "topic": "t" * 300})
    assert (len(form.name), len(form.topic)) == (80, 300)


# --- invalid fields --------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["", "   ", None])
def test_given_no_number_when_check_form_then_number_field_asked_for(number):
    error = refused({"number": number})
    assert error.field == "number" and error.error_id == "invalid-request"
    assert "phone number" in error.message


def test_given_no_number_key_when_check_form_then_number_field_asked_for():
    assert refused({}).field == "number"


@pytest.mark.parametrize("number", ["call me", "abc", "+"])
def test_given_garbage_number_when_check_form_then_invalid_number(number):
    error = refused({"number": number})
    assert (error.field, error.error_id) == ("number", "invalid-number")


def test_given_number_of_the_wrong_length_when_check_form_then_invalid_number():
    error = refused({"number": "+1 212 555 01"})
    assert (error.field, error.error_id) == ("number", "invalid-number")


def test_given_number_longer_than_32_characters_when_check_form_then_number_too_long():
    error = refused({"number": "+1 212 555 0100" + " 0" * 10})
    assert error.field == "number" and "too long" in error.message


def test_given_non_string_number_when_check_form_then_number_must_be_text():
    error = refused({"number": 12125550100})
    assert error.field == "number" and "text" in error.message


@pytest.mark.parametrize("field, limit", [("name", 80), ("topic", 300)])
def test_given_text_over_the_limit_when_check_form_then_that_field_too_long(field, limit):
    error = refused({"number": US_NUMBER, field: "x" * (limit + 1)})
    assert error.field == field and f"at most {limit}" in error.message


def test_given_long_name_of_spaces_when_collapsed_within_limit_then_accepted():
    assert check({"number": US_NUMBER, "name": "a" + " " * 100 + "b"}).name == "a b"


@pytest.mark.parametrize("value", [42, ["Ann"], {"first": "Ann"}, True])
def test_given_non_string_name_when_check_form_then_name_field(value):
    error = refused({"number": US_NUMBER, "name": value})
    assert error.field == "name"


def test_given_non_string_topic_when_check_form_then_topic_field():
    assert refused({"number": US_NUMBER, "topic": 7}).field == "topic"


# --- refused numbers -------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["911", "112"])
def test_given_emergency_number_when_check_form_then_refused(number):
    error = refused({"number": number}, US_ONLY)
    assert (error.field, error.error_id) == ("number", "refused-number")
    assert "emergency" in error.message


def test_given_emergency_number_without_a_default_country_when_check_form_then_not_accepted():
    # Without a single allowed country there is no region to read "911" in: it is not a
    # phone number at all ("invalid-number"). Either way it must never be accepted.
    error = refused({"number": "911"})
    assert error.field == "number" and error.error_id in ("invalid-number", "refused-number")


def test_given_us_premium_rate_number_when_check_form_then_refused():
    error = refused({"number": "+1 900 555 0100"})
    assert (error.field, error.error_id) == ("number", "refused-number")
    assert "premium-rate" in error.message


def test_given_us_premium_rate_number_even_without_refused_prefixes_then_refused_by_its_type():
    policy = CallbackPolicy.model_validate({"refused_prefixes": [], "allowed_countries": ["US"]})
    error = refused({"number": "+1 900 555 0100"}, policy)
    assert error.error_id == "refused-number" and "premium-rate" in error.message


def test_given_refused_prefix_in_policy_when_number_starts_with_it_then_refused_naming_prefix():
    policy = CallbackPolicy.model_validate({"refused_prefixes": ["+1212"],
                                            "allowed_countries": ["US"]})
    error = refused({"number": "+1 212 555 0100"}, policy)
    assert (error.field, error.error_id) == ("number", "refused-number")
    assert "+1212" in error.message
    assert check({"number": "+1 646 555 0100"}, policy).number == "+16465550100"


def test_given_country_not_allowed_when_check_form_then_refused_naming_allowed_countries():
    error = refused({"number": "+44 20 7946 0958"}, US_ONLY)
    assert (error.field, error.error_id) == ("number", "refused-number")
    assert "US" in error.message


def test_given_canadian_number_when_only_us_allowed_then_refused():
    error = refused({"number": "+1 416 555 0100"}, US_ONLY)
    assert error.error_id == "refused-number"


def test_given_several_allowed_countries_when_other_country_then_message_names_all():
    error = refused({"number": "+44 20 7946 0958"}, US_AND_RU)
    assert error.error_id == "refused-number"
    assert "US, RU" in error.message


def test_given_listed_country_when_check_form_then_accepted():
    assert check({"number": "+44 20 7946 0958"}).number == "+442079460958"


@pytest.mark.parametrize("number", [US_NUMBER, RU_MOBILE, "+44 20 7946 0958"])
def test_given_no_allowed_countries_when_any_number_then_refused_nothing_is_set_up(number):
    error = refused({"number": number}, NO_COUNTRY)
    assert (error.field, error.error_id) == ("number", "refused-number")
    assert "no country" in error.message


@pytest.mark.parametrize("number,what", [
    ("+881 6 1234 5678", "satellite"),          # Iridium
    ("+870 772 345 678", "satellite"),          # Inmarsat
    ("+882 34 5678 9012", "satellite"),
    ("+883 5100 1234 5", "satellite"),
    ("+252 61 234 5678", "Somalia"),
    ("+1 809 234 5678", "Caribbean"),           # one-ring scams: Dominican Republic
    ("+1 876 234 5678", "Caribbean"),           # Jamaica
])
def test_given_high_cost_destination_when_check_form_then_refused_whatever_the_list(number, what):
    everywhere = CallbackPolicy.model_validate({"allowed_countries": ["US", "GB", "RU"]})
    error = refused({"number": number}, everywhere)
    assert error.error_id == "refused-number" and what in error.message


def test_given_caribbean_country_listed_by_name_when_check_form_then_accepted():
    policy = CallbackPolicy.model_validate({"allowed_countries": ["US", "JM"]})
    assert check({"number": "+1 876 234 5678"}, policy).number == "+18762345678"


@pytest.mark.parametrize("raw", ["Ann\x00Lee", "Ann\x1b[31mLee", "Ann\u202eLee", "Ann\u2066Lee",
                                 "Ann\u200bLee", "Ann\x7fLee"])
def test_given_control_characters_in_name_and_topic_when_check_form_then_stripped(raw):
    form = check({"number": US_NUMBER, "name": raw, "topic": raw})
    assert form.name in ("AnnLee", "Ann[31mLee") and form.topic == form.name
    assert all(c.isprintable() for c in form.name + form.topic)


@settings(max_examples=1000, deadline=None)
@given(text=st.text(max_size=60))
def test_given_any_text_when_check_form_then_each_character_kept_dropped_or_a_space(text):
    """A text isprintable() takes one pass; the others go character by character: both give
    the one answer (controls and format characters dropped, but the two joiners; any space a
    space; spaces squeezed)."""
    kept = "".join(" " if c.isspace() else "" if unicodedata.category(c)[0] == "C"
                   and c not in "\u200c\u200d" else c for c in text)
    form = check({"number": US_NUMBER, "name": text[:80], "topic": text})
    assert form.topic == " ".join(kept.split())


# --- preferred time --------------------------------------------------------------------------
def test_given_preferred_time_tomorrow_when_check_form_then_epoch():
    form = check({"number": US_NUMBER, "preferred_time": at(timedelta(days=1))})
    assert form.preferred_at == NOW + 86400


def test_given_preferred_time_with_offset_when_check_form_then_converted_to_epoch():
    form = check({"number": US_NUMBER, "preferred_time": "2026-11-26T18:30:00+03:00"})
    assert form.preferred_at == datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc).timestamp()


def test_given_naive_preferred_time_when_check_form_then_read_as_utc():
    form = check({"number": US_NUMBER, "preferred_time": "2026-11-26T15:30"})
    assert form.preferred_at == datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc).timestamp()


def test_given_preferred_time_a_few_minutes_ago_when_check_form_then_accepted():
    form = check({"number": US_NUMBER, "preferred_time": at(timedelta(minutes=-5))})
    assert form.preferred_at == NOW - 300


def test_given_preferred_time_more_than_five_minutes_ago_when_check_form_then_past():
    error = refused({"number": US_NUMBER, "preferred_time": at(timedelta(minutes=-5, seconds=-1))})
    assert error.field == "preferred_time" and "past" in error.message


def test_given_preferred_time_thirty_days_ahead_when_check_form_then_accepted():
    form = check({"number": US_NUMBER, "preferred_time": at(timedelta(days=30))})
    assert form.preferred_at == NOW + 30 * 86400


def test_given_preferred_time_more_than_thirty_days_ahead_when_check_form_then_too_far():
    error = refused({"number": US_NUMBER, "preferred_time": at(timedelta(days=30, seconds=1))})
    assert error.field == "preferred_time" and "30 days" in error.message


@pytest.mark.parametrize("value",
                         ["tomorrow at 3", "2026-13-01T10:00", "26/11/2026 15:30", 1764151800])
def test_given_preferred_time_not_iso_when_check_form_then_preferred_time_field(value):
    assert refused({"number": US_NUMBER, "preferred_time": value}).field == "preferred_time"


@pytest.mark.parametrize("value", [None, ""])
def test_given_no_preferred_time_when_check_form_then_none(value):
    assert check({"number": US_NUMBER, "preferred_time": value}).preferred_at is None


# --- time zone -------------------------------------------------------------------------------
def test_given_valid_time_zone_when_check_form_then_kept():
    assert check({"number": RU_MOBILE, "time_zone": "Europe/Moscow"}).time_zone == "Europe/Moscow"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/Moscow\x00",
                                  "x" * 300, "", 5])
def test_given_invalid_time_zone_when_check_form_then_dropped(zone):
    assert check({"number": RU_MOBILE, "time_zone": zone}).time_zone is None


@pytest.mark.parametrize("raw,region,expected", [
    ("+12125550100", None, "+12125550100"),
    ("(212) 555-0100", "US", "+12125550100"),
    ("8 916 123-45-67", "RU", "+79161234567"),
    ("2125550100", None, "2125550100"),       # national, no country known: kept
    ("anonymous", "US", "anonymous"),
    ("201", "US", "201"),                     # an extension: kept
])
def test_given_caller_id_when_normalised_then_e164_or_left_as_it_is(raw, region, expected):
    from ari_app.callback.intake import to_e164

    assert to_e164(raw, region) == expected
