"""Data-quality score: per port and month, the share of intervals with a trustworthy rate.

``score = trusted intervals / intervals the port existed in the month``. The month is the
billing month in the billing time zone (Europe/Warsaw by default: October 2026 has
31 x 288 + 12 = 8,940 five-minute intervals because of the DST change). An interval hygiene
has not computed yet counts as untrusted (``missing``), so a score can only go up as data
arrives. The flag counts explain a low score.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import polars as pl

from ingest.counters.catalog import INTERVAL_US, grid, port_catalog, to_us
from ingest.counters.lakeio import scan
from peerpool.config.model import Exchange
from peerpool.errors import InputError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(month: str, tz: str) -> tuple[int, int]:
    """[first, next first) instant of ``YYYY-MM`` in ``tz``, as µs since the epoch."""
    match = _MONTH.match(month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InputError(f"month {month!r} is not YYYY-MM; give it like 2026-10")
    year, mon = int(match.group(1)), int(match.group(2))
    zone = zoneinfo.ZoneInfo(tz)
    first = dt.datetime(year, mon, 1, tzinfo=zone)
    following = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone)
    return to_us(first), to_us(following)


def quality(lake: Path, exchange: Exchange, month: str, tz: str | None = None) -> pl.DataFrame:
    """One row per configured port existing in ``month``: interval counts by flag and the score."""
    lo, hi = month_bounds(month, tz or exchange.billing.timezone)
    expected = grid(port_catalog(exchange), lo // INTERVAL_US, hi // INTERVAL_US).select(
        "port_id", "device_id", "k"
    )
    stored = (
        scan(lake, "port_rates_5min")
        .with_columns(_us=pl.col("interval_start").dt.epoch("us"))
        .filter((pl.col("_us") >= lo) & (pl.col("_us") < hi))
        .select(
            "port_id",
            (pl.col("_us") // INTERVAL_US).alias("k"),
            "is_trusted",
            "is_gap",
            "is_failed_read",
            "is_reset",
            "is_over_speed",
        )
        .unique(subset=["port_id", "k"], keep="first")
        .collect()
    )
    joined = expected.join(stored, on=["port_id", "k"], how="left")
    return (
        joined.group_by("port_id", "device_id")
        .agg(
            intervals=pl.len(),
            trusted=pl.col("is_trusted").fill_null(False).sum(),
            gap=pl.col("is_gap").fill_null(False).sum(),
            failed_read=pl.col("is_failed_read").fill_null(False).sum(),
            reset=pl.col("is_reset").fill_null(False).sum(),
            over_speed=pl.col("is_over_speed").fill_null(False).sum(),
            missing=pl.col("is_trusted").is_null().sum(),
        )
        .with_columns(month=pl.lit(month), score=pl.col("trusted") / pl.col("intervals"))
        .select(
            "month",
            "port_id",
            "device_id",
            "intervals",
            "trusted",
            "gap",
            "failed_read",
            "reset",
            "over_speed",
            "missing",
            "score",
        )
        .sort("port_id")
    )
