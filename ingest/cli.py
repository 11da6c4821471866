"""``peerpool decode``: spool and pcap files into the lake (the same code path as the Airflow task)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.pipeline import FileSummary, PipelineSummary, process_files
from ingest.spool import files_in_interval
from peerpool.config.model import Exchange
from peerpool.errors import InputError


def _load_config(path: Path | None) -> Exchange | None:
    if path is None and not os.environ.get("PEERPOOL_CONFIG"):
        return None
    from peerpool.config.load import load_exchange

    return load_exchange(path)


def _utc(text: str, option: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-10-01T10:05:00Z)", param_hint=option
        ) from exc
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _interval_inputs(spool: Path, start_text: str | None, end_text: str | None) -> list[Path]:
    if not start_text or not end_text:
        raise click.UsageError("--spool needs --from and --to (the data interval, ISO 8601)")
    start, end = _utc(start_text, "--from"), _utc(end_text, "--to")
    if not spool.is_dir():
        raise InputError(
            f"{spool}: no such spool directory; start 'peerpool collect --spool {spool}' or fix the path"
        )
    closed, still_open = files_in_interval(spool, start, end)
    if still_open:
        names = ", ".join(p.name for p in still_open[:5])
        raise InputError(
            f"{len(still_open)} spool file(s) of {start.isoformat()} .. {end.isoformat()} are still open "
            f"({names}); the collector closes them at its next rotation: retry in a minute"
        )
    return closed


@click.command(name="decode")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--spool",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Take the closed spool files of this folder whose name time is in [--from, --to).",
)
@click.option("--from", "start_text", default=None, help="Interval start (ISO 8601, UTC if no zone).")
@click.option("--to", "end_text", default=None, help="Interval end, exclusive.")
@click.option(
    "--lake", required=True, type=click.Path(file_okay=False, path_type=Path), help="The Parquet lake."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="exchange.toml (members, ports, MACs, switches, border routers); default $PEERPOOL_CONFIG.",
)
@click.option(
    "--asn-db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="PEERPOOL_ASN_DB",
    help="pyasn IPASN file; default $PEERPOOL_ASN_DB.",
)
@click.option("--force", is_flag=True, help="Re-process inputs the ledger says are already processed.")
@click.option(
    "--retention-days",
    default=35,
    show_default=True,
    help="Keep raw flows this many days before the newest data processed (the matrix is kept).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def decode(
    inputs: tuple[Path, ...],
    spool: Path | None,
    start_text: str | None,
    end_text: str | None,
    lake: Path,
    config_path: Path | None,
    asn_db: Path | None,
    force: bool,
    retention_days: int,
    quiet: bool,
) -> None:
    """Decode spool files, folders of spool files or pcap files into the lake.

    sFlow v5, IPFIX and NetFlow v9 are decoded; flows, the member matrix, port counters
    (sFlow counter samples), loss accounting, quarantine and unknown MACs are written as part
    files named after each input, so processing an input again replaces its parts. Inputs the
    ledger has already seen with the same content are skipped unless --force.
    """
    paths = list(inputs)
    if spool is not None:
        paths += _interval_inputs(spool, start_text, end_text)
        if not paths:
            click.echo(f"no closed spool files in {spool} for {start_text} .. {end_text}: nothing to do")
            return
    elif not paths:
        raise click.UsageError("give INPUTS (spool/pcap files or folders) or --spool DIR --from T --to T")
    exchange = _load_config(config_path)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]decode"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[name]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("decode", total=None, name="")

        def found(n: int) -> None:
            progress.update(task, total=n)

        def advance(result: FileSummary) -> None:
            progress.update(task, advance=1, name=Path(result.path).name)

        summary = process_files(
            paths,
            lake,
            exchange=exchange,
            asn_db=asn_db,
            force=force,
            retention_days=retention_days,
            progress=advance,
            files_found=found,
        )
    print_summary(summary, Console())


def print_summary(summary: PipelineSummary, console: Console) -> None:
    processed = [f for f in summary.files if f.status == "processed"]
    unchanged = [f for f in summary.files if f.status == "unchanged"]
    table = Table(title="peerpool decode", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("files processed", len(processed)),
        ("files unchanged (skipped)", len(unchanged)),
        ("datagrams", summary.total("datagrams")),
        ("sflow datagrams", summary.total("sflow_datagrams")),
        ("ipfix messages", summary.total("ipfix_datagrams")),
        ("netflow v9 packets", summary.total("netflow9_datagrams")),
        ("sflow flow samples", summary.total("flow_samples")),
        ("sflow counter samples", summary.total("counter_samples")),
        ("ipfix / v9 flow records", summary.total("flow_records")),
        ("samples in the member matrix", summary.total("matrix_samples")),
        ("quarantined datagrams", summary.total("quarantined")),
        ("ipfix / v9 values the lake cannot hold (stored as null)", summary.total("values_out_of_range")),
        ("damaged spool records", summary.total("spool_damaged_records")),
        ("samples with an unknown mac", summary.total("unknown_mac_samples")),
        ("datagrams missing (sequence gaps)", summary.total("datagrams_missing")),
        ("samples / records missing", summary.total("samples_missing")),
        ("exporter restarts seen", summary.total("loss_restarts")),
        ("non-flow datagrams ignored (pcap)", summary.total("ignored")),
        ("flows partitions removed (retention)", len(summary.retention_removed)),
    ]
    for what, count in rows:
        table.add_row(what, f"{count:,}")
    console.print(table)
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
