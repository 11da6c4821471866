"""Port outages from the same reads: operationally down, or device unreachable, kept apart.

Each read of a port gets a state:

* ``up``: the read succeeded and ifOperStatus is up(1);
* ``oper_down``: the read succeeded and ifOperStatus is down(2), dormant(5), notPresent(6)
  or lowerLayerDown(7);
* ``unreachable``: the read failed and so did every read of the same device and source in
  the same poll (reads of one device less than ``poll_gap_us`` apart form one poll);
* no state (carried over from the read before): testing(3), unknown(4), a missing status,
  or a failed read while the device answered for other ports (a port-level problem, for
  example a wrong ifIndex, which the data-quality score shows instead).

An outage is a run of consecutive reads in one non-up state. Its bounds are the widest
the polls allow, because availability is what the reads prove and an outage is the time
it cannot be proven: it starts at the last read that still showed the port up (the
failure may have come right after it) and ends at the first read of the next state. Two
outages of different causes that follow each other meet at the first read of the later
one, so they never overlap. With 5-minute polls each end is at most one poll interval
wider than the true outage: on a member's SLA credit ("1/30 of the fee per started day")
the cooperative errs towards its member, and each bound is a stored read that anyone can
check later. An outage still going on has no end (and no duration). Durations are whole
seconds, rounded up.

When a port has reads from several sources, only the preferred one is used
(snmp > import > sflow): sources poll at different times and interleaving them would
make up flapping.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from ingest.counters.catalog import SOURCE_PRIORITY, port_catalog, resolve_ports, to_us
from ingest.counters.lakeio import replace_days, scan, utc_day
from peerpool.config.model import Exchange

TABLE = "port_outages"
PART_KEY = "hygiene"
POLL_GAP_US = 60_000_000  # reads of one device closer than this belong to the same poll
DOWN_STATUSES = (2, 5, 6, 7)

STATUS_COLUMNS = ("t", "source", "device_id", "ifindex", "port_id", "ok", "if_oper_status")


def read_states(reads: pl.DataFrame, poll_gap_us: int = POLL_GAP_US) -> pl.DataFrame:
    """The state of every read (port-resolved reads with :data:`STATUS_COLUMNS`), nulls carried forward."""
    r = reads.select(STATUS_COLUMNS)
    priority = pl.col("source").replace_strict(
        SOURCE_PRIORITY, default=len(SOURCE_PRIORITY), return_dtype=pl.Int64
    )
    best = r.group_by("port_id").agg(_best=priority.min())
    r = r.join(best, on="port_id").filter(priority == pl.col("_best")).drop("_best")
    polls = (
        r.sort("device_id", "source", "t")
        .with_columns(
            _new=(
                (pl.col("t") - pl.col("t").shift(1) > poll_gap_us)
                | (pl.col("device_id") != pl.col("device_id").shift(1))
                | (pl.col("source") != pl.col("source").shift(1))
            ).fill_null(True)
        )
        .with_columns(_poll=pl.col("_new").cum_sum())
        .with_columns(_device_down=~pl.col("ok").fill_null(False).any().over("_poll"))
    )
    ok = pl.col("ok").fill_null(False)
    status = pl.col("if_oper_status")
    state = (
        pl.when(ok & (status == 1))
        .then(pl.lit("up"))
        .when(ok & status.is_in(DOWN_STATUSES))
        .then(pl.lit("oper_down"))
        .when(~ok & pl.col("_device_down"))
        .then(pl.lit("unreachable"))
        .otherwise(pl.lit(None, pl.String))
    )
    return (
        polls.with_columns(state=state)
        .sort("port_id", "t")
        .with_columns(state=pl.col("state").forward_fill().over("port_id"))
        .filter(pl.col("state").is_not_null())
        .select("port_id", "device_id", "t", "state")
    )


def outages(reads: pl.DataFrame, poll_gap_us: int = POLL_GAP_US) -> pl.DataFrame:
    """``port_outages`` rows (port_id, device_id, cause, start_at, end_at, duration_s) from reads."""
    states = read_states(reads, poll_gap_us)
    runs = (
        states.with_columns(
            _new=(
                (pl.col("state") != pl.col("state").shift(1))
                | (pl.col("port_id") != pl.col("port_id").shift(1))
            ).fill_null(True)
        )
        .with_columns(_run=pl.col("_new").cum_sum())
        .group_by("_run", maintain_order=True)
        .agg(
            pl.col("port_id").first(),
            pl.col("device_id").last(),
            pl.col("state").first(),
            first_t=pl.col("t").min(),
            last_t=pl.col("t").max(),
        )
        .with_columns(
            prev_state=pl.col("state").shift(1).over("port_id"),
            prev_last_t=pl.col("last_t").shift(1).over("port_id"),
            next_first_t=pl.col("first_t").shift(-1).over("port_id"),
        )
    )
    start = pl.when(pl.col("prev_state") == "up").then(pl.col("prev_last_t")).otherwise(pl.col("first_t"))
    return (
        runs.filter(pl.col("state") != "up")
        .with_columns(_start=start, _end=pl.col("next_first_t"))
        .select(
            "port_id",
            "device_id",
            pl.col("state").alias("cause"),
            pl.col("_start").cast(pl.Datetime("us", "UTC")).alias("start_at"),
            pl.col("_end").cast(pl.Datetime("us", "UTC")).alias("end_at"),
            (-((pl.col("_start") - pl.col("_end")) // 1_000_000)).alias("duration_s"),
        )
        .sort("start_at", "port_id")
    )


def refresh(lake: Path, exchange: Exchange, since: dt.datetime | None = None) -> tuple[int, list[Path]]:
    """Recompute outages from every stored read and rewrite the days that have reads (from ``since``'s day).

    Outages are computed from the whole raw history (only the few status columns are read),
    so an outage that began before ``since`` still gets its true start. Days without raw
    reads (past the raw retention) keep what was stored for them. Returns (outages found in
    the rewritten days, parts written).
    """
    raw = (
        scan(lake, "port_counters")
        .select(
            pl.col("polled_at").dt.epoch("us").alias("t"),
            "source",
            "device_id",
            "ifindex",
            "port_id",
            "ok",
            "if_oper_status",
        )
        .collect()
    )
    if raw.height == 0:
        return 0, []
    known, _unknown = resolve_ports(raw, port_catalog(exchange))
    found = outages(known.select(STATUS_COLUMNS))
    first_day = utc_day(int(raw["t"].min()))  # type: ignore[arg-type]
    if since is not None:
        first_day = max(first_day, since.astimezone(dt.UTC).date())
    last_day = utc_day(int(raw["t"].max()))  # type: ignore[arg-type]
    lo = to_us(dt.datetime(first_day.year, first_day.month, first_day.day, tzinfo=dt.UTC))
    hi = to_us(dt.datetime(last_day.year, last_day.month, last_day.day, tzinfo=dt.UTC)) + 86_400_000_000
    start_us = pl.col("start_at").dt.epoch("us")
    kept = found.filter((start_us >= lo) & (start_us < hi))
    parts = replace_days(lake, TABLE, kept, time_column="start_at", key=PART_KEY, window=(lo, hi))
    return kept.height, parts
