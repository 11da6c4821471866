"""``peerpool simulate``: write a deterministic simulated exchange to a directory."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from peerpool.simulate.engine import Simulation, SimulationOptions, Summary, prepare_output
from peerpool.simulate.timegrid import DEFAULT_START, INTERVAL_S, parse_start


def _rate(value: str) -> int | None:
    if value.strip().lower() == "auto":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is neither 'auto' nor a whole number") from None


@click.command(name="simulate")
@click.option("--members", type=int, default=30, show_default=True, help="Member networks (3 to 2000).")
@click.option(
    "--days", type=int, default=31, show_default=True, help="Calendar days (Europe/Warsaw) to simulate."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output directory."
)
@click.option(
    "--start",
    default=DEFAULT_START,
    show_default=True,
    help="YYYY-MM-DD (00:00 Europe/Warsaw) or an ISO date-time with Z or an offset, on a 5-minute boundary.",
)
@click.option(
    "--sampling-rate",
    default="auto",
    show_default=True,
    help="sFlow 1-in-N on every switch; auto = smallest power of two giving at most "
    "--samples-per-member-day flow samples per member and day.",
)
@click.option(
    "--router-sampling-rate",
    default="auto",
    show_default=True,
    help="IPFIX / NetFlow v9 1-in-N on the border routers; auto = as for sFlow, "
    "with --records-per-member-day.",
)
@click.option(
    "--samples-per-member-day",
    type=int,
    default=1000,
    show_default=True,
    help="Target of --sampling-rate auto: sFlow flow samples per member and day.",
)
@click.option(
    "--records-per-member-day",
    type=int,
    default=300,
    show_default=True,
    help="Target of --router-sampling-rate auto: sampled transit packets per member and day.",
)
@click.option(
    "--traffic-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply every member's traffic (ports are sized to the result).",
)
@click.option(
    "--counter-interval",
    type=int,
    default=INTERVAL_S,
    show_default=True,
    help="Seconds between sFlow counter samples of a port (must divide 300).",
)
@click.option("--no-flows", is_flag=True, help="Counters, configuration and truth only (no spool files).")
@click.option("--force", is_flag=True, help="Replace the simulator's files in a non-empty --out.")
def simulate(
    members: int,
    days: int,
    seed: int,
    out: Path,
    start: str,
    sampling_rate: str,
    router_sampling_rate: str,
    samples_per_member_day: int,
    records_per_member_day: int,
    traffic_scale: float,
    counter_interval: int,
    no_flows: bool,
    force: bool,
) -> None:
    """Write a simulated exchange: exchange.toml, ixf.json, rib.mrt, spool files (sFlow v5, IPFIX,
    NetFlow v9), SNMP counter CSVs and the ground truth (Parquet) to OUT.

    Deterministic: the same options give byte-identical files.
    """
    options = SimulationOptions(
        members=members,
        days=days,
        seed=seed,
        out=out,
        start=parse_start(start),
        sampling_rate=_rate(sampling_rate),
        router_sampling_rate=_rate(router_sampling_rate),
        samples_per_member_day=samples_per_member_day,
        records_per_member_day=records_per_member_day,
        traffic_scale=traffic_scale,
        counter_interval_s=counter_interval,
        flows=not no_flows,
        force=force,
    )
    console = Console(stderr=True)
    sim = Simulation(options)
    prepare_output(options.out, options.force)  # refuse a busy --out before any progress is drawn
    rate, router_rate, samples_day, records_day = sim.plan_sampling()
    if options.flows:
        console.print(
            f"sFlow 1:{rate:,} (~{samples_day:,.0f} flow samples a day), "
            f"border routers 1:{router_rate:,} (~{records_day:,.0f} sampled packets a day)"
        )
        if (samples_day + records_day) * days > 50_000_000:
            console.print(
                "[yellow]warning: that is more than 50 million samples; expect hours and many GB "
                "(raise the rates, lower --samples-per-member-day, or use --no-flows)[/yellow]"
            )
    began = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        days_task = bar.add_task("days", total=days)
        day_task = bar.add_task("day 1 intervals", total=None)
        state = {"day": 0, "first": 0}
        ranges = sim.grid.day_ranges()

        def progress(event: str, done: int, total: int) -> None:
            if event == "start":
                first, end = ranges[0][1], ranges[0][2]
                bar.update(day_task, total=end - first, completed=0, description=f"{ranges[0][0]} intervals")
            elif event == "interval":
                bar.update(day_task, completed=done - state["first"])
            elif event == "day":
                state["day"] += 1
                bar.update(days_task, completed=state["day"])
                if state["day"] < len(ranges):
                    day, first, end = ranges[state["day"]]
                    state["first"] = first
                    bar.update(day_task, total=end - first, completed=0, description=f"{day} intervals")

        summary = sim.run(progress)
    _print_summary(console, out, summary, time.monotonic() - began)


def _print_summary(console: Console, out: Path, s: Summary, seconds: float) -> None:
    table = Table(title=f"simulated exchange in {out}", show_header=False)
    table.add_row("members / ports", f"{s.members} / {s.ports}")
    table.add_row("intervals", f"{s.intervals:,}")
    table.add_row("sFlow sampling rate", f"1:{s.sampling_rate:,}")
    table.add_row("router sampling rate", f"1:{s.router_sampling_rate:,}")
    for name, count in s.files.items():
        table.add_row(f"files {name}", f"{count:,}")
    for name, count in s.datagrams.items():
        table.add_row(f"datagrams {name}", f"{count:,}")
    table.add_row("sFlow flow / counter samples", f"{s.flow_samples:,} / {s.counter_samples:,}")
    table.add_row("flow records (IPFIX + NetFlow v9)", f"{s.flow_records:,}")
    table.add_row("counter rows", f"{s.counter_rows:,}")
    for name, count in s.truth_rows.items():
        table.add_row(f"truth rows {name}", f"{count:,}")
    table.add_row(
        "true exchange / transit traffic",
        f"{s.true_exchange_bytes / 1e12:,.1f} TB / {s.true_transit_bytes / 1e12:,.1f} TB",
    )
    table.add_row("written", f"{s.bytes_written / 1e6:,.1f} MB in {seconds:,.1f} s")
    console.print(table)
