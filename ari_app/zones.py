"""Which country a time zone is in, from the tz database's own table (zone.tab, installed with
the system's zoneinfo): "America/New_York" -> "US". Used for the company's country (the one
callbacks may dial when the policy lists none) and to keep a customer's zone inside their
number's country (+1 876 is Jamaica, not America/Adak)."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from pathlib import Path

__all__ = ["country_of_zone", "zones_of_country"]


@lru_cache(maxsize=1)
def _zone_table() -> dict[str, str]:
    """zone -> ISO 3166 country code, for every zone of zone.tab (links such as "US/Eastern"
    resolve through the file they point to: see country_of_zone)."""
    table: dict[str, str] = {}
    for root in zoneinfo.TZPATH:
        path = Path(root) / "zone.tab"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) >= 3:
                table.setdefault(parts[2], parts[0])
        break
    return table


def country_of_zone(zone: str) -> str | None:
    """The country of an IANA zone; None for zones in no country (UTC, Etc/GMT+3) or unknown."""
    table = _zone_table()
    if zone in table:
        return table[zone]
    for root in zoneinfo.TZPATH:  # a link ("US/Eastern"): the zone whose file it is
        path = Path(root) / zone
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        name = str(target.relative_to(Path(root).resolve())) if target.is_relative_to(
            Path(root).resolve()) else ""
        return table.get(name)
    return None


@lru_cache(maxsize=None)  # a few hundred countries; read for every callback request
def zones_of_country(country: str) -> tuple[str, ...]:
    return tuple(z for z, c in _zone_table().items() if c == country)
