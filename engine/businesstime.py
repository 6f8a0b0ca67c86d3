"""Business time: working hours, working days and holidays in the desk's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from catalog.models import Duration, Settings
from catalog.public_holidays import days_off
from engine.errors import BusinessTimeError

#: How far a calculation may reach before the calendar is judged to have (almost) no working time.
MAX_SPAN = timedelta(days=3653)
MAX_SPAN_TEXT = "10 years"

_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)
_ONE_DAY = timedelta(days=1)
# The loader spells a business_hours end of "24:00" as 23:59:59; it means the next midnight.
_END_OF_DAY = time(23, 59, 59)


class BusinessCalendar:
    """Working time of one desk, counted in real elapsed time inside local working hours.

    A working period is [day_start, day_end) in local wall-clock time on a working day that is
    not a holiday, so a 09:00-17:00 day lasts 8 hours even on the day the clocks change.
    """

    __slots__ = ("_days_off", "_end", "_start", "day_minutes", "settings", "week_minutes",
                 "working_days", "zone")

    def __init__(self, settings: Settings) -> None:
        if settings.day_end <= settings.day_start:
            raise BusinessTimeError(f"business hours end {settings.day_end:%H:%M} is not after "
                                    f"start {settings.day_start:%H:%M}")
        self.settings = settings
        self.zone = ZoneInfo(settings.time_zone)
        self.working_days = frozenset(settings.working_days)
        #: year -> days off, filled as calculations reach each year
        self._days_off: dict[int, frozenset[date]] = {}
        self._start = settings.day_start
        self._end: time | None = None if settings.day_end >= _END_OF_DAY else settings.day_end
        end_seconds = 24 * 3600 if self._end is None else _seconds(self._end)
        self.day_minutes = (end_seconds - _seconds(self._start)) // 60
        self.week_minutes = self.day_minutes * len(self.working_days)

    def is_holiday(self, day: date) -> bool:
        """Tell whether a local date is a day off (a holiday), whatever its year."""
        return day in self.holidays_in(day.year)

    def holidays_in(self, year: int) -> frozenset[date]:
        """Return the days off in one year, from the settings' country and dates."""
        days = self._days_off.get(year)
        if days is None:
            days = self._days_off[year] = days_off(self.settings.holidays, year)
        return days

    def business_minutes(self, duration: Duration) -> int:
        """Return the business minutes in a duration: a day is one working day, a week one working week."""
        per_unit = {"minute": 1, "hour": 60, "day": self.day_minutes, "week": self.week_minutes}
        return duration.amount * per_unit[duration.unit]

    def is_working_time(self, at: datetime) -> bool:
        """Tell whether an instant falls inside a working period."""
        at = _utc(at)
        period = self._period(at.astimezone(self.zone).date())
        return period is not None and period[0] <= at < period[1]

    def add(self, start: datetime, duration: Duration) -> datetime:
        """Return the UTC instant a duration after start: business time if it says so, else wall-clock."""
        if not duration.business:
            return _utc(start) + timedelta(minutes=duration.minutes)
        return self.add_minutes(start, self.business_minutes(duration))

    def add_minutes(self, start: datetime, business_minutes: int) -> datetime:
        """Return the UTC instant when the given business minutes after start have elapsed.

        Counting begins at start, or at the next working period if start is outside one; zero
        minutes return start unchanged. A result that exactly fills a period is that period's end.
        """
        if business_minutes < 0:
            raise BusinessTimeError(f"business minutes must not be negative, got {business_minutes}")
        return self._advance(_utc(start), business_minutes * _MINUTE)

    def between(self, a: datetime, b: datetime) -> int:
        """Return the whole business minutes from a to b (0 if b is not after a)."""
        return self._elapsed(_utc(a), _utc(b)) // _MINUTE

    def fraction_point(self, start: datetime, due: datetime, fraction: float) -> datetime:
        """Return the UTC instant when a fraction of the business time from start to due has elapsed."""
        if not 0 <= fraction <= 1:
            raise BusinessTimeError(f"fraction must be between 0 and 1, got {fraction}")
        start = _utc(start)
        return self._advance(start, self._elapsed(start, _utc(due)) * fraction)

    def _period(self, day: date) -> tuple[datetime, datetime] | None:
        """Return the UTC bounds of the working period on a local date, if it has one."""
        if day.weekday() not in self.working_days or self.is_holiday(day):
            return None
        begin = datetime.combine(day, self._start, self.zone).astimezone(UTC)
        if self._end is None:
            end = datetime.combine(day + _ONE_DAY, time(0), self.zone).astimezone(UTC)
        else:
            end = datetime.combine(day, self._end, self.zone).astimezone(UTC)
        # Hours that lie inside a spring-forward gap do not exist on that day.
        return (begin, end) if begin < end else None

    def _advance(self, start: datetime, amount: timedelta) -> datetime:
        if amount <= _ZERO:
            return start
        day = start.astimezone(self.zone).date()
        last = (start + MAX_SPAN).astimezone(self.zone).date()
        wanted = amount
        while day <= last:
            period = self._period(day)
            if period is not None:
                begin, end = max(period[0], start), period[1]
                if begin < end:
                    if amount <= end - begin:
                        return begin + amount
                    amount -= end - begin
            day += _ONE_DAY
        raise BusinessTimeError(
            f"no {wanted // _MINUTE} business minutes within {MAX_SPAN_TEXT} after "
            f"{start:%Y-%m-%d %H:%M} UTC: the calendar has (almost) no working time "
            "(check business_hours.days and holidays)")

    def _elapsed(self, a: datetime, b: datetime) -> timedelta:
        if b <= a:
            return _ZERO
        if b - a > MAX_SPAN:
            raise BusinessTimeError(f"cannot count business time over more than {MAX_SPAN_TEXT}: "
                                    f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M} UTC")
        day, last = a.astimezone(self.zone).date(), b.astimezone(self.zone).date()
        total = _ZERO
        while day <= last:
            period = self._period(day)
            if period is not None:
                begin, end = max(period[0], a), min(period[1], b)
                if begin < end:
                    total += end - begin
            day += _ONE_DAY
        return total


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _utc(at: datetime) -> datetime:
    """Return an aware datetime in UTC; naive ones are refused rather than guessed."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise BusinessTimeError(f"naive datetime {at.isoformat()}: "
                                "business time needs a timezone-aware datetime")
    return at.astimezone(UTC)
