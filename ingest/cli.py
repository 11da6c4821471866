"""``peerpool decode``: spool and pcap files into the lake (the same code path as the Airflow task)."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.pipeline import FileSummary, PipelineSummary, process_files
from peerpool.config.model import Exchange


def _load_config(path: Path | None) -> Exchange | None:
    if path is None and not os.environ.get("PEERPOOL_CONFIG"):
        return None
    from peerpool.config.load import load_exchange

    return load_exchange(path)


@click.command(name="decode")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
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
    "--asn-db", type=click.Path(dir_okay=False, path_type=Path), default=None, help="pyasn IPASN file."
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
            list(inputs),
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
