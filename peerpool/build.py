"""``peerpool build``: reference tables, counter hygiene, dbt models, and an atomic publish.

DuckDB allows one writer per file and blocks even read-only readers while it writes, so the
models are built into ``WAREHOUSE/build.duckdb`` (nobody else opens it) and then published:
copied to ``serving.duckdb.tmp-<pid>`` beside the serving file and renamed over
``serving.duckdb``. A reader holding the old file keeps it; a new reader gets the new one;
nobody ever sees half a build. A failing dbt test stops before the publish, so the serving
file stays at the last good build.

dbt runs through ``dbtRunner`` in a spawned child process: every build starts with fresh
adapter state, and the DuckDB file is certainly closed (checkpointed) before it is copied.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import duckdb

from peerpool import export_sources, lake_changes, reference, settings
from peerpool.errors import PeerpoolError

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt"
HYGIENE_MODULE = "ingest.counters.hygiene"
LOOKBACK_DAYS = 1  # dbt_project.yml's var lookback_days (a test keeps them equal)

Echo = Callable[[str], None]


class BuildError(PeerpoolError):
    """dbt failed (a model or a test); the serving file was left as it was."""

    exit_code = 7


@dataclass
class DbtOutcome:
    """What the dbt child process reports back (plain data: it crosses a process boundary)."""

    success: bool
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, message)
    exception: str = ""


@dataclass
class BuildResult:
    reference_rows: dict[str, int]
    hygiene: str
    dbt: DbtOutcome
    serving: Path | None
    seconds: float


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def dbt_environment(lake: Path, database: Path) -> dict[str, str]:
    """The variables ``dbt/profiles.yml`` and the ``lake_source`` macro read."""
    return {
        "PEERPOOL_LAKE": str(lake),
        "PEERPOOL_DUCKDB_PATH": str(database),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def dbt_args(command: str, work: Path, extra: Sequence[str] = ()) -> list[str]:
    """Arguments for ``dbtRunner().invoke``; target and logs go under the warehouse, not the repo."""
    return [
        command,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        *extra,
    ]


def _dbt_child(args: list[str], env: dict[str, str], queue: Any) -> None:
    """Run dbt in this (spawned) process and put a :class:`DbtOutcome` on ``queue``."""
    os.environ.update(env)
    outcome = DbtOutcome(success=False)
    try:
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(args)
        outcome.success = bool(result.success)
        if result.exception is not None:
            outcome.exception = str(result.exception)
        for node_result in getattr(result.result, "results", None) or []:
            status = str(getattr(node_result.status, "value", node_result.status))
            outcome.counts[status] = outcome.counts.get(status, 0) + 1
            if status in {"fail", "error", "runtime error"}:
                node = node_result.node
                outcome.failures.append(
                    (str(node.resource_type), str(node.name), str(node_result.message or "").strip())
                )
    except BaseException as exc:  # report anything, the parent decides
        outcome.exception = f"{type(exc).__name__}: {exc}"
    queue.put(outcome)


def run_dbt(args: list[str], env: dict[str, str]) -> DbtOutcome:
    """Invoke dbt programmatically in a fresh spawned process and wait for its outcome."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_dbt_child, args=(args, env, queue))
    child.start()
    outcome: DbtOutcome | None = None
    while outcome is None:
        try:
            outcome = queue.get(timeout=1.0)
        except Exception:
            if not child.is_alive():
                break
    child.join()
    if outcome is None:
        return DbtOutcome(success=False, exception=f"dbt process ended with exit code {child.exitcode}")
    return outcome


def run_hygiene(lake: Path, exchange: Any, echo: Echo) -> str:
    """Counter hygiene (``ingest.counters.hygiene.run``) turns raw reads into port_rates_5min."""
    try:
        module = importlib.import_module(HYGIENE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and HYGIENE_MODULE.startswith(exc.name):
            echo(
                f"WARNING: {HYGIENE_MODULE} is not part of this checkout: port_rates_5min and "
                "port_outages are used as they are in the lake (not recomputed from port_counters)"
            )
            return "skipped (module missing)"
        raise
    stats = module.run(lake, exchange)
    summary = ", ".join(
        f"{name} {getattr(stats, name)}"
        for name in ("reads", "intervals", "trusted", "gaps", "outages")
        if hasattr(stats, name)
    )
    echo(f"      {summary}")
    return summary or "done"


def checkpoint(database: Path) -> None:
    """Fold the write-ahead log into the file so a byte copy of it is complete."""
    con = duckdb.connect(str(database))
    try:
        con.execute("checkpoint")
    finally:
        con.close()


def publish(build_db: Path, serving_db: Path) -> Path:
    """Copy ``build_db`` beside ``serving_db`` and rename it over it (atomic on one filesystem)."""
    checkpoint(build_db)
    tmp = serving_db.with_name(f"{serving_db.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(build_db, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, serving_db)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return serving_db


def failure_message(outcome: DbtOutcome, lake: Path, build_db: Path) -> str:
    lines = ["dbt build failed; the serving file was not changed"]
    for kind, name, message in outcome.failures:
        first = message.splitlines()[0] if message else ""
        lines.append(f"  {kind} {name}: {first}")
    if outcome.exception:
        lines.append(f"  {outcome.exception.splitlines()[0] if outcome.exception else ''}")
    names = " ".join(name for _, name, _ in outcome.failures) or "<model>"
    lines.append(
        "hint: inspect with `PEERPOOL_LAKE="
        f"{lake} PEERPOOL_DUCKDB_PATH={build_db} dbt build --project-dir {DBT_DIR} "
        f"--profiles-dir {DBT_DIR} --select {names} --store-failures`, fix the lake input or the "
        "configuration it names, then run `peerpool build` again"
    )
    return "\n".join(lines)


def run_build(
    cfg: settings.Settings,
    *,
    full_refresh: bool = False,
    select: Sequence[str] = (),
    since: str = "",
    exports: Path | None = None,
    echo: Echo = click.echo,
) -> BuildResult:
    """The whole build; raises :class:`BuildError` (serving untouched) when dbt fails.

    ``exports`` is the folder ``peerpool bill`` and ``peerpool tender run`` write to; its standing
    bills and newest tender report become the ``exports`` source (``peerpool/export_sources.py``).
    Without it the tables of the last build that had one are used as they are.
    """
    from peerpool.config.load import load_exchange

    if since:
        try:
            dt.date.fromisoformat(since)
        except ValueError as exc:
            raise BuildError(f"--since {since!r} is not a date; write it as YYYY-MM-DD") from exc
    started = time.monotonic()
    lake_read_ns = time.time_ns()  # before anything reads the lake: later writes count next time
    cfg.warehouse.mkdir(parents=True, exist_ok=True)
    cfg.lake.mkdir(parents=True, exist_ok=True)
    if not since and not full_refresh and not select:
        earlier = lake_changes.recompute_since(
            cfg.lake, lake_changes.read_state(cfg.warehouse), LOOKBACK_DAYS
        )
        if earlier is not None:
            since = earlier.isoformat()
            echo(f"      lake days older than the last build's changed: recomputing from {since}")

    echo(f"[1/4] reference tables from {cfg.config}")
    exchange = load_exchange(cfg.config)
    rows = reference.export(exchange, cfg.lake)
    echo(
        "      "
        + ", ".join(f"{name} {count}" for name, count in rows.items() if name in ("members", "ports"))
        + f", transit contracts {rows['transit_contracts']}"
    )
    if exports is not None:
        counts = export_sources.export(exports, cfg.lake)
        echo(f"      from {exports}: {counts.describe()}")
    else:
        echo("      no exports folder (--exports, PEERPOOL_EXPORTS): bill shares and tender tables kept")

    echo("[2/4] counter hygiene")
    hygiene = run_hygiene(cfg.lake, exchange, echo)

    echo(f"[3/4] dbt build into {cfg.build_db}")
    extra: list[str] = []
    if full_refresh:
        extra.append("--full-refresh")
    for item in select:
        extra += ["--select", item]
    if since:
        extra += ["--vars", f"{{since: '{since}'}}"]
    work = cfg.warehouse / "dbt"
    outcome = run_dbt(dbt_args("build", work, extra), dbt_environment(cfg.lake, cfg.build_db))
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items()))
    echo(f"      {summary or 'nothing ran'}")
    if not outcome.success:
        raise BuildError(failure_message(outcome, cfg.lake, cfg.build_db))

    echo(f"[4/4] publish {cfg.serving_db}")
    serving = publish(cfg.build_db, cfg.serving_db)
    if not select:  # a partial build leaves the changes for the next whole one to find
        lake_changes.write_state(
            cfg.warehouse, lake_changes.BuildState(lake_read_ns, lake_changes.newest_day(cfg.lake))
        )
    seconds = time.monotonic() - started
    echo(f"done in {seconds:.1f} s")
    return BuildResult(rows, hygiene, outcome, serving, seconds)


@click.command()
@click.option("--lake", type=click.Path(path_type=Path), default=None, help="lake directory [PEERPOOL_LAKE]")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="exchange.toml [PEERPOOL_CONFIG]",
)
@click.option(
    "--warehouse",
    type=click.Path(path_type=Path),
    default=None,
    help="where build.duckdb and serving.duckdb live [PEERPOOL_WAREHOUSE, default var/]",
)
@click.option("--full-refresh", is_flag=True, help="rebuild incremental models from the whole lake")
@click.option("--select", "select", multiple=True, help="dbt node selection (repeatable)")
@click.option("--since", default="", help="recompute 5-minute facts from this UTC date (YYYY-MM-DD)")
@click.option(
    "--exports",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PEERPOOL_EXPORTS",
    default=None,
    help="bills and tender reports to publish as sources [PEERPOOL_EXPORTS]",
)
def build(
    lake: Path | None,
    config_path: Path | None,
    warehouse: Path | None,
    full_refresh: bool,
    select: tuple[str, ...],
    since: str,
    exports: Path | None,
) -> None:
    """Export reference tables, run counter hygiene, build the dbt models, publish serving.duckdb."""
    cfg = settings.resolve(lake=lake, warehouse=warehouse, config=config_path)
    run_build(
        cfg,
        full_refresh=full_refresh,
        select=select,
        since=since,
        exports=exports.resolve() if exports is not None else None,
    )
