"""The run's clock: 5-minute intervals in UTC, and where each one falls in Warsaw local time.

A run covers ``days`` calendar days in Europe/Warsaw from ``start``, so a run started at
local midnight on the first of a month covers exactly that month's billing days (a month
with a daylight-saving change has one hour more or less than ``24 * days``). Interval
boundaries are whole 5 minutes in UTC; Warsaw's offsets are whole hours, so they are also
whole 5 minutes in local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from peerpool.errors import InputError

WARSAW = ZoneInfo("Europe/Warsaw")
INTERVAL_S = 300
INTERVAL_MS = INTERVAL_S * 1000
INTERVAL_NS = INTERVAL_S * 1_000_000_000
NS = 1_000_000_000
DEFAULT_START = "2026-10-01"


def parse_start(text: str) -> dt.datetime:
    """``YYYY-MM-DD`` (local midnight in Europe/Warsaw) or an ISO date-time with an offset or ``Z``."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=WARSAW)
        moment = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"--start '{text}': not a date or date-time; write 2026-10-01 (Warsaw midnight) "
            "or 2026-10-01T00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InputError(f"--start '{text}': has no time zone; add Z for UTC or an offset like +02:00")
    if moment.second or moment.microsecond or moment.minute % 5:
        raise InputError(f"--start '{text}': must fall on a 5-minute boundary (e.g. 00:00, 00:05)")
    return moment


@dataclass(frozen=True)
class TimeGrid:
    start: dt.datetime  # aware
    days: int

    @property
    def start_ns(self) -> int:
        return int(self.start.timestamp()) * NS

    @property
    def local_start(self) -> dt.datetime:
        return self.start.astimezone(WARSAW)

    @property
    def end(self) -> dt.datetime:
        local = self.local_start
        naive_end = local.replace(tzinfo=None) + dt.timedelta(days=self.days)
        return naive_end.replace(tzinfo=WARSAW).astimezone(dt.UTC)

    @property
    def end_ns(self) -> int:
        return int(self.end.timestamp()) * NS

    @property
    def intervals(self) -> int:
        return (self.end_ns - self.start_ns) // INTERVAL_NS

    def interval_start_ns(self, k: int) -> int:
        return self.start_ns + k * INTERVAL_NS

    def local_date(self, offset_days: int) -> dt.date:
        return self.local_start.date() + dt.timedelta(days=offset_days)

    def local_midnight_ns(self, day: dt.date) -> int:
        """The UTC instant (ns) of 00:00 Europe/Warsaw on ``day``."""
        return int(dt.datetime(day.year, day.month, day.day, tzinfo=WARSAW).timestamp()) * NS

    def first_interval_at_or_after(self, instant_ns: int) -> int:
        """Index of the first interval starting at or after ``instant_ns`` (clamped to the run)."""
        if instant_ns <= self.start_ns:
            return 0
        k = -((self.start_ns - instant_ns) // INTERVAL_NS)
        return min(k, self.intervals)

    def day_ranges(self) -> list[tuple[dt.date, int, int]]:
        """(local date, first interval, end interval) for each local day of the run."""
        out = []
        for d in range(self.days):
            day = self.local_date(d)
            first = 0 if d == 0 else self.first_interval_at_or_after(self.local_midnight_ns(day))
            nxt = self.local_date(d + 1)
            end = (
                self.intervals
                if d == self.days - 1
                else self.first_interval_at_or_after(self.local_midnight_ns(nxt))
            )
            out.append((day, first, end))
        return out

    def local_calendar(
        self,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Per interval: local hour of its middle (0-24), local weekday (0 = Monday), days since start."""
        n = self.intervals
        hours = np.empty(n, dtype=np.float64)
        weekdays = np.empty(n, dtype=np.int64)
        start_s = self.start_ns // NS
        for k in range(n):
            mid = dt.datetime.fromtimestamp(start_s + k * INTERVAL_S + INTERVAL_S // 2, WARSAW)
            hours[k] = mid.hour + mid.minute / 60.0 + mid.second / 3600.0
            weekdays[k] = mid.weekday()
        elapsed = (np.arange(n, dtype=np.float64) + 0.5) * INTERVAL_S / 86400.0
        return hours, weekdays, elapsed


def utc_date_of_ns(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ns // NS, dt.UTC).date()


def iso_ms(ms: int) -> str:
    """``2026-10-01T00:05:02.123Z`` for a UTC instant in milliseconds."""
    moment = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"
