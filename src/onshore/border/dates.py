"""The legal calendar of a rule pack: local dates, counting windows, validity and working days.

Working days here are Monday to Friday. Public holidays (and the make-up working weekends of the Chinese
calendar) are out of scope: a re-application window computed here opens on the right weekday count but may
be a few calendar days late or early around holidays. Check the official calendar near a deadline.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

# Every date and time the border takes (bases, approvals, export requests, "as of" queries) lies in this range:
# far enough from the ends of the calendar (years 1 and 9999) that adding a validity or moving to a time zone
# can never overflow.
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2199, 12, 31)
_RANGE = f"{EARLIEST.isoformat()} .. {LATEST.isoformat()}"


def _date_in_range(day: dt.date) -> dt.date:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"date {day.isoformat()} is outside the accepted range {_RANGE}")
    return day


def _datetime_in_range(at: dt.datetime) -> dt.datetime:
    if not EARLIEST <= at.date() <= LATEST:
        raise ValueError(f"time {at.isoformat()} is outside the accepted range {_RANGE}")
    return at


LegalDate = Annotated[dt.date, AfterValidator(_date_in_range)]
"""A date within `EARLIEST` .. `LATEST` (pydantic refuses others with the range)."""
LegalDateTime = Annotated[dt.datetime, AfterValidator(_datetime_in_range)]
"""A date-time whose date lies within `EARLIEST` .. `LATEST`."""


@lru_cache(maxsize=16)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_date(at: dt.datetime, tz: str) -> dt.date:
    """The date ``at`` falls on in the pack's legal calendar.

    Raises:
        ValueError: ``at`` has no time zone.
    """
    if at.tzinfo is None:
        raise ValueError("a moment without a time zone cannot be placed in a legal calendar")
    return at.astimezone(zone(tz)).date()


def start_of_day_ms(day: dt.date, tz: str) -> int:
    """Epoch milliseconds of local midnight at the start of ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz)).timestamp() * 1000)


def window_start(window: str, day: dt.date) -> dt.date | None:
    """First day of a counting window that ends on ``day``: 1 January of the current or previous year.

    ``all_time`` has no start (None).

    Raises:
        ValueError: unknown window name.
    """
    if window == "current_year":
        return dt.date(day.year, 1, 1)
    if window == "previous_year":
        return dt.date(day.year - 1, 1, 1)
    if window == "all_time":
        return None
    raise ValueError(f"counting window {window!r} is unknown; valid: current_year, previous_year, all_time")


def add_years(day: dt.date, years: int) -> dt.date:
    """The same calendar date ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def working_days_before(day: dt.date, count: int) -> dt.date:
    """The date ``count`` working days (Monday-Friday) before ``day``."""
    current = day
    left = count
    while left > 0:
        current -= dt.timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days (Monday-Friday) after ``start`` up to and including ``end``; 0 when ``end <= start``."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (start + dt.timedelta(days=weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def yyyymmdd(day: dt.date | None) -> int | None:
    """A date as the integer ``YYYYMMDD`` (ledger event counts are integers), or None."""
    return None if day is None else day.year * 10000 + day.month * 100 + day.day


def from_yyyymmdd(value: int) -> dt.date:
    """The date of a ``YYYYMMDD`` integer."""
    return dt.date(value // 10000, value // 100 % 100, value % 100)
