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

STATE_NAMES = ("up", "oper_down", "unreachable")  # state codes 0, 1, 2
READ_COLUMNS = ("t", "ok", "if_oper_status", "port", "device", "priority")


def read_states(reads: pl.DataFrame, poll_gap_us: int = POLL_GAP_US) -> pl.DataFrame:
    """The state code of every read, carried forward over reads without a state.

    ``reads`` has :data:`READ_COLUMNS`: ``port`` and ``device`` are integer ids, ``priority``
    the source's rank (lower is preferred). Returns (port, t, state) sorted by port and time.
    Everything is integer work on sorted columns (a month of 1,000 ports is 8.6 M reads).
    """
    best = reads.group_by("port").agg(pl.col("priority").min().alias("_best"))
    r = reads.join(best, on="port").filter(pl.col("priority") == pl.col("_best")).drop("_best")
    polls = (
        r.sort("device", "priority", "t")
        .with_columns(
            _new=(
                (pl.col("t") - pl.col("t").shift(1) > poll_gap_us)
                | (pl.col("device") != pl.col("device").shift(1))
                | (pl.col("priority") != pl.col("priority").shift(1))
            ).fill_null(True)
        )
        .with_columns(_poll=pl.col("_new").cum_sum())
    )
    answered = (
        polls.group_by("_poll").agg(pl.col("ok").fill_null(False).any().alias("_answered")).sort("_poll")
    )
    polls = polls.join(answered, on="_poll", how="left")
    ok = pl.col("ok").fill_null(False)
    status = pl.col("if_oper_status")
    state = (
        pl.when(ok & (status == 1))
        .then(pl.lit(0, pl.Int8))
        .when(ok & status.is_in(DOWN_STATUSES))
        .then(pl.lit(1, pl.Int8))
        .when(~ok & ~pl.col("_answered"))
        .then(pl.lit(2, pl.Int8))
        .otherwise(pl.lit(None, pl.Int8))
    )
    by_port = polls.select("port", "t", state.alias("state")).sort("port", "t")
    # forward fill within a port without a window: carry (state, port) and drop what crossed a port
    carried_port = pl.when(pl.col("state").is_not_null()).then(pl.col("port")).forward_fill()
    return by_port.with_columns(
        state=pl.when(carried_port == pl.col("port")).then(pl.col("state").forward_fill()),
    ).filter(pl.col("state").is_not_null())


def outages(reads: pl.DataFrame, catalog: pl.DataFrame, poll_gap_us: int = POLL_GAP_US) -> pl.DataFrame:
    """``port_outages`` rows (port_id, device_id, cause, start_at, end_at, duration_s) from reads.

    ``catalog`` is the port catalogue whose row numbers are the reads' ``port`` ids.
    """
    states = read_states(reads, poll_gap_us)
    runs = (
        states.with_columns(
            _new=(
                (pl.col("state") != pl.col("state").shift(1)) | (pl.col("port") != pl.col("port").shift(1))
            ).fill_null(True)
        )
        .with_columns(_run=pl.col("_new").cum_sum())
        .group_by("_run", maintain_order=True)
        .agg(
            pl.col("port").first(),
            pl.col("state").first(),
            first_t=pl.col("t").min(),
            last_t=pl.col("t").max(),
        )
    )
    same_before = pl.col("port").shift(1) == pl.col("port")
    same_after = pl.col("port").shift(-1) == pl.col("port")
    runs = runs.with_columns(
        prev_state=pl.when(same_before).then(pl.col("state").shift(1)),
        prev_last_t=pl.when(same_before).then(pl.col("last_t").shift(1)),
        next_first_t=pl.when(same_after).then(pl.col("first_t").shift(-1)),
    )
    start = pl.when(pl.col("prev_state") == 0).then(pl.col("prev_last_t")).otherwise(pl.col("first_t"))
    numbered = catalog.with_row_index("port").select(pl.col("port").cast(pl.Int64), "port_id", "device_id")
    return (
        runs.filter(pl.col("state") != 0)
        .with_columns(_start=start, _end=pl.col("next_first_t"), port=pl.col("port").cast(pl.Int64))
        .join(numbered, on="port", how="left")
        .select(
            "port_id",
            "device_id",
            pl.col("state")
            .replace_strict(dict(enumerate(STATE_NAMES)), return_dtype=pl.String)
            .alias("cause"),
            pl.col("_start").cast(pl.Datetime("us", "UTC")).alias("start_at"),
            pl.col("_end").cast(pl.Datetime("us", "UTC")).alias("end_at"),
            (-((pl.col("_start") - pl.col("_end")) // 1_000_000)).alias("duration_s"),
        )
        .sort("start_at", "port_id")
    )


def status_reads(raw: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """Raw status reads (t, source, device_id, ifindex, port_id, ok, if_oper_status) -> :data:`READ_COLUMNS`.

    Ports are resolved once per distinct (device, ifindex, source, port) key; reads of
    unconfigured ports are dropped.
    """
    keys = ["device_id", "ifindex", "source", "port_id"]
    distinct = raw.group_by(keys).len().drop("len").with_columns(_given=pl.col("port_id"))
    resolved, _unknown = resolve_ports(distinct, catalog)
    numbered = catalog.with_row_index("port").select("port", "port_id")
    ids = (
        resolved.join(numbered, on="port_id", how="inner")
        .with_columns(
            device=pl.col("device_id").rank("dense").cast(pl.Int64),
            priority=pl.col("source").replace_strict(
                SOURCE_PRIORITY, default=len(SOURCE_PRIORITY), return_dtype=pl.Int64
            ),
        )
        .select(
            "device_id", "ifindex", "source", pl.col("_given").alias("port_id"), "port", "device", "priority"
        )
    )
    return raw.join(ids, on=keys, how="inner", nulls_equal=True).select(READ_COLUMNS)


LOOKBACK = dt.timedelta(days=7)


def _day_start_us(day: dt.date) -> int:
    return to_us(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))


def refresh(
    lake: Path, exchange: Exchange, since: dt.datetime | None = None, lookback: dt.timedelta = LOOKBACK
) -> tuple[int, list[Path]]:
    """Recompute outages and rewrite the days they start on; returns (outages in those days, parts).

    Without ``since`` every stored read is used and every day that has reads is rewritten.
    With ``since``, reads from ``lookback`` (7 days) before it are used, and rewritten are
    the days from ``since``'s day to the last read, plus the earlier start days (after the
    lookback horizon, with a day to spare) of outages still going on at ``since``, so one that began
    yesterday gets its end when it ends today. Days without raw reads (past the raw
    retention) keep what was stored for them. Only the few status columns are read.
    """
    frame = scan(lake, "port_counters").select(
        pl.col("polled_at").dt.epoch("us").alias("t"),
        pl.col("source").cast(pl.Categorical),
        pl.col("device_id").cast(pl.Categorical),
        "ifindex",
        pl.col("port_id").cast(pl.Categorical),
        "ok",
        "if_oper_status",
    )
    horizon = None if since is None else since.astimezone(dt.UTC) - lookback
    if horizon is not None:
        frame = frame.filter(pl.col("t") >= to_us(horizon))
    raw = frame.collect().with_columns(pl.col("source", "device_id", "port_id").cast(pl.String))
    if raw.height == 0:
        return 0, []
    catalog = port_catalog(exchange)
    found = outages(status_reads(raw, catalog), catalog)
    first_day = utc_day(int(raw["t"].min()))  # type: ignore[arg-type]
    last_day = utc_day(int(raw["t"].max()))  # type: ignore[arg-type]
    days: set[dt.date] = set()
    start_day = pl.col("start_at").dt.date()
    if since is not None and horizon is not None:
        since_us = to_us(since)
        first_day = max(first_day, since.astimezone(dt.UTC).date())
        still_open = found.filter(
            (pl.col("start_at").dt.epoch("us") < since_us)
            & (pl.col("end_at").is_null() | (pl.col("end_at").dt.epoch("us") >= since_us))
            # a full day after the horizon: the read before the outage's first one is surely loaded
            & (start_day > horizon.date() + dt.timedelta(days=1))
        )
        days |= set(still_open.select(start_day.unique()).to_series().to_list())
    day = first_day
    while day <= last_day:
        days.add(day)
        day += dt.timedelta(days=1)
    kept = found.filter(start_day.is_in(sorted(days)))
    parts: list[Path] = []
    for one in sorted(days):
        lo = _day_start_us(one)
        parts += replace_days(
            lake, TABLE, kept, time_column="start_at", key=PART_KEY, window=(lo, lo + 86_400_000_000)
        )
    return kept.height, parts
