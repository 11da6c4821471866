"""Reconciliation: sFlow-estimated bytes against port counters, per member port and interval.

sFlow samples ingress on edge ports, so the bytes the matrix attributes to a source port
(``member_matrix.src_port_id``) are an estimate of that port's *in* bytes, which the
counters measure exactly (``port_rates_5min.in_bytes`` of trusted intervals). Per interval
the ratio sflow / counter should be close to 1. Per window (tumbling, aligned to multiples
of its length since the epoch) the bytes are summed over the intervals where the counter
is trusted, and the window is:

* ``idle``: neither side saw traffic;
* ``alert``: the counter saw nothing and sFlow did, or ``|ratio - 1| > threshold`` with
  enough samples (a wrong sampling rate, lost samples, egress sampling, a wrong port map);
* ``few_samples``: fewer samples than :func:`min_samples` were expected (from the counter's
  packets and the switch's sampling rate) and seen: the sampling error alone could then exceed
  the threshold, so the window cannot tell;
* ``ok`` otherwise.

Only intervals covered by the stored matrix (between its first and last interval) are
compared, so counters newer than the last decoded sFlow do not raise alerts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingest.counters.catalog import INTERVAL_US, to_us
from ingest.counters.lakeio import scan
from peerpool.config.model import Exchange
from peerpool.errors import InputError


@dataclass(frozen=True)
class Reconciliation:
    """Per-interval comparison and per-window verdicts."""

    intervals: pl.DataFrame  # port_id, interval_start, sflow_bytes, samples, counter_bytes, ratio
    windows: pl.DataFrame  # port_id, window_start, window_end, ..., ratio, drift, status
    threshold: float
    window_s: int

    @property
    def alerts(self) -> pl.DataFrame:
        return self.windows.filter(pl.col("status") == "alert")


# The relative standard error of a byte count estimated from n sampled frames is
# sqrt((1 + cv^2) / n), cv the coefficient of variation of the frame lengths (domain.md). Internet
# frame sizes (many ~64-byte acks, many ~1,500-byte segments) have cv close to 1, hence the factor 2.
BYTES_VARIANCE_FACTOR = 2.0
# An alert must be rare on sampling noise alone: a month of hourly windows is ~720 per port, and the
# check fails the models run on any alert, so a window is judged at 99.9 % (two-sided z = 3.29),
# not 95 % (1.96 gave one false alarm in a 30-member demo month).
Z_ALERT = 3.29


def min_samples(threshold: float) -> int:
    """Samples needed so that the byte estimate's sampling error at 99.9 %,
    Z_ALERT * sqrt(BYTES_VARIANCE_FACTOR / n), is within the threshold."""
    return math.ceil(BYTES_VARIANCE_FACTOR * (Z_ALERT / threshold) ** 2)


def _empty_windows() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "port_id": pl.String,
            "window_start": pl.Datetime("us", "UTC"),
            "window_end": pl.Datetime("us", "UTC"),
            "intervals": pl.UInt32,
            "sflow_bytes": pl.Int64,
            "counter_bytes": pl.Int64,
            "samples": pl.Int64,
            "expected_samples": pl.Float64,
            "ratio": pl.Float64,
            "drift": pl.Float64,
            "sampling_error_95": pl.Float64,
            "status": pl.String,
        }
    )


def reconcile(
    lake: Path,
    exchange: Exchange,
    *,
    threshold: float = 0.10,
    window_s: int = 3600,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> Reconciliation:
    """Compare sFlow and counters for every member port; see the module docstring for the verdicts."""
    if not 0 < threshold < 1:
        raise InputError(f"threshold {threshold} is not between 0 and 1; give a fraction like 0.10")
    window_us = window_s * 1_000_000
    if window_s <= 0 or window_us % INTERVAL_US:
        raise InputError(f"window of {window_s} s is not a multiple of 5 minutes; use e.g. 1h or 30m")
    rates_of = {p.id: exchange.switch(p.switch).sampling_rate for p in exchange.ports}
    ports = pl.DataFrame(
        {"port_id": list(rates_of), "sampling_rate": list(rates_of.values())},
        schema={"port_id": pl.String, "sampling_rate": pl.Int64},
    )
    lo = None if start is None else to_us(start)
    hi = None if end is None else to_us(end)

    def within(frame: pl.LazyFrame) -> pl.LazyFrame:
        if lo is not None:
            frame = frame.filter(pl.col("_us") >= lo)
        if hi is not None:
            frame = frame.filter(pl.col("_us") < hi)
        return frame

    matrix = within(scan(lake, "member_matrix").with_columns(_us=pl.col("interval_start").dt.epoch("us")))
    span = matrix.select(pl.col("_us").min().alias("lo"), pl.col("_us").max().alias("hi")).collect()
    sflow = (
        matrix.filter(pl.col("src_port_id").is_not_null())
        .group_by(pl.col("src_port_id").alias("port_id"), "_us")
        .agg(sflow_bytes=pl.col("estimated_bytes").sum(), samples=pl.col("sample_count").sum())
        .collect()
        .join(ports.select("port_id"), on="port_id", how="semi")
    )
    m_lo, m_hi = span.row(0)
    if m_lo is None:
        empty = pl.DataFrame(
            schema={
                "port_id": pl.String,
                "interval_start": pl.Datetime("us", "UTC"),
                "sflow_bytes": pl.Int64,
                "samples": pl.Int64,
                "counter_bytes": pl.Int64,
                "ratio": pl.Float64,
            }
        )
        return Reconciliation(empty, _empty_windows(), threshold, window_s)
    counters = (
        within(scan(lake, "port_rates_5min").with_columns(_us=pl.col("interval_start").dt.epoch("us")))
        .filter(pl.col("is_trusted") & (pl.col("_us") >= m_lo) & (pl.col("_us") <= m_hi))
        .select("port_id", "_us", counter_bytes=pl.col("in_bytes"), counter_packets=pl.col("in_packets"))
        .unique(subset=["port_id", "_us"], keep="first")
        .collect()
        .join(ports, on="port_id", how="inner")
    )
    both = counters.join(sflow, on=["port_id", "_us"], how="full", coalesce=True).with_columns(
        sflow_bytes=pl.col("sflow_bytes").fill_null(0),
        samples=pl.col("samples").fill_null(0),
    )
    intervals = (
        both.with_columns(
            interval_start=pl.col("_us").cast(pl.Datetime("us", "UTC")),
            ratio=pl.when(pl.col("counter_bytes") > 0).then(pl.col("sflow_bytes") / pl.col("counter_bytes")),
        )
        .select("port_id", "interval_start", "sflow_bytes", "samples", "counter_bytes", "ratio")
        .sort("port_id", "interval_start")
    )
    need = min_samples(threshold)
    ratio = pl.col("sflow_bytes") / pl.col("counter_bytes")
    drift = pl.col("ratio") - 1.0
    seen = pl.max_horizontal(pl.col("samples").cast(pl.Float64), pl.col("expected_samples").fill_null(0.0))
    status = (
        pl.when((pl.col("counter_bytes") == 0) & (pl.col("sflow_bytes") == 0))
        .then(pl.lit("idle"))
        .when(pl.col("counter_bytes") == 0)
        .then(pl.lit("alert"))
        .when(seen < need)
        .then(pl.lit("few_samples"))
        .when(drift.abs() > threshold)
        .then(pl.lit("alert"))
        .otherwise(pl.lit("ok"))
    )
    windows = (
        both.filter(pl.col("counter_bytes").is_not_null())
        .with_columns(_w=(pl.col("_us") // window_us) * window_us)
        .group_by("port_id", "_w")
        .agg(
            intervals=pl.len(),
            sflow_bytes=pl.col("sflow_bytes").sum(),
            counter_bytes=pl.col("counter_bytes").sum(),
            samples=pl.col("samples").sum(),
            expected_samples=(pl.col("counter_packets") / pl.col("sampling_rate")).sum(),
        )
        .with_columns(ratio=pl.when(pl.col("counter_bytes") > 0).then(ratio))
        .with_columns(
            drift=drift,
            sampling_error_95=pl.when(pl.col("samples") > 0).then(
                1.96 * (BYTES_VARIANCE_FACTOR / pl.col("samples").cast(pl.Float64)).sqrt()
            ),
            status=status,
            window_start=pl.col("_w").cast(pl.Datetime("us", "UTC")),
            window_end=(pl.col("_w") + window_us).cast(pl.Datetime("us", "UTC")),
        )
        .select(_empty_windows().columns)
        .sort("port_id", "window_start")
    )
    return Reconciliation(intervals, windows.cast(dict(_empty_windows().schema)), threshold, window_s)  # type: ignore[arg-type]
