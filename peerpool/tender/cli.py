"""``peerpool tender``: plan a transit tender from the serving DuckDB file."""

from __future__ import annotations

from pathlib import Path

import click

from peerpool.tender.plan import build_plan
from peerpool.tender.report import write_report
from peerpool.tender.tiers import load_tiers


@click.group()
def tender() -> None:
    """Tender planning for pooled transit: pooling dividend, forecast, commit, scenarios, cost sharing."""


@tender.command("run")
@click.option(
    "--serving",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="serving DuckDB file (read-only), e.g. var/serving.duckdb",
)
@click.option(
    "--months", type=click.IntRange(1, 60), default=24, show_default=True, help="months to plan for"
)
@click.option(
    "--tiers",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="offers and price tiers (see examples/tender_tiers.toml)",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="report directory"
)
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the forecast and Monte Carlo")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="processes for Shapley"
)
def run(serving: Path, months: int, tiers: Path, out: Path, seed: int, workers: int) -> None:
    """Write report.html, report.json and a CSV per table into OUT."""
    settings = load_tiers(tiers)
    plan = build_plan(
        serving, settings, months, seed=seed, workers=workers, echo=lambda s: click.echo(s, err=True)
    )
    paths = write_report(plan, out)
    click.echo(f"wrote {len(paths)} files to {out} (open {paths[0]})")
