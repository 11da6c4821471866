"""Reading lake tables with polars, and replacing whole days of a derived table.

Derived tables (``port_rates_5min``, ``port_outages``) hold one part per UTC day under a
fixed key, so re-running hygiene replaces a day instead of adding to it. When a run covers
only part of a day, the rows of that day outside the run's window are kept from the
existing part (read, merged, written back atomically by :func:`peerpool.lake.write_part`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from peerpool.lake import TABLES, partition_dir, write_part


def part_files(lake: Path, table: str) -> list[Path]:
    """Every finished part file of ``table`` (temporary files of writers in progress are skipped)."""
    base = lake / table
    if not base.is_dir():
        return []
    return sorted(p for p in base.glob("date=*/**/*.parquet") if not p.name.startswith("."))


def empty(table: str) -> pl.DataFrame:
    """A frame with the table's columns and no rows."""
    return pl.DataFrame(pl.from_arrow(TABLES[table].empty_table()))


def scan(lake: Path, table: str) -> pl.LazyFrame:
    """All rows of ``table`` lazily (an empty frame with the right columns when nothing is stored)."""
    files = part_files(lake, table)
    if not files:
        return empty(table).lazy()
    return pl.scan_parquet(files, hive_partitioning=False)


def utc_day(us: int) -> dt.date:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)).date()


def replace_days(
    lake: Path,
    table: str,
    frame: pl.DataFrame,
    *,
    time_column: str,
    key: str,
    window: tuple[int, int],
    order_by: tuple[str, ...] = (),
) -> list[Path]:
    """Store ``frame`` (rows inside ``window`` = [lo, hi) µs) as the day parts of ``table`` under ``key``.

    Rows of an existing part that fall outside the window are kept; rows inside it are
    replaced by ``frame``'s. A day inside the window left with no rows loses its part.
    Each day is sorted by ``time_column`` then ``order_by`` (one day at a time: sorting a
    month at once would double its memory).
    """
    lo, hi = window
    if hi <= lo:
        return []
    schema = TABLES[table]
    us = pl.col(time_column).dt.epoch("us")
    frame = frame.with_columns(_day=pl.col(time_column).dt.date())
    written: list[Path] = []
    day = utc_day(lo)
    last = utc_day(hi - 1)
    by_day = {d[0]: part for d, part in frame.partition_by("_day", as_dict=True).items()}
    while day <= last:
        # categorical columns (compact in memory) become plain strings one day at a time
        new = by_day.pop(day, frame.clear()).drop("_day").with_columns(pl.col(pl.Categorical).cast(pl.String))
        path = partition_dir(lake, table, day) / f"part-{key}.parquet"
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 1_000_000
        whole_day = lo <= start and start + 86_400_000_000 <= hi
        if path.exists() and not whole_day:
            old = pl.read_parquet(path, hive_partitioning=False).filter((us < lo) | (us >= hi))
            new = pl.concat([old.select(new.columns), new], how="vertical_relaxed")
        new = new.sort(time_column, *order_by)
        if new.height:
            written.append(write_part(lake, table, new.to_arrow().cast(schema), day, key))
        elif path.exists():
            path.unlink()
        day += dt.timedelta(days=1)
    return written
