"""``peerpool collect``: receive sFlow / IPFIX / NetFlow v9 datagrams into spool files."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ingest.collector.listener import ListenerSpec, parse_listen
from ingest.collector.service import STATS_FILE, CollectorSettings, run_collector


def _specs(protocol: str, values: tuple[str, ...]) -> list[ListenerSpec]:
    if any(v.strip().lower() == "off" for v in values):
        return []
    return [parse_listen(protocol, v) for v in (values or ("",))]


@click.command(name="collect")
@click.option(
    "--spool",
    "spool",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for spool files (one sub-folder per protocol) and _stats.json.",
)
@click.option("--sflow", multiple=True, metavar="[HOST:]PORT|off", help="sFlow v5 listener (127.0.0.1:6343).")
@click.option("--ipfix", multiple=True, metavar="[HOST:]PORT|off", help="IPFIX listener (127.0.0.1:4739).")
@click.option(
    "--netflow", multiple=True, metavar="[HOST:]PORT|off", help="NetFlow v9 listener (127.0.0.1:2055)."
)
@click.option(
    "--rotate-seconds", default=60.0, show_default=True, help="Close and rename spool files this often."
)
@click.option(
    "--stats-seconds", default=10.0, show_default=True, help="Log counters and rewrite _stats.json."
)
@click.option(
    "--rcvbuf-bytes", default=32 << 20, show_default=True, help="Socket receive buffer to ask the kernel for."
)
@click.option(
    "--max-seconds", type=float, default=None, help="Stop after this many seconds (tests, replays)."
)
@click.option("--max-datagrams", type=int, default=None, help="Stop after receiving this many datagrams.")
@click.option("-v", "--verbose", is_flag=True, help="Log every rotation.")
def collect(
    spool: Path,
    sflow: tuple[str, ...],
    ipfix: tuple[str, ...],
    netflow: tuple[str, ...],
    rotate_seconds: float,
    stats_seconds: float,
    rcvbuf_bytes: int,
    max_seconds: float | None,
    max_datagrams: int | None,
    verbose: bool,
) -> None:
    """Receive flow datagrams on UDP and write them unchanged to spool files.

    Listens on 127.0.0.1 by default (sFlow 6343, IPFIX 4739, NetFlow v9 2055); give
    HOST:PORT to listen elsewhere, or 'off' to disable a listener. Nothing is decoded here:
    run 'peerpool decode SPOOL --lake LAKE' on the closed .spool files. Stops cleanly on
    SIGTERM/SIGINT; counters are logged and kept in SPOOL/_stats.json.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    specs = _specs("sflow5", sflow) + _specs("ipfix", ipfix) + _specs("netflow9", netflow)
    if not specs:
        raise click.UsageError("every listener is off; enable at least one of --sflow, --ipfix, --netflow")
    if rotate_seconds <= 0 or stats_seconds <= 0:
        raise click.UsageError("--rotate-seconds and --stats-seconds must be positive")
    settings = CollectorSettings(
        spool=spool,
        listeners=tuple(specs),
        rotate_seconds=rotate_seconds,
        stats_seconds=stats_seconds,
        rcvbuf_bytes=rcvbuf_bytes,
        max_seconds=max_seconds,
        max_datagrams=max_datagrams,
    )
    collector = run_collector(settings)
    total = sum(listener.counters.datagrams_spooled for listener in collector.listeners)
    click.echo(
        f"collector stopped ({collector.stop_reason}); {total} datagrams spooled; see {spool / STATS_FILE}"
    )
