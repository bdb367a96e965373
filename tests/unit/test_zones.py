"""zones.py: a time zone's country from the tz database's zone.tab."""

import pytest

from ari_app.zones import country_of_zone, zones_of_country


@pytest.mark.parametrize("zone,country", [
    ("America/New_York", "US"), ("Europe/Moscow", "RU"), ("Europe/London", "GB"),
    ("America/Jamaica", "JM"), ("US/Eastern", "US"),  # a link: the zone it points to
    ("UTC", None), ("Etc/GMT+3", None), ("No/Such_Zone", None),
])
def test_given_zone_when_country_of_zone_then_its_country_or_none(zone, country):
    assert country_of_zone(zone) == country


def test_given_country_when_zones_of_country_then_its_zones_only():
    assert zones_of_country("JM") == ("America/Jamaica",)
    assert "America/New_York" in zones_of_country("US")
    assert "America/Jamaica" not in zones_of_country("US")
