"""Freshness and quality checks that fail loudly: ``peerpool check exporters|quality``.

The DAGs run these after ingest and after each build. Every check is evaluated at a given
time (the run's data interval end), never at "now", so a backfill judges the past as it was.
A failing check exits non-zero with one line per problem saying what is wrong and where to look.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import click
import duckdb

from peerpool.config.load import load_exchange
from peerpool.config.model import Exchange
from peerpool.errors import PeerpoolError
from peerpool.lake import glob as lake_glob


class CheckFailed(PeerpoolError):
    """One or more checks failed; the message lists every problem."""

    exit_code = 10


@dataclass(frozen=True)
class Problem:
    check: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.detail}"


def parse_duration(text: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration; write e.g. 15m, 1h, 90s")
    value, unit = int(match.group(1)), match.group(2)
    return dt.timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def _parquet_glob(lake: Path, table: str) -> str | None:
    root = lake / table
    if not root.is_dir() or not any(root.rglob("*.parquet")):
        return None
    return lake_glob(lake, table)


def last_heard(lake: Path, at: dt.datetime, lookback: dt.timedelta) -> dict[str, dt.datetime]:
    """Last time each exporter address was heard from, within ``lookback`` before ``at``.

    Two sources: the exact arrival time of its newest flow row, and the loss table, which counts
    every datagram of an exporter per 5-minute interval (counter-only datagrams included); a
    datagram there counts as heard at the interval's end (at most ``at``).
    """
    heard: dict[str, dt.datetime] = {}
    con = duckdb.connect()
    flows = _parquet_glob(lake, "flows")
    if flows is not None:
        days = sorted({(at - lookback).date().isoformat(), at.date().isoformat()})
        rows = con.execute(
            f"""
            select exporter_address, max(received_at)
            from read_parquet('{flows}', hive_partitioning = true, union_by_name = true)
            where cast(date as varchar) in ({", ".join("?" for _ in days)})
              and received_at > ? and received_at <= ?
            group by 1
            """,
            [*days, at - lookback, at],
        ).fetchall()
        heard.update({str(address): when for address, when in rows})
    loss = _parquet_glob(lake, "flow_loss")
    if loss is not None:
        rows = con.execute(
            f"""
            select exporter_address, least(max(interval_start) + interval 5 minute, ?)
            from read_parquet('{loss}', hive_partitioning = true, union_by_name = true)
            where datagrams_received > 0 and interval_start >= ? and interval_start < ?
            group by 1
            """,
            [at, at - lookback, at],
        ).fetchall()
        for address, when in rows:
            key = str(address)
            heard[key] = max(heard.get(key, when), when)
    return heard


def check_exporters(
    lake: Path, exporters: dict[str, str], at: dt.datetime, silent_after: dt.timedelta
) -> list[Problem]:
    """An exporter (address -> device name) silent for ``silent_after`` before ``at`` is a problem."""
    heard = last_heard(lake, at, lookback=max(silent_after * 4, dt.timedelta(hours=1)))
    problems = []
    for address, device in sorted(exporters.items()):
        when = heard.get(address)
        if when is None or at - when > silent_after:
            since = f"last datagram at {when.isoformat()}" if when else "no datagram in the last hour"
            problems.append(
                Problem(
                    "silent exporter",
                    f"{device} ({address})",
                    f"{since}, more than {silent_after} before {at.isoformat()}; "
                    "check the device's sFlow/IPFIX export and the collector",
                )
            )
    return problems


def check_sample_loss(lake: Path, at: dt.datetime, window: dt.timedelta, threshold: float) -> list[Problem]:
    """Share of samples lost per exporter over ``window`` before ``at`` above ``threshold``."""
    pattern = _parquet_glob(lake, "flow_loss")
    if pattern is None:
        return []
    con = duckdb.connect()
    rows = con.execute(
        f"""
        select exporter_address, sum(samples_received), sum(samples_missing)
        from read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)
        where interval_start >= ? and interval_start < ?
        group by 1
        """,
        [at - window, at],
    ).fetchall()
    problems = []
    for address, received, missing in rows:
        total = (received or 0) + (missing or 0)
        if total and (missing or 0) / total > threshold:
            problems.append(
                Problem(
                    "sample loss",
                    str(address),
                    f"{missing} of {total} samples missing ({missing / total:.1%}) over {window}; "
                    f"threshold {threshold:.1%}: check the collector's socket drops and the exporter's rate",
                )
            )
    return problems


def expected_exporters(exchange: Exchange, day: dt.date) -> dict[str, str]:
    """Exporters that must be heard from: switches with a connected edge port (sFlow is sampled
    on edge ports only, so a switch without one has nothing to send) and every border router."""
    active = {
        p.switch
        for p in exchange.ports
        if p.connected <= day and (p.disconnected is None or day < p.disconnected)
    }
    exporters = {
        s.sflow_agent_address or s.management_address: s.id for s in exchange.switches if s.id in active
    }
    exporters.update({r.flow_exporter_address: r.id for r in exchange.border_routers})
    return exporters


def _fail_if(problems: list[Problem], what: str) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise CheckFailed(f"{len(problems)} {what} problem(s):\n{lines}")
    click.echo(f"{what}: ok")


@click.group()
def check() -> None:
    """Freshness and quality checks (exit non-zero with every problem listed)."""


@check.command("exporters")
@click.option("--lake", type=click.Path(path_type=Path), required=True, envvar="PEERPOOL_LAKE")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, envvar="PEERPOOL_CONFIG"
)
@click.option("--at", "at_text", required=True, help="evaluate at this time (ISO 8601: the interval end)")
@click.option("--silent-after", default="15m", show_default=True, help="an exporter silent this long fails")
@click.option("--loss-window", default="1h", show_default=True)
@click.option("--loss-threshold", default=0.05, show_default=True, help="share of samples lost that fails")
def exporters_command(
    lake: Path, config_path: Path, at_text: str, silent_after: str, loss_window: str, loss_threshold: float
) -> None:
    """Every configured exporter heard from recently; sample loss under the threshold."""
    exchange = load_exchange(config_path)
    at = dt.datetime.fromisoformat(at_text)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    exporters = expected_exporters(exchange, at.date())
    problems = check_exporters(lake, exporters, at, parse_duration(silent_after))
    problems += check_sample_loss(lake, at, parse_duration(loss_window), loss_threshold)
    _fail_if(problems, "exporter")


def check_reconciliation(
    lake: Path,
    config_path: Path,
    threshold: float,
    window: dt.timedelta,
    recent: dt.timedelta | None = dt.timedelta(days=1),
) -> list[Problem]:
    """sFlow against counters per member port: a window drifting beyond the threshold is a problem.

    Only windows that end within ``recent`` of the newest compared window count (None: all): the
    check guards fresh data, and an old alert (still listed by ``peerpool counters reconcile`` and
    the operations dashboard) must not fail every later run."""
    from ingest.counters.reconcile import reconcile

    result = reconcile(
        lake, load_exchange(config_path), threshold=threshold, window_s=int(window.total_seconds())
    )
    alerts = result.alerts
    if recent is not None and result.windows.height:
        newest = result.windows["window_end"].max()
        assert isinstance(newest, dt.datetime)
        alerts = alerts.filter(result.alerts["window_end"] > newest - recent)
    problems = []
    for row in alerts.sort(["port_id", "window_start"]).iter_rows(named=True):
        ratio = row["ratio"]
        shown = "sflow saw traffic, counters none" if ratio is None else f"sflow/counters = {ratio:.3f}"
        problems.append(
            Problem(
                "reconciliation",
                f"port {row['port_id']} {row['window_start']:%Y-%m-%d %H:%M}Z",
                f"{shown} beyond ±{threshold:.0%}: check the sampling rate, sample loss, "
                "egress sampling or the port's MAC addresses",
            )
        )
    return problems


@check.command("quality")
@click.option("--lake", type=click.Path(path_type=Path), required=True, envvar="PEERPOOL_LAKE")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, envvar="PEERPOOL_CONFIG"
)
@click.option("--warehouse", type=click.Path(path_type=Path), default=None, envvar="PEERPOOL_WAREHOUSE")
@click.option("--threshold", default=0.10, show_default=True, help="allowed sFlow/counter drift")
@click.option("--window", default="1h", show_default=True, help="reconciliation window")
@click.option(
    "--recent",
    default="1d",
    show_default=True,
    help="only windows ending this close to the newest one count (e.g. 6h, 2d)",
)
def quality_command(
    lake: Path, config_path: Path, warehouse: Path | None, threshold: float, window: str, recent: str
) -> None:
    """sFlow reconciles with counters (the most recent windows); the serving file was published."""
    problems = check_reconciliation(
        lake, config_path, threshold, parse_duration(window), parse_duration(recent)
    )
    if warehouse is not None and not (warehouse / "serving.duckdb").exists():
        problems.append(
            Problem("serving", str(warehouse), "no serving.duckdb: 'peerpool build' did not publish")
        )
    _fail_if(problems, "quality")
