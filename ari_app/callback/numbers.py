"""The one check every number the dialer may call passes: typed on the web form or the keypad,
a caller ID, a transfer's fallback, a supervisor's promise, the REST API. It runs where a
request is accepted (callback/service.py) and again in the dialer just before the originate.
Pure: real phonenumbers metadata, no I/O.

Refused, whatever the policy says (toll fraud: a callback is a call the company pays for):
- emergency numbers (911, 112, 999 ... in the allowed countries' metadata);
- premium-rate, shared-cost, service (UAN), voicemail-access and pager numbers;
- non-geographic numbers (+800, +808, +870, +881, +882, +883, +979: satellite phones,
  international premium and shared-cost services);
- `HIGH_COST`: destinations known for one-ring scams and revenue-share fraud (the Caribbean
  NANP area codes such as +1 809 and +1 876, +252 Somalia, +675 Papua New Guinea ...), unless
  their country is listed in allowed_countries explicitly;
- the policy's refused prefixes, and every country not in allowed_countries. An empty list
  allows nothing: Policy fills it with the company's country (business_hours.time_zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo
from phonenumbers import timezone as number_zones

if TYPE_CHECKING:
    from ari_app.policy import CallbackPolicy

__all__ = ["HIGH_COST", "NumberFacts", "NumberRules", "RefusedNumber", "check_number",
           "number_facts"]

# where a short number is checked for being an emergency one when the rules name no country
EMERGENCY_REGIONS = ("US", "CA", "GB", "IE", "RU", "DE", "FR", "ES", "IT", "IN", "AU", "NZ")
REFUSED_TYPES = {PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
                 PhoneNumberType.SHARED_COST: "a shared-cost number",
                 PhoneNumberType.UAN: "a service number",
                 PhoneNumberType.VOICEMAIL: "a voicemail access number",
                 PhoneNumberType.PAGER: "a pager number"}
# Refused unless the number's country is in allowed_countries by name (E.164 prefix -> why).
_CARIBBEAN = ("242", "246", "264", "268", "284", "340", "345", "441", "473", "649", "658",
              "664", "670", "671", "684", "721", "758", "767", "784", "787", "809", "829",
              "849", "868", "869", "876", "939")
HIGH_COST: dict[str, str] = {
    **{f"+1{area}": "a Caribbean or Pacific number of the +1 area" for area in _CARIBBEAN},
    "+252": "a number in Somalia", "+675": "a number in Papua New Guinea",
    "+682": "a number in the Cook Islands", "+688": "a number in Tuvalu",
    "+690": "a number in Tokelau", "+247": "a number on Ascension Island",
    "+290": "a number on Saint Helena", "+269": "a number in the Comoros",
    "+222": "a number in Mauritania", "+239": "a number in Sao Tome and Principe",
    "+992": "a number in Tajikistan",
}


class RefusedNumber(ValueError):
    """Not a number we may call. `message` is for the customer; error_id is kebab-case:
    invalid-number (not a callable phone number) or refused-number (one we will not call)."""

    def __init__(self, message: str, error_id: str = "refused-number") -> None:
        super().__init__(message)
        self.message, self.error_id = message, error_id


@dataclass(frozen=True)
class NumberRules:
    """What may be called back. Serializable (a hold snapshot carries it)."""
    allowed_countries: tuple[str, ...] = ()   # ISO 3166; empty: nothing may be called
    refused_prefixes: tuple[str, ...] = ()     # E.164 prefixes ("+1900")

    @property
    def region(self) -> str | None:
        """Where a national number ("212 555 0100", "8 916 ...") is read: the first allowed
        country."""
        return self.allowed_countries[0] if self.allowed_countries else None

    @classmethod
    def from_policy(cls, callback: CallbackPolicy) -> NumberRules:
        return cls(tuple(callback.allowed_countries), tuple(callback.refused_prefixes))

    def to_dict(self) -> dict:
        return {"allowed_countries": list(self.allowed_countries),
                "refused_prefixes": list(self.refused_prefixes)}

    @classmethod
    def from_dict(cls, data: dict) -> NumberRules:
        return cls(tuple(data.get("allowed_countries") or ()),
                   tuple(data.get("refused_prefixes") or ()))


@dataclass(frozen=True)
class NumberFacts:
    """What the metadata says of one number, looked up once: the lookups are what a web
    form's request costs most (check_number reads them, then the request's time zone)."""
    e164: str
    country: str                # ISO 3166, "001" for a non-geographic number, "" unknown
    kind: int                   # a PhoneNumberType; UNKNOWN: not a valid number
    zones: tuple[str, ...]      # its time zones, none when the metadata knows none

    @classmethod
    def of(cls, number: phonenumbers.PhoneNumber) -> NumberFacts:
        country = phonenumbers.region_code_for_number(number) or ""
        kind = phonenumbers.number_type(number)  # UNKNOWN exactly when not is_valid_number
        if kind == PhoneNumberType.UNKNOWN:
            zones: tuple[str, ...] = ()
        elif phonenumbers.is_number_type_geographical(kind, number.country_code):
            zones = tuple(number_zones.time_zones_for_geographical_number(number))
        else:  # a mobile or toll-free number of a country without geographic mobiles
            zones = tuple(number_zones.time_zones_for_number(number))
        return cls(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                   country, kind, tuple(z for z in zones if z != "Etc/Unknown"))


_FACTS: dict[str, NumberFacts] = {}  # by E.164, the last _FACTS_KEPT looked up
_FACTS_KEPT = 4096


def number_facts(e164: str) -> NumberFacts | None:
    """The facts of an E.164 number (None: not one), kept from its check when it had one."""
    facts = _FACTS.get(e164)
    if facts is None:
        try:
            facts = _remember(NumberFacts.of(phonenumbers.parse(e164)))
        except phonenumbers.NumberParseException:
            return None
    return facts


def _remember(facts: NumberFacts) -> NumberFacts:
    if len(_FACTS) >= _FACTS_KEPT:
        _FACTS.pop(next(iter(_FACTS), ""), None)  # the oldest
    _FACTS[facts.e164] = facts
    return facts


def check_number(raw: str, rules: NumberRules) -> str:
    """`raw` (as typed or sent) -> the E.164 number to dial, or RefusedNumber saying why not.
    Pure, so the last answers are kept: a web form's number is checked by check_form, then
    again where it is accepted, then by the dialer (the metadata lookups are what cost)."""
    e164, refused = _checked(raw, rules)
    if refused is not None:
        raise RefusedNumber(*refused)
    return e164


@lru_cache(maxsize=4096)
def _checked(raw: str, rules: NumberRules) -> tuple[str, tuple[str, str] | None]:
    try:
        return _check(raw, rules), None
    except RefusedNumber as refused:  # a fresh exception each time, never a cached one
        return "", (refused.message, refused.error_id)


def _check(raw: str, rules: NumberRules) -> str:
    raw = (raw or "").strip()
    if not raw or len(raw) > 32:
        raise RefusedNumber("This is not a phone number. Please enter it with the country "
                            "code, for example +1 212 555 0100.", "invalid-number")
    if _emergency(raw, rules.allowed_countries or EMERGENCY_REGIONS):
        raise RefusedNumber("We cannot call emergency numbers.")
    try:
        number = phonenumbers.parse(raw, rules.region)
    except phonenumbers.NumberParseException:
        raise RefusedNumber("This is not a phone number. Please enter it with the country "
                            "code, for example +1 212 555 0100.", "invalid-number") from None
    facts = _remember(NumberFacts.of(number))
    e164, country = facts.e164, facts.country
    if _emergency(raw, (country or rules.region or "US",), prefix_too=True):
        raise RefusedNumber("We cannot call emergency numbers.")
    if facts.kind == PhoneNumberType.UNKNOWN:  # not a valid number
        if country == "001" or phonenumbers.region_code_for_country_code(
                number.country_code) == "001":
            raise RefusedNumber("We cannot call satellite or international service numbers.")
        raise RefusedNumber("This phone number is not valid. Please check it.", "invalid-number")
    if facts.kind in REFUSED_TYPES:
        raise RefusedNumber(f"We cannot call {REFUSED_TYPES[facts.kind]}.")
    if country == "001":  # +800 +808 +870 +881 +882 +883 +979: no country, high cost
        raise RefusedNumber("We cannot call satellite or international service numbers.")
    for prefix in rules.refused_prefixes:
        if e164.startswith(prefix):
            raise RefusedNumber(f"We cannot call numbers starting with {prefix}.")
    if country not in rules.allowed_countries:
        for prefix, what in HIGH_COST.items():
            if e164.startswith(prefix):
                raise RefusedNumber(f"We cannot call {what}.")
        if not rules.allowed_countries:
            raise RefusedNumber("We cannot take callback requests: no country is set up for "
                                "callbacks.")
        raise RefusedNumber("We can only call numbers in "
                            f"{', '.join(rules.allowed_countries)}.")
    return e164


def _emergency(raw: str, regions: tuple[str, ...], prefix_too: bool = False) -> bool:
    """An emergency number as dialled ("911", "112"; with prefix_too also "9111" that would
    reach it). A "+" number is never one: it names its country (phonenumbers says so too,
    after reading it: the web form's numbers mostly start with "+")."""
    if raw.startswith("+"):
        return False
    return any(r and r != "001" and (shortnumberinfo.is_emergency_number(raw, r) or (
        prefix_too and shortnumberinfo.connects_to_emergency_number(raw, r))) for r in regions)
