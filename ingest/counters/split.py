"""Spreading each pair over the 5-minute intervals it overlaps, in whole bytes.

A pair from ``t0`` to ``t1`` overlaps intervals ``k0 .. k1`` (``k = t // 300 s``). Interval
``k`` gets the share ``delta x overlap_k / span``. Shares are rarely whole, and bytes are:
each piece first gets the floor of its share, then the bytes left over (fewer than the
number of pieces) go one each to the pieces with the largest remainders, the earlier
interval first on a tie (largest-remainder, or Hamilton, rounding). The pieces of a pair
therefore add up to its delta exactly, and no piece is off its exact share by a byte or more.

All arithmetic is on integers (µs and bytes): ``delta x overlap`` would overflow 64 bits,
so it is computed as ``q x overlap + r x overlap / span`` with ``delta = q x span + r``.

Three paths give the same result and differ only in cost: a pair inside one interval is
its own piece; a pair over two intervals (the usual case with polls a few seconds off the
boundary) compares its two remainders directly; only pairs over three or more intervals
(after a missed poll) are exploded and ranked per pair.
"""

from __future__ import annotations

import polars as pl

from ingest.counters.catalog import INTERVAL_US
from ingest.counters.deltas import DELTAS

COLUMNS = ("series", "kind", "wrap", "k", "overlap", *[f"{d}_piece" for d in DELTAS])


def _floor_and_remainder(delta: pl.Expr, overlap: pl.Expr, span: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """floor(delta x overlap / span) and (delta x overlap) mod span, without 64-bit overflow."""
    q = delta // span
    scaled = (delta % span) * overlap
    return q * overlap + scaled // span, scaled % span


def _one(pairs: pl.DataFrame) -> pl.DataFrame:
    return pairs.select(
        "series",
        "kind",
        "wrap",
        pl.col("k0").alias("k"),
        pl.col("span").alias("overlap"),
        *[pl.col(d).alias(f"{d}_piece") for d in DELTAS],
    )


def _two(pairs: pl.DataFrame, interval_us: int) -> pl.DataFrame:
    span = pl.col("span")
    o0 = (pl.col("k0") + 1) * interval_us - pl.col("t0")
    o1 = pl.col("t1") - pl.col("k1") * interval_us
    exprs: list[pl.Expr] = [o0.alias("_o0"), o1.alias("_o1")]
    for d in DELTAS:
        f0, r0 = _floor_and_remainder(pl.col(d), o0, span)
        f1, r1 = _floor_and_remainder(pl.col(d), o1, span)
        left = pl.col(d) - f0 - f1  # 0 or 1
        first_wins = r0 >= r1  # a tie goes to the earlier interval
        exprs.append((f0 + (left.gt(0) & first_wins).cast(pl.Int64)).alias(f"{d}_p0"))
        exprs.append((f1 + (left.gt(0) & ~first_wins).cast(pl.Int64)).alias(f"{d}_p1"))
    wide = pairs.with_columns(exprs)
    return pl.concat(
        [
            wide.select(
                "series",
                "kind",
                "wrap",
                pl.col(f"k{j}").alias("k"),
                pl.col(f"_o{j}").alias("overlap"),
                *[pl.col(f"{d}_p{j}").alias(f"{d}_piece") for d in DELTAS],
            )
            for j in (0, 1)
        ]
    )


def _many(pairs: pl.DataFrame, interval_us: int) -> pl.DataFrame:
    exploded = (
        pairs.with_row_index("pair")
        .with_columns(k=pl.int_ranges(pl.col("k0"), pl.col("k1") + 1))
        .explode("k")
        .with_columns(
            overlap=pl.min_horizontal(pl.col("t1"), (pl.col("k") + 1) * interval_us)
            - pl.max_horizontal(pl.col("t0"), pl.col("k") * interval_us),
            nth=pl.col("k") - pl.col("k0"),
        )
    )
    shares = []
    for d in DELTAS:
        floor, remainder = _floor_and_remainder(pl.col(d), pl.col("overlap"), pl.col("span"))
        shares += [floor.alias(f"{d}_floor"), remainder.alias(f"{d}_frac")]
    exploded = exploded.with_columns(shares)
    ranked = []
    for d in DELTAS:
        leftover = pl.col(d) - pl.col(f"{d}_floor").sum().over("pair")
        # rank pieces by remainder, descending; on a tie the earlier interval (smaller nth) first.
        # nth < 2^8 and remainder < span < 2^34 keep the combined key exact in 64 bits.
        key = pl.col(f"{d}_frac") * 256 + (255 - pl.col("nth"))
        rank = key.rank("ordinal", descending=True).over("pair")
        ranked.append(
            (pl.col(f"{d}_floor") + (rank.cast(pl.Int64) <= leftover).cast(pl.Int64)).alias(f"{d}_piece")
        )
    return exploded.with_columns(ranked).select(COLUMNS)


def pieces(pairs: pl.DataFrame, interval_us: int = INTERVAL_US) -> pl.DataFrame:
    """One row per (pair, interval overlapped): series, k, overlap (µs), kind, wrap and the byte pieces."""
    base = pairs.with_columns(
        span=pl.col("t1") - pl.col("t0"),
        k0=pl.col("t0") // interval_us,
        k1=(pl.col("t1") - 1) // interval_us,
    ).with_columns(n=pl.col("k1") - pl.col("k0") + 1)
    parts = [
        _one(base.filter(pl.col("n") == 1)),
        _two(base.filter(pl.col("n") == 2), interval_us),
        _many(base.filter(pl.col("n") >= 3), interval_us),
    ]
    return pl.concat([p.select(COLUMNS) for p in parts], how="vertical_relaxed")
