"""Counter hygiene: raw reads -> one clean 5-minute rate row per port and interval, and outages.

``run`` is what ``peerpool build`` calls before dbt. It reads ``LAKE/port_counters``,
writes ``LAKE/port_rates_5min`` (every interval of the period, for every configured port
that exists then, gaps included) and ``LAKE/port_outages``. The rules are in
``docs/counters.md``; in short:

* deltas between consecutive reads of one (device, ifindex, source) are classified by
  :mod:`ingest.counters.deltas` (long / failed / reset / over_speed / good, 32-bit wraps);
* good deltas are spread over the intervals they overlap in whole bytes by
  :mod:`ingest.counters.split` (largest-remainder rounding: the pieces add up exactly);
* an interval is trusted only when good deltas cover all of its 300 seconds; any overlap
  with a failed, reset or over-speed pair flags it, and any part covered by no pair (or by
  a pair longer than ``max_span``) makes it a gap;
* several sources for one port: a trusted interval of the preferred source wins
  (snmp > import > sflow); if none is trusted, the preferred source with any pair there
  tells the flags; ``source`` says which;
* gap policy: ``exclude`` leaves bytes null on untrusted intervals, ``zero`` writes 0.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ingest.counters import outages as outage_mod
from ingest.counters.catalog import INTERVAL_US, SOURCE_PRIORITY, grid, port_catalog, resolve_ports, to_us
from ingest.counters.deltas import DELTAS, DeltaRules, pairs
from ingest.counters.lakeio import replace_days, scan
from ingest.counters.split import pieces
from peerpool.config.model import Exchange, GapPolicy
from peerpool.errors import PeerpoolError

RATES_TABLE = "port_rates_5min"
OUTAGES_TABLE = "port_outages"
PART_KEY = "hygiene"
MAX_SPAN_LIMIT_US = 4 * 3600 * 1_000_000  # keeps the integer splitting inside 64 bits


@dataclass
class HygieneStats:
    """What a hygiene run read and wrote, for the CLI and the build log."""

    reads: int = 0
    reads_unknown_port: int = 0  # reads whose (device, ifindex) is not a configured port: ignored
    unknown_ports: list[str] = field(default_factory=list)  # a few "device/ifindex" examples
    pairs: dict[str, int] = field(default_factory=dict)  # kind -> count
    intervals: int = 0
    trusted: int = 0
    gaps: int = 0
    failed_read: int = 0
    reset: int = 0
    wrap: int = 0
    over_speed: int = 0
    outages: int = 0
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    parts: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _reads(lake: Path, lo_us: int | None, hi_us: int | None) -> pl.DataFrame:
    frame = scan(lake, "port_counters").with_columns(t=pl.col("polled_at").dt.epoch("us"))
    if lo_us is not None:
        frame = frame.filter(pl.col("t") >= lo_us)
    if hi_us is not None:
        frame = frame.filter(pl.col("t") <= hi_us)
    return frame.collect()


def interval_flags(parts: pl.DataFrame, interval_us: int = INTERVAL_US) -> pl.DataFrame:
    """Per (port, source, interval): bytes from good pieces, coverage and flags."""
    kind = pl.col("kind")
    good = kind == "good"
    return (
        parts.group_by("port_id", "source", "k")
        .agg(
            good_us=pl.col("overlap").filter(good).sum(),
            covered_us=pl.col("overlap").sum(),
            is_failed_read=(kind == "failed").any(),
            is_reset=(kind == "reset").any(),
            is_over_speed=(kind == "over_speed").any(),
            is_wrap=(pl.col("wrap") & good).any(),
            **{d.removeprefix("d_"): pl.col(f"{d}_piece").filter(good).sum() for d in DELTAS},
            _pkt_missing=(
                good & (pl.col("d_in_packets_piece").is_null() | pl.col("d_out_packets_piece").is_null())
            ).any(),
        )
        .with_columns(
            is_trusted=pl.col("good_us") == interval_us,
            is_gap=pl.col("covered_us") < interval_us,
        )
    )


def choose_source(flags: pl.DataFrame) -> pl.DataFrame:
    """One row per (port, interval): a trusted rate of the preferred source, else that source's flags."""
    priority = pl.col("source").replace_strict(
        SOURCE_PRIORITY, default=len(SOURCE_PRIORITY), return_dtype=pl.Int64
    )
    return (
        flags.with_columns(_untrusted=~pl.col("is_trusted"), _priority=priority)
        .sort(["port_id", "k", "_untrusted", "_priority", "source"])
        .unique(subset=["port_id", "k"], keep="first", maintain_order=True)
        .drop("_untrusted", "_priority")
    )


def _bps(byte_count: pl.Expr, seconds: float) -> pl.Expr:
    """bits per second = bytes x 8 / seconds, correctly rounded.

    Polars turns a division by a constant into a multiplication by its reciprocal, which is
    off by one unit in the last place (300,000 bytes gave 8,000.000000000001 bit/s); numpy's
    division is IEEE-exact, so equal inputs give the figures a hand calculation gives.
    """

    def divide(values: pl.Series) -> pl.Series:
        return pl.Series(values.cast(pl.Float64).to_numpy() / seconds, dtype=pl.Float64, nan_to_null=True)

    return (byte_count * 8).map_batches(divide, return_dtype=pl.Float64)


def rates(
    reads: pl.DataFrame,
    catalog: pl.DataFrame,
    k_lo: int,
    k_hi: int,
    *,
    gap_policy: GapPolicy = "exclude",
    rules: DeltaRules | None = None,
    interval_us: int = INTERVAL_US,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Clean rates for intervals [k_lo, k_hi) from port-resolved reads (with ``t`` and ``speed_mbps``).

    Returns the ``port_rates_5min`` rows (sorted by interval, port) and the pair counts by kind.
    """
    rules = rules or DeltaRules()
    classified = pairs(reads, rules)
    kinds = dict(classified.group_by("kind").len().iter_rows())
    spread = pieces(classified.filter(pl.col("kind") != "long"), interval_us)
    spread = spread.filter((pl.col("k") >= k_lo) & (pl.col("k") < k_hi))
    chosen = choose_source(interval_flags(spread, interval_us))
    flag_names = ("is_gap", "is_failed_read", "is_reset", "is_wrap", "is_over_speed")
    full = grid(catalog, k_lo, k_hi, interval_us).join(chosen, on=["port_id", "k"], how="left")
    trusted = pl.col("is_trusted").fill_null(False)
    fill = pl.lit(0, pl.Int64) if gap_policy == "zero" else pl.lit(None, pl.Int64)
    byte_cols = {}
    for name in ("in_bytes", "out_bytes"):
        byte_cols[name] = pl.when(trusted).then(pl.col(name)).otherwise(fill)
    for name in ("in_packets", "out_packets"):
        usable = trusted & ~pl.col("_pkt_missing").fill_null(False)
        byte_cols[name] = (
            pl.when(usable).then(pl.col(name)).otherwise(pl.when(trusted).then(None).otherwise(fill))
        )
    seconds = interval_us / 1_000_000
    out = (
        full.with_columns(
            is_trusted=trusted,
            is_gap=pl.col("is_gap").fill_null(True),
            **{n: pl.col(n).fill_null(False) for n in flag_names if n != "is_gap"},
            **byte_cols,
        )
        .with_columns(
            in_bps=_bps(pl.col("in_bytes"), seconds),
            out_bps=_bps(pl.col("out_bytes"), seconds),
            interval_start=(pl.col("k") * interval_us).cast(pl.Datetime("us", "UTC")),
        )
        .sort("k", "port_id")
        .select(
            "interval_start",
            "port_id",
            "device_id",
            "ifindex",
            "speed_mbps",
            "in_bytes",
            "out_bytes",
            "in_packets",
            "out_packets",
            "in_bps",
            "out_bps",
            "is_trusted",
            *flag_names,
            "source",
        )
    )
    return out, kinds


def _validate(gap_policy: str, rules: DeltaRules) -> None:
    if gap_policy not in ("exclude", "zero"):
        raise PeerpoolError(f"gap policy {gap_policy!r} is not known; use 'exclude' or 'zero'")
    if not 0 < rules.max_span_us <= MAX_SPAN_LIMIT_US:
        raise PeerpoolError("max span must be between 1 µs and 4 hours; a longer delta is a gap, not a rate")


def run(
    lake: Path,
    exchange: Exchange,
    *,
    gap_policy: GapPolicy = "exclude",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    rules: DeltaRules | None = None,
) -> HygieneStats:
    """Compute and store ``port_rates_5min`` for [start, end) and refresh ``port_outages``.

    ``start``/``end`` (aware datetimes) are rounded out to 5-minute boundaries; by default
    the period spans every stored read. Re-running replaces what an earlier run wrote for
    the same intervals; rows of the same days outside the period are kept.
    """
    began = time.perf_counter()
    rules = rules or DeltaRules()
    _validate(gap_policy, rules)
    interval = INTERVAL_US
    lo = None if start is None else (to_us(start) // interval) * interval
    hi = None if end is None else -(-to_us(end) // interval) * interval
    raw = _reads(
        lake,
        None if lo is None else lo - rules.max_span_us,
        None if hi is None else hi + rules.max_span_us,
    )
    stats = HygieneStats(reads=raw.height)
    catalog = port_catalog(exchange)
    known, unknown = resolve_ports(raw, catalog)
    stats.reads_unknown_port = unknown.height
    stats.unknown_ports = [
        f"{d}/{i}"
        for d, i in unknown.select("device_id", "ifindex")
        .unique()
        .sort("device_id", "ifindex")
        .head(10)
        .rows()
    ]
    if lo is None or hi is None:
        if raw.height == 0:
            stats.seconds = time.perf_counter() - began
            return stats
        t_min = int(raw["t"].min())  # type: ignore[arg-type]
        t_max = int(raw["t"].max())  # type: ignore[arg-type]
        lo = lo if lo is not None else (t_min // interval) * interval
        hi = hi if hi is not None else (t_max // interval + 1) * interval
    stats.start = dt.datetime.fromtimestamp(lo / 1e6, dt.UTC)
    stats.end = dt.datetime.fromtimestamp(hi / 1e6, dt.UTC)
    table, kinds = rates(known, catalog, lo // interval, hi // interval, gap_policy=gap_policy, rules=rules)
    stats.pairs = kinds
    stats.intervals = table.height
    counts = table.select(
        pl.col("is_trusted").sum(),
        pl.col("is_gap").sum(),
        pl.col("is_failed_read").sum(),
        pl.col("is_reset").sum(),
        pl.col("is_wrap").sum(),
        pl.col("is_over_speed").sum(),
    ).row(0)
    stats.trusted, stats.gaps, stats.failed_read, stats.reset, stats.wrap, stats.over_speed = (
        int(c) for c in counts
    )
    stats.parts = replace_days(
        lake, RATES_TABLE, table, time_column="interval_start", key=PART_KEY, window=(lo, hi)
    )
    found, parts = outage_mod.refresh(lake, exchange, since=start)
    stats.outages = found
    stats.parts += parts
    stats.seconds = time.perf_counter() - began
    return stats
