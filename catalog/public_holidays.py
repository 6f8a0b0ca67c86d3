"""A country's public holidays for any year, from the holidays package."""

from __future__ import annotations

import difflib
import re
from datetime import date

import holidays

from catalog.models import Holidays

#: an ISO 3166 code, as the package's list of countries names them (it also takes class names)
_CODE = re.compile(r"[A-Z]{2,3}", re.ASCII)


def region_problem(country: str, subdivision: str | None) -> tuple[str, str, str] | None:
    """Return (key, message, hint) when the holidays package does not know the region, else None."""
    if _CODE.fullmatch(country):  # the region's module alone (listing them all takes 0.1 s)
        try:
            holidays.country_holidays(country, subdiv=subdivision, years=())
            return None
        except NotImplementedError:  # the package's word for an unknown country or subdivision
            pass
    known = holidays.list_supported_countries()
    if country not in known:
        return "country", f"unknown country {country}", _closest(
            country.upper(), known, "use a two-letter ISO 3166 code such as NL or DE")
    subdivisions = known[country]
    listed = ", ".join(subdivisions[:8]) + (", ..." if len(subdivisions) > 8 else "")
    return "subdivision", f"country {country} has no subdivision {subdivision}", _closest(
        str(subdivision), subdivisions, f"known: {listed}" if listed else "leave it out")


def country_days(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    """Return a country's public holidays in one year, by date."""
    return dict(holidays.country_holidays(country, subdiv=subdivision, years=year).items())


def days_off(spec: Holidays, year: int) -> frozenset[date]:
    """Return the days off in one year: the country's, less `remove`, plus `add`."""
    days = set(country_days(spec.country, spec.subdivision, year)) if spec.country else set()
    days.difference_update(spec.remove)
    days.update(h.day for h in spec.add if h.day.year == year)
    return frozenset(days)


def _closest(name: str, known: list[str] | dict[str, list[str]], otherwise: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]}?" if close else otherwise
