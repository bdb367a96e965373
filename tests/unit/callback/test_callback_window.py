"""window.py: when a callback may ring, and the window a customer is promised.

Pure functions, fixed clock: every moment is an aware datetime around Wednesday 2026-11-25.
The company keeps the default hours (mon-fri 09:00-18:00 UTC, weekends closed) and the default
quiet hours (21:00-09:00 in the customer's zone) unless a test says otherwise.
New York is UTC-5 in November, so 09:00 New York is 14:00 UTC.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ari_app.callback.window import (
    PromiseWindow,
    callable_at,
    customer_zone,
    next_callable,
    promise_window,
)
from ari_app.policy import BusinessHours, Policy, QuietHours

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
MOSCOW = ZoneInfo("Europe/Moscow")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14

POLICY = Policy.model_validate({"company": "X"})
BUSINESS = POLICY.business_hours           # mon-fri 09:00-18:00 UTC
QUIET = POLICY.quiet_hours                 # 21:00-09:00, customer's zone
ALWAYS_OPEN = BusinessHours.model_validate(
    {day: "00:00-23:59" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
NEVER_OPEN = BusinessHours.model_validate(
    {day: "closed" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in November 2026, UTC (25 = Wednesday, 27 = Friday, 30 = Monday)."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=timezone.utc)


def epoch(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return utc(day, hour, minute, second).timestamp()


def promise(now: float, **kwargs) -> PromiseWindow | None:
    kwargs.setdefault("zone", UTC)
    kwargs.setdefault("business", BUSINESS)
    kwargs.setdefault("quiet", QUIET)
    kwargs.setdefault("backlog", 0)
    kwargs.setdefault("operators", 1)
    kwargs.setdefault("minutes_per_call", 5)
    kwargs.setdefault("width_minutes", 30)
    return promise_window(now, **kwargs)


# --- the policy sections the tests rely on ---------------------------------------------------
def test_given_default_policy_when_read_then_weekdays_nine_to_six_utc_and_quiet_nine_pm_to_nine_am():
    assert BUSINESS.time_zone == "UTC"
    assert str(BUSINESS.wed) == "09:00-18:00" and BUSINESS.sat is None and BUSINESS.sun is None
    assert (f"{QUIET.start:%H:%M}", f"{QUIET.end:%H:%M}") == ("21:00", "09:00")


# --- callable_at -----------------------------------------------------------------------------
def test_given_business_hours_and_daytime_for_customer_when_callable_at_then_true():
    assert callable_at(utc(25, 15), NEW_YORK, BUSINESS, QUIET)  # 10:00 New York
    assert callable_at(utc(25, 15), UTC, BUSINESS, QUIET)


def test_given_business_hours_but_early_morning_for_customer_when_callable_at_then_false():
    # 13:30 UTC is open for the company, but 08:30 in New York is still quiet.
    assert not callable_at(utc(25, 13, 30), NEW_YORK, BUSINESS, QUIET)
    assert callable_at(utc(25, 13, 30), UTC, BUSINESS, QUIET)


def test_given_quiet_hours_end_for_customer_when_callable_at_then_true_from_that_minute():
    assert not callable_at(utc(25, 13, 59, 59), NEW_YORK, BUSINESS, QUIET)
    assert callable_at(utc(25, 14), NEW_YORK, BUSINESS, QUIET)  # 09:00 New York


def test_given_eleven_pm_in_new_york_when_callable_at_then_false_though_company_open():
    moment = utc(26, 4)  # Thursday 04:00 UTC = Wednesday 23:00 New York
    assert moment.astimezone(NEW_YORK).hour == 23
    assert not callable_at(moment, NEW_YORK, ALWAYS_OPEN, QUIET)
    assert callable_at(moment, TOKYO, ALWAYS_OPEN, QUIET)  # 13:00 in Tokyo


def test_given_outside_business_hours_when_callable_at_then_false_though_customer_awake():
    # 19:00 UTC: 14:00 in New York, but the company closed at 18:00.
    assert not callable_at(utc(25, 19), NEW_YORK, BUSINESS, QUIET)
    assert not callable_at(utc(25, 8, 59), UTC, BUSINESS, QUIET)


def test_given_business_hours_in_company_zone_when_callable_at_then_read_in_that_zone():
    moscow_hours = BusinessHours.model_validate({"time_zone": "Europe/Moscow"})
    # 07:00 UTC = 10:00 Moscow: open for the company; 10:00 for a Moscow customer too.
    assert callable_at(utc(25, 7), MOSCOW, moscow_hours, QUIET)
    # 16:00 UTC = 19:00 Moscow: closed, though 16:00 for a UTC customer.
    assert not callable_at(utc(25, 16), UTC, moscow_hours, QUIET)


def test_given_quiet_hours_wrapping_midnight_when_callable_at_then_both_sides_of_midnight_quiet():
    quiet = QuietHours.model_validate({"start": "22:30", "end": "07:15"})
    assert callable_at(utc(25, 22, 29), UTC, ALWAYS_OPEN, quiet)
    assert not callable_at(utc(25, 22, 30), UTC, ALWAYS_OPEN, quiet)
    assert not callable_at(utc(25, 23, 59), UTC, ALWAYS_OPEN, quiet)
    assert not callable_at(utc(26, 0, 0), UTC, ALWAYS_OPEN, quiet)
    assert not callable_at(utc(26, 7, 14), UTC, ALWAYS_OPEN, quiet)
    assert callable_at(utc(26, 7, 15), UTC, ALWAYS_OPEN, quiet)


def test_given_quiet_hours_within_one_day_when_callable_at_then_only_that_span_quiet():
    quiet = QuietHours.model_validate({"start": "12:00", "end": "13:00"})
    assert callable_at(utc(25, 11, 59), UTC, ALWAYS_OPEN, quiet)
    assert not callable_at(utc(25, 12, 30), UTC, ALWAYS_OPEN, quiet)
    assert callable_at(utc(25, 13), UTC, ALWAYS_OPEN, quiet)
    assert callable_at(utc(25, 23), UTC, ALWAYS_OPEN, quiet)


def test_given_weekend_closed_when_callable_at_saturday_noon_then_false():
    assert not callable_at(utc(28, 12), UTC, BUSINESS, QUIET)  # Saturday


# --- next_callable ---------------------------------------------------------------------------
def test_given_already_callable_when_next_callable_then_same_moment_unrounded():
    start = utc(25, 10, 3, 27)
    assert next_callable(start, UTC, BUSINESS, QUIET) == start


def test_given_before_opening_when_next_callable_then_opening_on_a_five_minute_mark():
    assert next_callable(utc(25, 8, 57, 13), UTC, BUSINESS, QUIET) == utc(25, 9)


def test_given_start_on_a_five_minute_mark_when_not_callable_then_next_mark_not_same():
    assert next_callable(utc(25, 8, 55), UTC, BUSINESS, QUIET) == utc(25, 9)


def test_given_customer_still_quiet_when_next_callable_then_first_mark_after_quiet_ends():
    # 13:52:40 UTC = 08:52 New York: rounds to 13:55 (08:55, quiet), then 14:00 (09:00).
    found = next_callable(utc(25, 13, 52, 40), NEW_YORK, BUSINESS, QUIET)
    assert found == utc(25, 14)
    assert found.astimezone(NEW_YORK).hour == 9


def test_given_off_grid_start_when_not_callable_then_result_on_five_minute_grid():
    found = next_callable(utc(25, 18, 1, 59), UTC, BUSINESS, QUIET)
    assert found is not None
    assert found.minute % 5 == 0 and found.second == 0 and found.microsecond == 0


def test_given_friday_after_closing_when_next_callable_then_monday_opening():
    found = next_callable(utc(27, 18), UTC, BUSINESS, QUIET)
    assert found == utc(30, 9)
    assert found.strftime("%a") == "Mon"


def test_given_saturday_for_new_york_customer_when_next_callable_then_monday_nine_new_york():
    assert next_callable(utc(28, 12), NEW_YORK, BUSINESS, QUIET) == utc(30, 14)


def test_given_evening_when_next_callable_then_next_morning():
    assert next_callable(utc(25, 18, 30), UTC, BUSINESS, QUIET) == utc(26, 9)


def test_given_only_monday_open_when_next_callable_from_monday_evening_then_next_monday():
    mondays = BusinessHours.model_validate({day: "closed" for day in ("tue", "wed", "thu", "fri")})
    assert next_callable(utc(23, 18), UTC, mondays, QUIET) == utc(30, 9)


def test_given_business_closed_every_day_when_next_callable_then_none():
    assert next_callable(utc(25, 10), UTC, NEVER_OPEN, QUIET) is None


def test_given_business_hours_always_in_customers_night_when_next_callable_then_none():
    # 09:00-18:00 UTC is 23:00-08:00 at UTC+14: every open minute is quiet for this customer.
    assert next_callable(utc(25, 10), KIRITIMATI, BUSINESS, QUIET) is None


# --- promise_window --------------------------------------------------------------------------
def test_given_no_backlog_when_callable_now_then_window_starts_now_and_is_width_long():
    window = promise(epoch(25, 10), width_minutes=30)
    assert window == PromiseWindow(utc(25, 10), utc(25, 10, 30))
    assert window.as_epochs() == (epoch(25, 10), epoch(25, 10, 30))


def test_given_window_when_promised_then_times_are_utc():
    window = promise(epoch(25, 15), zone=NEW_YORK)
    assert window is not None
    assert window.earliest.utcoffset() == timedelta(0) and window.latest.utcoffset() == timedelta(0)


def test_given_backlog_and_operators_when_promise_then_start_after_backlog_share():
    # 6 requests x 5 minutes / 2 operators = 15 minutes.
    window = promise(epoch(25, 10), backlog=6, minutes_per_call=5, operators=2, width_minutes=45)
    assert window == PromiseWindow(utc(25, 10, 15), utc(25, 11))


def test_given_no_operators_when_promise_then_counted_as_one():
    window = promise(epoch(25, 10), backlog=6, minutes_per_call=5, operators=0)
    assert window is not None and window.earliest == utc(25, 10, 30)
    assert window == promise(epoch(25, 10), backlog=6, minutes_per_call=5, operators=1)


def test_given_backlog_past_closing_when_promise_then_next_business_morning():
    # 17:30 + 12 x 5 minutes = 18:30: closed, so Thursday 09:00.
    window = promise(epoch(25, 17, 30), backlog=12, minutes_per_call=5)
    assert window == PromiseWindow(utc(26, 9), utc(26, 9, 30))


def test_given_preferred_time_later_than_now_when_promise_then_window_starts_then():
    window = promise(epoch(25, 10), preferred=epoch(26, 11))
    assert window == PromiseWindow(utc(26, 11), utc(26, 11, 30))


def test_given_preferred_time_in_customers_quiet_hours_when_promise_then_moved_to_morning():
    # Thursday 13:00 UTC = 08:00 New York: quiet until 09:00 New York (14:00 UTC).
    window = promise(epoch(25, 10), zone=NEW_YORK, preferred=epoch(26, 13))
    assert window is not None and window.earliest == utc(26, 14)


def test_given_preferred_time_earlier_than_now_when_promise_then_ignored():
    window = promise(epoch(25, 10), preferred=epoch(25, 9, 15))
    assert window == PromiseWindow(utc(25, 10), utc(25, 10, 30))


def test_given_outside_hours_when_promise_then_earliest_next_opening_and_latest_width_later():
    window = promise(epoch(27, 20), width_minutes=60)  # Friday evening
    assert window == PromiseWindow(utc(30, 9), utc(30, 10))


def test_given_never_open_when_promise_then_none():
    assert promise(epoch(25, 10), business=NEVER_OPEN) is None


# --- customer_zone ---------------------------------------------------------------------------
def test_given_zone_from_customer_when_customer_zone_then_it_wins():
    zone = customer_zone(("Europe/Moscow",), "Asia/Tokyo", UTC)
    assert zone == TOKYO


def test_given_single_candidate_when_customer_zone_then_that_zone():
    assert customer_zone(("America/New_York",), None, UTC) == NEW_YORK


def test_given_many_candidates_including_company_zone_when_customer_zone_then_company_zone():
    candidates = ("Europe/Kaliningrad", "Europe/Moscow", "Asia/Yekaterinburg")
    assert customer_zone(candidates, None, MOSCOW) == MOSCOW


def test_given_many_candidates_without_company_zone_when_customer_zone_then_first_candidate():
    candidates = ("Europe/Kaliningrad", "Europe/Moscow", "Asia/Yekaterinburg")
    assert customer_zone(candidates, None, UTC) == ZoneInfo("Europe/Kaliningrad")


def test_given_no_candidates_when_customer_zone_then_company_zone():
    assert customer_zone((), None, MOSCOW) == MOSCOW


def test_given_empty_given_zone_when_customer_zone_then_treated_as_none():
    assert customer_zone(("America/New_York",), "", UTC) == NEW_YORK


def test_given_many_candidates_and_hours_when_customer_zone_then_the_most_callable_zone():
    # US toll-free (+1 800): every US zone. America/Adak (UTC-10) never overlaps 09:00-18:00
    # UTC with 09:00-21:00 local; New York overlaps 14:00-18:00 UTC every weekday
    candidates = ("America/Adak", "America/Anchorage", "America/New_York", "America/Chicago")
    zone = customer_zone(candidates, None, UTC, business=BUSINESS, quiet=QUIET)
    assert zone == NEW_YORK
    assert promise(epoch(25, 10), zone=zone) is not None


def test_given_toll_free_and_jamaican_numbers_when_request_zone_then_a_zone_of_their_country():
    from ari_app.callback.service import CallbackRequest, request_zone

    assert request_zone(CallbackRequest("+18762345678", "web"), POLICY).key == "America/Jamaica"
    toll_free = request_zone(CallbackRequest("+18005550100", "web"), POLICY)
    assert toll_free.key.startswith("America/") and toll_free.key != "America/Adak"
    assert promise(epoch(25, 10), zone=toll_free) is not None
    new_york = Policy.model_validate({"company": "X",
                                      "business_hours": {"time_zone": "America/New_York"}})
    assert request_zone(CallbackRequest("+18005550100", "web"), new_york) == NEW_YORK
