"""Spreading each pair over the 5-minute intervals it overlaps, in whole bytes.

A pair from ``t0`` to ``t1`` overlaps intervals ``k0 .. k1`` (``k = t // 300 s``). Interval
``k`` gets the share ``delta x overlap_k / span``. Shares are rarely whole, and bytes are:
each piece first gets the floor of its share, then the bytes left over (fewer than the
number of pieces) go one each to the pieces with the largest remainders, the earlier
interval first on a tie (largest-remainder, or Hamilton, rounding). The pieces of a pair
therefore add up to its delta exactly, and no piece is off its exact share by a byte or more.

All arithmetic is on integers (µs and bytes): ``delta x overlap`` would overflow 64 bits,
so it is computed as ``q x overlap + r x overlap / span`` with ``delta = q x span + r``.
"""

from __future__ import annotations

import polars as pl

from ingest.counters.catalog import INTERVAL_US
from ingest.counters.deltas import DELTAS


def _shares(delta: str) -> list[pl.Expr]:
    """Floor share and remainder (numerator of the fraction, over ``span``) of one quantity."""
    d = pl.col(delta)
    q = d // pl.col("span")
    r = d % pl.col("span")
    scaled = r * pl.col("overlap")
    return [
        (q * pl.col("overlap") + scaled // pl.col("span")).alias(f"{delta}_floor"),
        (scaled % pl.col("span")).alias(f"{delta}_frac"),
    ]


def pieces(pairs: pl.DataFrame, interval_us: int = INTERVAL_US) -> pl.DataFrame:
    """One row per (pair, interval overlapped): ``k``, ``overlap`` µs, the pair's kind and its byte pieces."""
    base = (
        pairs.with_row_index("pair")
        .with_columns(
            span=pl.col("t1") - pl.col("t0"),
            k0=pl.col("t0") // interval_us,
            k1=(pl.col("t1") - 1) // interval_us,
        )
        .with_columns(k=pl.int_ranges(pl.col("k0"), pl.col("k1") + 1))
        .explode("k")
        .with_columns(
            overlap=pl.min_horizontal(pl.col("t1"), (pl.col("k") + 1) * interval_us)
            - pl.max_horizontal(pl.col("t0"), pl.col("k") * interval_us),
            nth=pl.col("k") - pl.col("k0"),
        )
    )
    single = base.filter(pl.col("k0") == pl.col("k1"))
    multi = base.filter(pl.col("k0") != pl.col("k1"))
    # single-interval pairs: the piece is the delta (the common case for aligned polls)
    single = single.with_columns(*[pl.col(d).alias(f"{d}_piece") for d in DELTAS])
    if multi.height:
        multi = multi.with_columns(*[e for d in DELTAS for e in _shares(d)])
        ranked = []
        for d in DELTAS:
            leftover = pl.col(d) - pl.col(f"{d}_floor").sum().over("pair")
            # rank pieces by remainder, descending; on a tie the earlier interval (smaller nth) first.
            # nth < 2^8 and remainder < span < 2^40 keep the combined key exact in 64 bits.
            key = pl.col(f"{d}_frac") * 256 + (255 - pl.col("nth"))
            rank = key.rank("ordinal", descending=True).over("pair")
            ranked.append(
                (pl.col(f"{d}_floor") + (rank.cast(pl.Int64) <= leftover).cast(pl.Int64)).alias(f"{d}_piece")
            )
        multi = multi.with_columns(ranked)
    columns = [
        "pair",
        "device_id",
        "ifindex",
        "source",
        "port_id",
        "kind",
        "wrap",
        "k",
        "overlap",
        *[f"{d}_piece" for d in DELTAS],
    ]
    return (
        pl.concat([single.select(columns), multi.select(columns)]) if multi.height else single.select(columns)
    )
