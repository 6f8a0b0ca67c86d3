"""deskflow.yaml's holidays: a country's public holidays for every year, dates added and removed."""

from __future__ import annotations

from datetime import date

import pytest

from catalog.loader import load_catalog
from catalog.models import Holiday, Holidays

HEAD = ("kind: Settings\nname: T\ntime_zone: Europe/Amsterdam\n"
        "business_hours: {days: [mon, tue, wed, thu, fri], start: '09:00', end: '17:00'}\n")
TODAY = date(2026, 11, 27)


def load(tmp_path, holidays: str, today: date = TODAY):
    (tmp_path / "deskflow.yaml").write_text(HEAD + holidays)
    return load_catalog(tmp_path, today=today)


def test_a_country_with_dates_added_and_removed_becomes_the_model(tmp_path):
    catalog = load(tmp_path, "holidays:\n  country: NL\n"
                             "  add: [{date: '2026-05-05', name: Liberation Day}]\n"
                             "  remove: ['2026-05-25']\n")
    assert catalog.problems == ()
    assert catalog.settings.holidays == Holidays(
        "NL", None, (Holiday(date(2026, 5, 5), "Liberation Day"),), (date(2026, 5, 25),))


def test_the_list_form_still_means_dates_added(tmp_path):
    catalog = load(tmp_path, "holidays:\n  - {date: '2028-01-01', name: New Year}\n")
    assert catalog.problems == ()
    assert catalog.settings.holidays == Holidays(add=(Holiday(date(2028, 1, 1), "New Year"),))


@pytest.mark.parametrize(("holidays", "expected"), [
    ("holidays: {country: XX}\n",
     "deskflow.yaml:5:21: holidays.country: unknown country XX "
     "(use a two-letter ISO 3166 code such as NL or DE)"),
    ("holidays: {country: Netherlands}\n",
     "deskflow.yaml:5:21: holidays.country: unknown country Netherlands "
     "(use a two-letter ISO 3166 code such as NL or DE)"),
    ("holidays: {country: nl}\n",
     "deskflow.yaml:5:21: holidays.country: unknown country nl (did you mean NL?)"),
    ("holidays: {country: DE, subdivision: BYY}\n",
     "deskflow.yaml:5:38: holidays.subdivision: country DE has no subdivision BYY (did you mean BY?)"),
    ("holidays: {subdivision: BY}\n",
     "deskflow.yaml:5:25: holidays.subdivision: subdivision needs a country (set holidays.country, e.g. NL)"),
    ("holidays: {remove: ['2026-05-25']}\n",
     "deskflow.yaml:5:20: holidays.remove: remove needs a country (set holidays.country, e.g. NL)"),
    ("holidays:\n  country: NL\n  add: [{date: '2026-02-30'}]\n",
     "deskflow.yaml:7:16: holidays.add[0].date: '2026-02-30' is not a 'date'"),
])
def test_unknown_regions_and_bad_dates_are_errors_at_the_line(tmp_path, holidays, expected):
    assert [str(e) for e in load(tmp_path, holidays).errors] == [expected]


def test_removing_a_day_that_is_no_public_holiday_warns(tmp_path):
    catalog = load(tmp_path, "holidays:\n  country: NL\n  remove: ['2026-06-01']\n")
    assert [str(w) for w in catalog.warnings] == [
        "deskflow.yaml:7:12: holidays.remove[0]: 2026-06-01 is not a public holiday in NL "
        "(remove lists the country's holidays on which the desk works)"]


LISTED = ("holidays:\n  - {date: '2027-12-26', name: Boxing Day}\n"
          "  - {date: '2027-04-27', name: King's Day}\n")


@pytest.mark.parametrize(("today", "expected"), [
    (date(2026, 12, 27), "deskflow.yaml:6:12: holidays[0].date: the holidays end on 2027-12-26, less than "
     "a year from today: after that, business time runs on public holidays (add the coming year's "
     "holidays, or set holidays.country to follow a country's public holidays)"),
    (date(2028, 1, 2), "deskflow.yaml:6:12: holidays[0].date: the holidays ended on 2027-12-26: after "
     "that, business time runs on public holidays (add the coming year's holidays, or set "
     "holidays.country to follow a country's public holidays)"),
])
def test_validate_warns_when_listed_holidays_run_out_within_a_year(tmp_path, today, expected):
    catalog = load(tmp_path, LISTED, today)
    assert catalog.ok
    assert [str(w) for w in catalog.warnings] == [expected]


def test_listed_holidays_that_last_a_year_more_do_not_warn(tmp_path):
    assert load(tmp_path, LISTED, date(2026, 12, 26)).problems == ()


def test_a_country_never_runs_out(tmp_path):
    catalog = load(tmp_path, "holidays:\n  country: NL\n  add: [{date: '2026-05-05'}]\n", date(2040, 1, 1))
    assert catalog.problems == ()
