"""Deltas between consecutive reads of one counter series, classified.

A series is (device_id, ifindex, source). Each read after the first forms a pair with the
read before it, and the pair gets exactly one ``kind``, decided in this order:

1. ``long``: the two reads are more than ``max_span_us`` apart. Spreading such a delta
   evenly would invent a flat rate and hide the peaks a 95th percentile is made of, so the
   time between them counts as a gap.
2. ``failed``: either read failed. There is no delta across a failed read.
3. ``reset``: the counters restarted between the reads, so the delta is meaningless and
   discarded: the counter width changed; sysUpTime went back; sysUpTime is shorter than the
   time since the earlier read (the device booted after it, even if counters have since
   climbed past their old values); or a 64-bit counter went down.
4. ``over_speed``: a delta's rate is above the port speed (ifHighSpeed of the later read
   when it is above 0, else the configured speed) by more than ``speed_tolerance``.
5. ``good``. A 32-bit counter that went down (and no reset rule applies) wrapped once:
   delta + 2^32, and the pair is flagged ``wrap``.

Counters are unsigned 64-bit; deltas are computed in unsigned arithmetic and only
compared or used when the later value is not below the earlier one (or the 32-bit wrap
applies), so no negative or giant delta can come out of this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

READ_COLUMNS = (
    "t",
    "series",
    "ok",
    "sys_uptime_cs",
    "counter_bits",
    "in_octets",
    "out_octets",
    "in_ucast_pkts",
    "out_ucast_pkts",
    "if_high_speed_mbps",
    "speed_mbps",
)
KIND = pl.Enum(["good", "failed", "reset", "over_speed", "long"])
COUNTERS = ("in_octets", "out_octets", "in_ucast_pkts", "out_ucast_pkts")
DELTAS = ("d_in_bytes", "d_out_bytes", "d_in_packets", "d_out_packets")
WRAP_32 = 2**32


@dataclass(frozen=True)
class DeltaRules:
    """Thresholds of the classification (documented in docs/counters.md)."""

    max_span_us: int = 900_000_000  # 15 minutes: three missed 5-minute polls
    speed_tolerance: float = 0.01  # a rate up to 1 % above port speed is timing jitter, not an error
    uptime_tolerance_us: int = 2_000_000  # clock skew allowed between sysUpTime and poll times


def dedupe(reads: pl.DataFrame) -> pl.DataFrame:
    """Sorted by (series, t); one read per (series, t), a successful read winning over a failed one."""
    ordered = reads.sort(["series", "t", "ok"], descending=[False, False, True], nulls_last=True)
    first = (pl.col("series") != pl.col("series").shift(1)) | (pl.col("t") != pl.col("t").shift(1))
    return ordered.filter(first.fill_null(True))


def _delta(cur: pl.Expr, prev: pl.Expr, bits: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(delta, went_down, wrapped) of one counter, unsigned and overflow-safe."""
    down = cur < prev
    wrapped = down & (bits == 32)
    delta = (
        pl.when(~down)
        .then(cur - prev)
        .when(wrapped)
        .then(cur + (pl.lit(WRAP_32, pl.UInt64) - prev))
        .otherwise(None)
        .cast(pl.Int64, strict=False)  # above 2^63: null, and treated as over speed below
    )
    return delta, down.fill_null(False), wrapped.fill_null(False)


def pairs(reads: pl.DataFrame, rules: DeltaRules) -> pl.DataFrame:
    """Classified pairs of consecutive reads, one row per pair.

    ``reads`` has :data:`READ_COLUMNS`: ``t`` in µs since the epoch, ``series`` an integer
    naming the (device, ifindex, source, port) series, ``speed_mbps`` the configured speed of
    the read's port. Returns ``series``, ``t0``/``t1``, ``kind`` (:data:`KIND`), ``wrap`` and
    the deltas (null unless ``kind == "good"``; packet deltas also null when a packet counter
    was not read).
    """
    r = dedupe(reads.select(READ_COLUMNS))
    prev = {c: pl.col(c).shift(1) for c in r.columns}
    same = (pl.col("series") == prev["series"]).fill_null(False)
    bits = pl.col("counter_bits")
    exprs = {}
    down_any_64 = pl.lit(False)
    wrap_any = pl.lit(False)
    for counter, name in zip(COUNTERS, DELTAS, strict=True):
        delta, down, wrapped = _delta(pl.col(counter), prev[counter], bits)
        exprs[name] = delta
        down_any_64 = down_any_64 | (down & (bits == 64))
        wrap_any = wrap_any | wrapped
    span = pl.col("t") - prev["t"]
    uptime = pl.col("sys_uptime_cs")
    reset = (
        (bits != prev["counter_bits"])
        | (uptime < prev["sys_uptime_cs"]).fill_null(False)
        | (uptime * 10_000 + rules.uptime_tolerance_us < span).fill_null(False)
        | down_any_64
    )
    speed = (
        pl.when(pl.col("if_high_speed_mbps") > 0)
        .then(pl.col("if_high_speed_mbps"))
        .otherwise(pl.col("speed_mbps"))
    )
    # Mbit/s is bits per µs: the most a port can carry in `span` µs is speed x span bits.
    limit_bits = speed.cast(pl.Float64) * pl.col("span").cast(pl.Float64) * (1.0 + rules.speed_tolerance)
    over = pl.lit(False)
    for name in ("d_in_bytes", "d_out_bytes"):
        over = (
            over
            | pl.col(name).is_null()
            | (pl.col(name).cast(pl.Float64) * 8.0 > limit_bits).fill_null(False)
        )
    failed = ~(pl.col("ok").fill_null(False) & prev["ok"].fill_null(False))
    out = (
        r.with_columns(
            same=same,
            t0=prev["t"],
            span=span,
            is_reset=reset,
            is_failed=failed,
            wrap=wrap_any,
            **exprs,
        )
        .with_columns(over=over)  # after `span` and the deltas exist, before filtering (no shift here)
        .filter(pl.col("same"))
    )
    kind = (
        pl.when(pl.col("span") > rules.max_span_us)
        .then(pl.lit("long", KIND))
        .when(pl.col("is_failed"))
        .then(pl.lit("failed", KIND))
        .when(pl.col("is_reset"))
        .then(pl.lit("reset", KIND))
        .when(pl.col("over"))
        .then(pl.lit("over_speed", KIND))
        .otherwise(pl.lit("good", KIND))
    )
    out = out.with_columns(kind=kind)
    good = pl.col("kind") == "good"
    return out.select(
        "series",
        "t0",
        pl.col("t").alias("t1"),
        "kind",
        (pl.col("wrap") & good).alias("wrap"),
        *[pl.when(good).then(pl.col(name)).otherwise(None).alias(name) for name in DELTAS],
    )
