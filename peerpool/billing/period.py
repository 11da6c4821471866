"""The billing month: a calendar month in the exchange's billing time zone (Europe/Warsaw).

A month runs from local midnight on its first day to local midnight on the first day of the
next month; in UTC that is 743, 744 or 745 hours in DST months. Dates in the configuration
(port ``connected`` / ``disconnected``, member ``joined`` / ``left``) are local calendar days.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from peerpool.errors import BillingError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    """One billing month: local dates ``[start, end)`` and the UTC instants of their midnights."""

    year: int
    month: int
    timezone: str

    @staticmethod
    def parse(text: str, timezone: str) -> Month:
        found = _MONTH.match(text.strip())
        if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1970:
            raise BillingError(f"month {text!r} is not a billing month; give it as YYYY-MM, e.g. 2026-02")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise BillingError(f"billing time zone {timezone!r} is unknown; fix [billing] timezone") from exc
        return Month(int(found.group(1)), int(found.group(2)), timezone)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        """First day of the next month (exclusive end)."""
        return dt.date(self.year + (self.month == 12), self.month % 12 + 1, 1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def midnight_utc(self, day: dt.date) -> dt.datetime:
        """The UTC instant of local midnight starting ``day``."""
        local = dt.datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(self.timezone))
        return local.astimezone(dt.UTC)

    @property
    def start_utc(self) -> dt.datetime:
        return self.midnight_utc(self.start)

    @property
    def end_utc(self) -> dt.datetime:
        return self.midnight_utc(self.end)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1, self.timezone)

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(zoneinfo.ZoneInfo(self.timezone))


def utc_iso(instant: dt.datetime) -> str:
    """An instant as written in the files: UTC, ISO 8601, ``Z``, to the millisecond only when needed."""
    value = instant.astimezone(dt.UTC)
    if value.microsecond:
        text = value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0")
    else:
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def local_iso(instant: dt.datetime, timezone: str) -> str:
    """An instant in the billing time zone with its offset (``2026-02-01T00:00:00+01:00``)."""
    value = instant.astimezone(zoneinfo.ZoneInfo(timezone))
    return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
