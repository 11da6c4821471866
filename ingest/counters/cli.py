"""``peerpool counters``: poll, import, clean, quality, reconcile (thin commands over the library)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from peerpool.config.model import Exchange
from peerpool.errors import InputError

FC = TypeVar("FC", bound=Callable[..., object] | click.Command)

LAKE = click.option(
    "--lake",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PEERPOOL_LAKE",
    required=True,
    help="Lake directory (or PEERPOOL_LAKE).",
)


def _config_option(required: bool) -> Callable[[FC], FC]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PEERPOOL_CONFIG",
        required=required,
        help="exchange.toml (or PEERPOOL_CONFIG).",
    )


def _load(path: Path) -> Exchange:
    from peerpool.config.load import load_exchange

    return load_exchange(path)


def parse_time(value: str | None, option: str) -> dt.datetime | None:
    """ISO 8601 with a zone (``Z`` or an offset); a bare date means 00:00 UTC."""
    if value is None:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option} {value!r} is not an ISO 8601 time; write it like 2026-10-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return moment.replace(tzinfo=dt.UTC)
        raise InputError(f"{option} {value!r} has no time zone; add Z for UTC or an offset like +02:00")
    return moment.astimezone(dt.UTC)


def parse_duration(value: str, option: str = "--window") -> int:
    """``1h``, ``30m``, ``300s``, ``1d`` or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value)
    if not match:
        raise InputError(f"{option} {value!r} is not a duration; write it like 1h, 30m or 3600")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@click.group()
def counters() -> None:
    """Port counters: SNMP polling, import, hygiene (rates, outages), quality, reconciliation."""


@counters.command()
@_config_option(True)
@LAKE
@click.option(
    "--once", is_flag=True, help="Poll once now and exit (otherwise poll at every interval boundary)."
)
@click.option(
    "--poll-id", help="Time that names this poll (ISO 8601); a re-run with the same id replaces it."
)
@click.option("--interval", default=300, show_default=True, help="Seconds between polls when not --once.")
@click.option("--cycles", type=int, help="Stop after this many polls (default: run until interrupted).")
@click.option("--max-varbinds", default=48, show_default=True, help="Varbinds per SNMP request.")
@click.option("--in-flight", default=2, show_default=True, help="Requests in flight per device.")
def poll(
    config_path: Path,
    lake: Path,
    once: bool,
    poll_id: str | None,
    interval: int,
    cycles: int | None,
    max_varbinds: int,
    in_flight: int,
) -> None:
    """Read IF-MIB counters of every configured port and store the raw reads (failures too)."""
    from ingest.counters.poller import PollOptions, PollStats, poll_forever, poll_once

    exchange = _load(config_path)
    options = PollOptions(max_varbinds=max_varbinds, in_flight_per_device=in_flight)

    def report(stats: PollStats) -> None:
        click.echo(
            f"poll {stats.poll_time.isoformat()}: {stats.ports} ports on {stats.devices} devices, "
            f"{stats.ok} ok, {stats.failed} failed, {stats.seconds:.2f} s, {len(stats.parts)} parts"
        )
        for device, error in sorted(stats.errors.items()):
            click.echo(f"  {device}: {error}", err=True)

    if once or poll_id is not None:
        report(poll_once(exchange, lake, parse_time(poll_id, "--poll-id"), options=options))
        return
    try:
        poll_forever(exchange, lake, interval_s=interval, cycles=cycles, options=options, report=report)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@counters.command("import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Import every file in this folder.",
)
@LAKE
@_config_option(False)
@click.option("--from", "start", help="Only rows polled at or after this time (ISO 8601).")
@click.option("--to", "end", help="Only rows polled before this time (ISO 8601).")
def import_(
    files: tuple[Path, ...],
    directory: Path | None,
    lake: Path,
    config_path: Path | None,
    start: str | None,
    end: str | None,
) -> None:
    """Import counter reads from CSV / JSON files exported by other systems (source "import")."""
    from ingest.counters.importer import files_in, import_files

    paths = list(files) + (files_in(directory) if directory else [])
    if not paths:
        raise InputError("no files to import; name them or give --dir")
    exchange = _load(config_path) if config_path else None
    window = (parse_time(start, "--from"), parse_time(end, "--to"))
    done, bad = import_files(paths, lake, exchange, window)
    for result in done:
        extra = []
        if result.outside_window:
            extra.append(f"{result.outside_window} outside --from/--to")
        if result.counters_dropped:
            extra.append(f"counters dropped from {result.counters_dropped} failed rows")
        if result.unresolved_ports:
            extra.append(f"{result.unresolved_ports} rows with no configured port")
        if result.ignored_columns:
            extra.append("ignored columns: " + ", ".join(result.ignored_columns))
        click.echo(
            f"{result.path}: {result.rows} rows ({result.ok} ok, {result.failed} failed)"
            + (f"; {'; '.join(extra)}" if extra else "")
        )
    for problems in bad:
        click.echo(f"error: {problems}", err=True)
    total = sum(r.rows for r in done)
    click.echo(f"imported {total} rows from {len(done)} file(s); {len(bad)} file(s) refused")
    if bad:
        raise SystemExit(bad[0].exit_code)


@counters.command()
@LAKE
@_config_option(True)
@click.option("--gap-policy", type=click.Choice(["exclude", "zero"]), default="exclude", show_default=True)
@click.option("--start", "--from", "start", help="First interval (ISO 8601; default: first read).")
@click.option("--end", "--to", "end", help="End of the period, excluded (ISO 8601; default: last read).")
def clean(lake: Path, config_path: Path, gap_policy: str, start: str | None, end: str | None) -> None:
    """Compute clean 5-minute rates (port_rates_5min) and outages (port_outages) from raw reads."""
    from ingest.counters.hygiene import run

    stats = run(
        lake,
        _load(config_path),
        gap_policy="zero" if gap_policy == "zero" else "exclude",
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
    )
    period = f"{stats.start:%Y-%m-%d %H:%M} to {stats.end:%Y-%m-%d %H:%M} UTC" if stats.start else "no reads"
    click.echo(
        f"{period}: {stats.reads} reads, {stats.intervals} port-intervals, {stats.trusted} trusted, "
        f"{stats.gaps} gap, {stats.failed_read} failed-read, {stats.reset} reset, {stats.wrap} wrap, "
        f"{stats.over_speed} over-speed; {stats.outages} outages; {stats.seconds:.1f} s"
    )
    if stats.reads_unknown_port:
        click.echo(
            f"warning: {stats.reads_unknown_port} reads of unconfigured ports ignored "
            f"(e.g. {', '.join(stats.unknown_ports)}); add them to [[ports]] or fix device/ifindex",
            err=True,
        )


@counters.command()
@LAKE
@_config_option(True)
@click.option("--month", required=True, help="Billing month, YYYY-MM (in the billing time zone).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def quality(lake: Path, config_path: Path, month: str, as_json: bool) -> None:
    """Data-quality score per port: share of the month's intervals with a trustworthy rate."""
    from ingest.counters.quality import quality as compute

    table = compute(lake, _load(config_path), month)
    if as_json:
        click.echo(json.dumps(table.to_dicts(), indent=2))
        return
    click.echo(
        f"{'port':<28} {'intervals':>9} {'trusted':>8} {'gap':>6} {'failed':>6} {'reset':>6} "
        f"{'speed':>6} {'missing':>8} {'score':>8}"
    )
    for row in table.iter_rows(named=True):
        click.echo(
            f"{row['port_id']:<28} {row['intervals']:>9} {row['trusted']:>8} {row['gap']:>6} "
            f"{row['failed_read']:>6} {row['reset']:>6} {row['over_speed']:>6} {row['missing']:>8} "
            f"{row['score']:>8.2%}"
        )


@counters.command()
@LAKE
@_config_option(True)
@click.option("--threshold", default=0.10, show_default=True, help="Allowed drift of sflow/counter from 1.")
@click.option("--window", default="1h", show_default=True, help="Window the bytes are summed over (e.g. 1h).")
@click.option("--start", "--from", "start", help="From this time (ISO 8601).")
@click.option("--end", "--to", "end", help="Until this time, excluded (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--per-interval", is_flag=True, help="Also print every port and interval compared.")
def reconcile(
    lake: Path,
    config_path: Path,
    threshold: float,
    window: str,
    start: str | None,
    end: str | None,
    as_json: bool,
    per_interval: bool,
) -> None:
    """sFlow-estimated in-bytes against counter in-bytes per member port; lists alerts (exit code 0)."""
    from ingest.counters.reconcile import reconcile as compute

    result = compute(
        lake,
        _load(config_path),
        threshold=threshold,
        window_s=parse_duration(window),
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
    )
    alerts = result.alerts
    if as_json:
        payload = {
            "threshold": threshold,
            "window_s": result.window_s,
            "windows_checked": result.windows.height,
            "status_counts": dict(result.windows.group_by("status").len().sort("status").iter_rows()),
            "alerts": [
                {
                    **row,
                    "window_start": row["window_start"].isoformat(),
                    "window_end": row["window_end"].isoformat(),
                }
                for row in alerts.to_dicts()
            ],
        }
        if per_interval:
            payload["intervals"] = [
                {**row, "interval_start": row["interval_start"].isoformat()}
                for row in result.intervals.to_dicts()
            ]
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(
        f"{result.windows.height} port-windows checked, {alerts.height} alert(s) (threshold ±{threshold:.0%})"
    )
    if per_interval:
        for row in result.intervals.iter_rows(named=True):
            ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.3f}"
            click.echo(
                f"{row['port_id']} {row['interval_start']:%Y-%m-%d %H:%M}Z sflow {row['sflow_bytes']} "
                f"counter {row['counter_bytes']} ratio {ratio}"
            )
    for row in alerts.iter_rows(named=True):
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.3f}"
        click.echo(
            f"ALERT {row['port_id']} {row['window_start']:%Y-%m-%d %H:%M}Z: sflow/counter = {ratio} "
            f"(sflow {row['sflow_bytes']} B, counter {row['counter_bytes']} B, {row['samples']} samples)"
        )
