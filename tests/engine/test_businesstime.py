"""Business time counts only working hours, in the desk's time zone, across weekends, holidays and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.models import Duration, Holiday, Holidays, Settings
from engine.businesstime import BusinessCalendar
from engine.errors import BusinessTimeError

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")

AMS = BusinessCalendar(Settings(time_zone="Europe/Amsterdam", working_days=(0, 1, 2, 3, 4),
                                day_start=time(9), day_end=time(17)))
NYC = BusinessCalendar(Settings(time_zone="America/New_York", working_days=(0, 1, 2, 3, 4),
                                day_start=time(9), day_end=time(17)))
CHRISTMAS = BusinessCalendar(Settings(
    time_zone="Europe/Amsterdam", day_start=time(9), day_end=time(17),
    holidays=Holidays(add=(Holiday(date(2026, 12, 25), "Christmas Day"),
                           Holiday(date(2026, 12, 28), "Bridge day")))))
#: the Dutch public holidays of every year, Liberation Day 2026 added, Whit Monday 2026 worked
DUTCH = BusinessCalendar(Settings(
    time_zone="Europe/Amsterdam", day_start=time(9), day_end=time(17),
    holidays=Holidays(country="NL", add=(Holiday(date(2026, 5, 5), "Liberation Day"),),
                      remove=(date(2026, 5, 25),))))


def ams(*args: int) -> datetime:
    """Return a wall-clock time in Amsterdam as an aware UTC datetime."""
    return datetime(*args, tzinfo=AMSTERDAM).astimezone(UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def d(text: str) -> Duration:
    return Duration.parse(text)


# ---------------------------------------------------------------- add

@pytest.mark.parametrize(("start", "duration", "expected"), [
    # Friday 16:00 + 2 business hours: one hour on Friday, one on Monday
    (ams(2026, 1, 9, 16), "2 business hours", ams(2026, 1, 12, 10)),
    # before hours: counting starts at 09:00
    (ams(2026, 1, 12, 7, 30), "30 business minutes", ams(2026, 1, 12, 9, 30)),
    # after hours: counting starts the next morning
    (ams(2026, 1, 12, 18), "1 business hour", ams(2026, 1, 13, 10)),
    # on a Sunday: counting starts Monday morning
    (ams(2026, 1, 11, 14), "1 business hour", ams(2026, 1, 12, 10)),
    # a duration that exactly fills the day ends at 17:00, not at 09:00 the next day
    (ams(2026, 1, 12, 9), "8 business hours", ams(2026, 1, 12, 17)),
    (ams(2026, 1, 12, 17), "1 business minute", ams(2026, 1, 13, 9, 1)),
    # a business day is one working day (8 hours), over the weekend
    (ams(2026, 1, 14, 13), "3 business days", ams(2026, 1, 19, 13)),
    (ams(2026, 1, 9, 17), "1 business day", ams(2026, 1, 12, 17)),
    # a business week is five working days
    (ams(2026, 1, 14, 13), "1 business week", ams(2026, 1, 21, 13)),
    (ams(2026, 1, 14, 13), "2 business weeks", ams(2026, 1, 28, 13)),
    # seconds are kept
    (ams(2026, 1, 12, 16, 59, 30), "1 business minute", ams(2026, 1, 13, 9, 0, 30)),
])
def test_add_business_time(start, duration, expected):
    assert AMS.add(start, d(duration)) == expected


@pytest.mark.parametrize(("start", "duration", "expected"), [
    # Thursday 16:00 + 2 business hours skips Christmas (Fri), the weekend and Monday 28th
    (ams(2026, 12, 24, 16), "2 business hours", ams(2026, 12, 29, 10)),
    (ams(2026, 12, 25, 10), "1 business hour", ams(2026, 12, 29, 10)),
    (ams(2026, 12, 23, 13), "2 business days", ams(2026, 12, 29, 13)),
])
def test_add_skips_holidays(start, duration, expected):
    assert CHRISTMAS.add(start, d(duration)) == expected


@pytest.mark.parametrize(("duration", "expected"), [
    ("1 day", ams(2026, 1, 10, 16)),
    ("24 hours", ams(2026, 1, 10, 16)),
    ("90 minutes", ams(2026, 1, 9, 17, 30)),
    ("2 weeks", ams(2026, 1, 23, 16)),
])
def test_add_wall_clock_time_ignores_business_hours(duration, expected):
    assert AMS.add(ams(2026, 1, 9, 16), d(duration)) == expected


def test_business_day_and_week_follow_the_configured_hours():
    short = BusinessCalendar(Settings(time_zone="Europe/Amsterdam", working_days=(0, 1, 2, 3),
                                      day_start=time(10), day_end=time(14)))
    assert (short.day_minutes, short.week_minutes) == (240, 960)
    assert short.business_minutes(d("3 business days")) == 720
    # Monday 10:00 + 1 business week (4 days of 4 hours) = Thursday 14:00
    assert short.add(ams(2026, 1, 12, 10), d("1 business week")) == ams(2026, 1, 15, 14)
    # Thursday 13:00 + 1 business day: one hour Thursday, Friday is off, three hours Monday
    assert short.add(ams(2026, 1, 15, 13), d("1 business day")) == ams(2026, 1, 19, 13)


def test_end_of_24_00_means_midnight():
    always = BusinessCalendar(Settings(time_zone="UTC", working_days=tuple(range(7)),
                                       day_start=time(0), day_end=time(23, 59, 59)))
    assert always.day_minutes == 1440
    assert always.add(utc(2026, 1, 9, 23, 30), d("1 business hour")) == utc(2026, 1, 10, 0, 30)
    assert always.between(utc(2026, 1, 9), utc(2026, 1, 16)) == 7 * 1440


def test_add_minutes_zero_returns_start_and_negative_is_refused():
    saturday = ams(2026, 1, 10, 12)
    assert AMS.add_minutes(saturday, 0) == saturday
    with pytest.raises(BusinessTimeError, match="^business minutes must not be negative, got -1$"):
        AMS.add_minutes(saturday, -1)


def test_results_are_utc():
    result = AMS.add(datetime(2026, 1, 9, 16, tzinfo=AMSTERDAM), d("2 business hours"))
    assert result.tzinfo is UTC
    assert result == utc(2026, 1, 12, 9)


def test_naive_datetimes_are_refused():
    with pytest.raises(BusinessTimeError, match="naive datetime 2026-01-12T10:00:00: business time needs"):
        AMS.add_minutes(datetime(2026, 1, 12, 10), 5)


# ---------------------------------------------------------------- daylight saving time

def test_amsterdam_spring_forward_weekend():
    # Friday 27 March 15:00 CET (+01) + 4 business hours = Monday 30 March 11:00 CEST (+02)
    assert AMS.add(utc(2026, 3, 27, 14), d("4 business hours")) == utc(2026, 3, 30, 9)
    # 24 hours are 24 real hours: Saturday 12:00 CET -> Sunday 13:00 CEST
    assert AMS.add(utc(2026, 3, 28, 11), d("24 hours")) == utc(2026, 3, 29, 11)
    assert AMS.add(utc(2026, 3, 28, 11), d("1 day")) == utc(2026, 3, 29, 11)
    # Friday 09:00 CET to Monday 17:00 CEST is two 8-hour days
    assert AMS.between(utc(2026, 3, 27, 8), utc(2026, 3, 30, 15)) == 960


def test_amsterdam_fall_back_weekend():
    # Friday 23 October 15:00 CEST (+02) + 4 business hours = Monday 26 October 11:00 CET (+01)
    assert AMS.add(utc(2026, 10, 23, 13), d("4 business hours")) == utc(2026, 10, 26, 10)
    # 24 hours are 24 real hours: Saturday 12:00 CEST -> Sunday 11:00 CET
    assert AMS.add(utc(2026, 10, 24, 10), d("24 hours")) == utc(2026, 10, 25, 10)
    assert AMS.between(utc(2026, 10, 23, 7), utc(2026, 10, 26, 16)) == 960


@pytest.mark.parametrize(("start", "end"), [
    (utc(2026, 3, 29, 7), utc(2026, 3, 29, 15)),   # 09:00-17:00 CEST on the spring change
    (utc(2026, 10, 25, 8), utc(2026, 10, 25, 16)),  # 09:00-17:00 CET on the autumn change
])
def test_working_day_on_the_change_is_eight_hours(start, end):
    seven_days = BusinessCalendar(Settings(time_zone="Europe/Amsterdam", working_days=tuple(range(7)),
                                           day_start=time(9), day_end=time(17)))
    assert seven_days.add(start, d("1 business day")) == end
    assert seven_days.between(start - timedelta(hours=3), end + timedelta(hours=3)) == 480
    assert seven_days.is_working_time(start)
    assert not seven_days.is_working_time(start - timedelta(minutes=1))


def test_new_york_spring_forward_weekend():
    # Friday 6 March 15:00 EST (-05) + 4 business hours = Monday 9 March 11:00 EDT (-04)
    assert NYC.add(utc(2026, 3, 6, 20), d("4 business hours")) == utc(2026, 3, 9, 15)
    # Saturday 12:00 EST + 24 hours = Sunday 13:00 EDT
    assert NYC.add(utc(2026, 3, 7, 17), d("24 hours")) == utc(2026, 3, 8, 17)


def test_new_york_fall_back_weekend():
    # Friday 30 October 15:00 EDT (-04) + 4 business hours = Monday 2 November 11:00 EST (-05)
    assert NYC.add(utc(2026, 10, 30, 19), d("4 business hours")) == utc(2026, 11, 2, 16)
    # Saturday 12:00 EDT + 24 hours = Sunday 11:00 EST
    assert NYC.add(utc(2026, 10, 31, 16), d("24 hours")) == utc(2026, 11, 1, 16)


# ---------------------------------------------------------------- is_working_time

@pytest.mark.parametrize(("at", "expected"), [
    (ams(2026, 1, 12, 9), True),
    (ams(2026, 1, 12, 16, 59, 59), True),
    (ams(2026, 1, 12, 17), False),
    (ams(2026, 1, 12, 8, 59), False),
    (ams(2026, 1, 10, 12), False),      # Saturday
    (utc(2026, 1, 12, 8, 30), True),    # 09:30 in Amsterdam
    (utc(2026, 7, 13, 7), True),        # 09:00 CEST
    (utc(2026, 7, 13, 15), False),      # 17:00 CEST
])
def test_is_working_time(at, expected):
    assert AMS.is_working_time(at) is expected


def test_holidays_are_not_working_time():
    assert not CHRISTMAS.is_working_time(ams(2026, 12, 25, 10))
    assert CHRISTMAS.is_working_time(ams(2026, 12, 24, 10))


def test_an_sla_across_kings_day_2028_skips_it():
    # Wednesday 26 April 16:00 + 2 business hours: one hour on Wednesday, none on King's Day
    # (Thursday 27 April), one on Friday; a year no hand-typed list reaches
    assert DUTCH.add(ams(2028, 4, 26, 16), d("2 business hours")) == ams(2028, 4, 28, 10)


def test_a_countrys_holidays_come_for_any_year_asked_about():
    assert not DUTCH.is_working_time(ams(2041, 12, 25, 10))       # Christmas Day, a Wednesday
    assert DUTCH.is_working_time(ams(2041, 12, 24, 10))
    assert date(2061, 1, 1) in DUTCH.holidays_in(2061)


def test_liberation_day_2026_is_kept_by_add():
    assert not DUTCH.is_working_time(ams(2026, 5, 5, 10))
    assert DUTCH.is_holiday(date(2026, 5, 5))


def test_a_removed_public_holiday_is_a_working_day():
    assert DUTCH.is_working_time(ams(2026, 5, 25, 10))            # Whit Monday 2026, removed
    assert not DUTCH.is_working_time(ams(2027, 5, 17, 10))        # Whit Monday 2027, kept


# ---------------------------------------------------------------- between

@pytest.mark.parametrize(("a", "b", "expected"), [
    (ams(2026, 1, 9, 16), ams(2026, 1, 12, 10), 120),      # over a weekend
    (ams(2026, 1, 9, 18), ams(2026, 1, 12, 8), 0),         # Friday evening to Monday early
    (ams(2026, 1, 12, 8), ams(2026, 1, 12, 18), 480),      # a whole day and its edges
    (ams(2026, 1, 12, 10), ams(2026, 1, 19, 10), 2400),    # one week
    (ams(2026, 1, 12, 10), ams(2026, 1, 12, 10), 0),
    (ams(2026, 1, 12, 11), ams(2026, 1, 12, 10), 0),       # b before a
    (ams(2026, 1, 12, 9), ams(2026, 1, 12, 9, 0, 59), 0),  # whole minutes only
])
def test_between(a, b, expected):
    assert AMS.between(a, b) == expected


def test_between_skips_holidays():
    # Thursday 24 December 16:00 to Tuesday 29 December 10:00: one hour either side
    assert CHRISTMAS.between(ams(2026, 12, 24, 16), ams(2026, 12, 29, 10)) == 120
    assert CHRISTMAS.between(ams(2026, 12, 21, 9), ams(2026, 12, 31, 17)) == 7 * 480


def test_waiting_on_the_requester_moves_the_due_time():
    due = ams(2026, 1, 12, 11)
    paused = AMS.between(ams(2026, 1, 9, 16), ams(2026, 1, 12, 10))  # Friday 16:00 to Monday 10:00
    assert AMS.add_minutes(due, paused) == ams(2026, 1, 12, 13)


starts_2026 = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31, 23, 59),
                           timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(calendar=st.sampled_from([AMS, NYC, CHRISTMAS]), start=starts_2026,
       minutes=st.integers(min_value=0, max_value=10_000))
def test_between_inverts_add_minutes(calendar, start, minutes):
    end = calendar.add_minutes(start, minutes)
    assert calendar.between(start, end) == minutes
    if minutes and calendar.is_working_time(start):
        assert end - start >= timedelta(minutes=minutes)


@settings(max_examples=200, deadline=None)
@given(start=starts_2026, minutes=st.integers(min_value=1, max_value=10_000))
def test_add_minutes_ends_inside_or_at_the_end_of_a_working_period(start, minutes):
    end = AMS.add_minutes(start, minutes)
    assert AMS.is_working_time(end - timedelta(microseconds=1))


# ---------------------------------------------------------------- fraction_point

def test_fraction_point():
    # Monday 09:00 to Tuesday 17:00 is 16 business hours; 75% is 12 hours in: Tuesday 13:00
    assert AMS.fraction_point(ams(2026, 1, 12, 9), ams(2026, 1, 13, 17), 0.75) == ams(2026, 1, 13, 13)
    # Friday 13:00 to Monday 13:00 is 8 business hours; 6 hours in: Monday 11:00
    assert AMS.fraction_point(ams(2026, 1, 9, 13), ams(2026, 1, 12, 13), 0.75) == ams(2026, 1, 12, 11)
    assert AMS.fraction_point(ams(2026, 1, 9, 13), ams(2026, 1, 12, 13), 1) == ams(2026, 1, 12, 13)
    assert AMS.fraction_point(ams(2026, 1, 9, 13), ams(2026, 1, 12, 13), 0) == ams(2026, 1, 9, 13)


def test_fraction_point_over_a_holiday_and_a_dst_change():
    start, due = ams(2026, 12, 24, 16), ams(2026, 12, 29, 12)  # 4 business hours
    assert CHRISTMAS.fraction_point(start, due, 0.75) == ams(2026, 12, 29, 11)
    # Friday 15:00 CET + 4 business hours; 75% is 3 hours in: Monday 10:00 CEST
    assert AMS.fraction_point(utc(2026, 3, 27, 14), utc(2026, 3, 30, 9), 0.75) == utc(2026, 3, 30, 8)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_fraction_point_refuses_fractions_outside_0_and_1(fraction):
    with pytest.raises(BusinessTimeError, match=f"^fraction must be between 0 and 1, got {fraction}$"):
        AMS.fraction_point(ams(2026, 1, 12, 9), ams(2026, 1, 13, 17), fraction)


# ---------------------------------------------------------------- calendars without working time

def test_calendar_without_working_days_raises_instead_of_looping():
    closed = BusinessCalendar(Settings(time_zone="Europe/Amsterdam", working_days=()))
    with pytest.raises(BusinessTimeError) as error:
        closed.add(utc(2026, 1, 12, 9), d("1 business hour"))
    assert str(error.value) == (
        "no 60 business minutes within 10 years after 2026-01-12 09:00 UTC: the calendar has "
        "(almost) no working time (check business_hours.days and holidays)")
    assert closed.between(utc(2026, 1, 12), utc(2026, 2, 12)) == 0


def test_calendar_where_every_working_day_is_a_holiday_raises():
    mondays = tuple(Holiday(date(2026, 1, 5) + timedelta(weeks=i), "closed") for i in range(600))
    monday_only = BusinessCalendar(Settings(time_zone="Europe/Amsterdam", working_days=(0,),
                                            holidays=Holidays(add=mondays)))
    with pytest.raises(BusinessTimeError, match="^no 1 business minutes within 10 years"):
        monday_only.add_minutes(ams(2026, 1, 5, 9), 1)


def test_between_refuses_spans_over_ten_years():
    with pytest.raises(BusinessTimeError, match="^cannot count business time over more than 10 years: "
                                         "2026-01-01 00:00 to 2037-01-01 00:00 UTC$"):
        AMS.between(utc(2026, 1, 1), utc(2037, 1, 1))


def test_business_hours_must_end_after_they_start():
    with pytest.raises(BusinessTimeError, match="^business hours end 09:00 is not after start 17:00$"):
        BusinessCalendar(Settings(day_start=time(17), day_end=time(9)))
