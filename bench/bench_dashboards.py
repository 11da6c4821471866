"""Benchmark: every dashboard chart's query on a year of data, through Superset and in DuckDB alone.

Run from the repository root (needs the core and superset environments):

    .venvs/core/bin/python bench/bench_dashboards.py                 # 100 members, one year
    .venvs/core/bin/python bench/bench_dashboards.py --members 300 --repeat 10

The year-sized serving file is synthetic but has the marts' exact schema: ``peerpool simulate
--no-flows`` writes an exchange.toml for N members, ``peerpool build`` on an empty lake turns it
into the real dimension tables (members, ports, contracts) and empty fact tables, and DuckDB then
fills the facts for 365 days of 5-minute intervals. Member rates come from
``peerpool.economics.synthetic.member_traffic`` (log-normal sizes, diurnal/weekly shape,
autocorrelated noise, bursts); ports, transit, reconciliation, loss, pairs (top 20 peers a member
per day) and the daily/monthly marts and rollups are derived from them with SQL; the bill shares
(proportional to each member's transit 95th) and the tender marts (a dozen scenarios) are small
synthetic tables of the contracts' shape. Not generated: the member-pair 5-minute mart (no chart
reads it). With 100 members that is ~10.5 M rows in each 5-minute member
mart and ~13 M in the port mart.

Then ``peerpool dashboards setup`` imports the dashboards against that file and Superset serves it
on 127.0.0.1. Each chart is fetched ``--repeat`` times with ``force=true`` (no cache) through
``GET /api/v1/chart/{id}/data/`` -- as admin for every chart and as a member (row-level security
applied) for the member dashboard -- and its SQL (as Superset generated it) is also timed in
DuckDB directly. Reported: p50 and p95 (nearest rank) per chart; goal p95 < 0.5 s. One line per
run is appended to bench/RESULTS.md; the per-chart table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peerpool.economics.synthetic import member_traffic  # noqa: E402
from tests.superset_server import PEERPOOL, Client, run, start_site  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
YEAR_SQL = REPO / "bench" / "bench_dashboards_year.sql"
DAYS = 365
# the year ends yesterday: the 5-minute charts show the last 7 days, the hourly ones the last month
START = dt.datetime.combine(dt.date.today() - dt.timedelta(days=DAYS), dt.time(), tzinfo=dt.UTC)
GOAL_S = 0.5
SLUGS = ("member", "exchange", "economics", "purchasing", "operations")
MEMBER_SLUGS = ("member", "exchange")  # what a member may open (the totals with member_visibility = "totals")


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# --------------------------------------------------------------------------------------------------
# a year of synthetic marts
# --------------------------------------------------------------------------------------------------


def base_files(work: Path, members: int) -> tuple[Path, Path]:
    """exchange.toml for ``members`` and a serving file with real dimensions and empty facts."""
    sim = work / "sim"
    command = ["simulate", "--members", str(members), "--days", "1", "--no-flows", "--out", str(sim)]
    run([str(PEERPOOL), *command], "simulate")
    config = sim / "exchange.toml"
    run([str(PEERPOOL), "build", "--lake", str(work / "empty-lake"), "--config", str(config),
         "--warehouse", str(work / "warehouse")], "build")  # fmt: skip
    return config, work / "warehouse" / "serving.duckdb"


def fill_year(serving: Path, members: int, seed: int = 7) -> dict[str, int]:
    """Fill every fact mart the dashboards read with a year of data; returns row counts."""
    con = duckdb.connect(str(serving))
    con.execute("SET TimeZone = 'UTC'")
    intervals = DAYS * 288
    ids = [r[0] for r in con.execute("select member_id from main.dim_members order by 1").fetchall()]
    assert len(ids) == members, (len(ids), members)
    rates = member_traffic(members, intervals, seed=seed)  # Mbps, members x intervals
    starts = np.datetime64(START.replace(tzinfo=None), "us") + np.arange(intervals) * np.timedelta64(300, "s")
    rng = np.random.default_rng(seed)
    out_ratio = rng.uniform(0.6, 1.6, members)
    transit_share = rng.uniform(0.1, 0.5, members)
    frame = pl.DataFrame(
        {
            "member_idx": np.repeat(np.arange(members, dtype=np.int32), intervals),
            "interval_start": np.tile(starts, members),
            "in_mbps": rates.reshape(-1),
            "out_mbps": (rates * out_ratio[:, None]).reshape(-1),
            "transit_share": np.repeat(transit_share, intervals),
        }
    )
    con.register("rates", frame.to_arrow())
    con.register(
        "member_ids",
        pl.DataFrame({"member_idx": np.arange(members, dtype=np.int32), "member_id": ids}).to_arrow(),
    )
    con.execute(
        "create temp table r as select member_ids.member_id, rates.*, "
        "cast(rates.interval_start as timestamptz) as ts from rates join member_ids using (member_idx)"
    )
    con.unregister("rates")
    del frame
    for sql in YEAR_SQL.read_text().split(";\n"):
        if sql.strip() and not all(line.startswith("--") for line in sql.strip().splitlines()):
            con.execute(sql)
    con.execute("checkpoint")
    listed = con.execute("select table_name from information_schema.tables where table_schema = 'main'")
    counts = {}
    for (table,) in listed.fetchall():
        (counts[table],) = con.execute(f"select count(*) from main.{table}").fetchone() or (0,)
    con.close()
    return counts


# --------------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    dashboard: str
    user: str
    chart: str
    rows: int
    api_p50: float
    api_p95: float
    sql_p95: float


def time_charts(client: Client, slug: str, user: str, repeat: int, serving: Path) -> list[Timing]:
    """Fetch each chart of a dashboard ``repeat`` times (no cache), then time its SQL in DuckDB alone."""
    timings = []
    db = duckdb.connect(str(serving), read_only=True)
    for chart in client.json("GET", f"/api/v1/dashboard/{slug}/charts")["result"]:
        api, sql_times, sql, rowcount = [], [], "", 0
        for _ in range(repeat):
            started = time.perf_counter()
            status, body, _ = client.request("GET", f"/api/v1/chart/{chart['id']}/data/?force=true")
            api.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"chart {chart['slice_name']}: HTTP {status}: {body[:300]!r}")
            result = json.loads(body)["result"][0]
            sql, rowcount = result["query"], result["rowcount"]
        for _ in range(repeat):
            started = time.perf_counter()
            db.execute(sql).fetchall()
            sql_times.append(time.perf_counter() - started)
        timings.append(
            Timing(slug, user, chart["slice_name"], rowcount, nearest_rank(api, 0.5), nearest_rank(api, 0.95),
                   nearest_rank(sql_times, 0.95))
        )  # fmt: skip
    db.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20, help="fetches per chart (p95 = nearest rank)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    parser.add_argument("--keep", type=Path, help="keep the work directory here (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="peerpool-bench-dashboards-"))
    work.mkdir(parents=True, exist_ok=True)
    site = None
    try:
        started = time.perf_counter()
        config, serving = base_files(work, args.members)
        counts = fill_year(serving, args.members)
        built_s = time.perf_counter() - started
        size_mb = serving.stat().st_size / 1e6
        print(
            f"serving file: {size_mb:.0f} MB in {built_s:.0f} s; "
            f"{counts['fct_member_traffic_5min']:,} member 5-min rows, "
            f"{counts['fct_port_traffic_5min']:,} port 5-min rows, "
            f"{counts['fct_member_pair_traffic_daily']:,} pair-day rows"
        )
        site = start_site(work / "superset", (config, serving))
        admin = site.client("admin")
        member_user = sorted(u for u in site.passwords() if u.startswith("as"))[0]
        member = site.client(member_user)
        results = [t for slug in SLUGS for t in time_charts(admin, slug, "admin", args.repeat, serving)]
        results += [
            t for slug in MEMBER_SLUGS for t in time_charts(member, slug, member_user, args.repeat, serving)
        ]
    finally:
        if site is not None:
            site.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{'dashboard':<11} {'user':<10} {'chart':<52} {'rows':>7} "
        f"{'api p50':>8} {'api p95':>8} {'sql p95':>8}"
    )
    for t in results:
        flag = "" if t.api_p95 < GOAL_S else "  > goal"
        print(f"{t.dashboard:<11} {t.user:<10} {t.chart[:52]:<52} {t.rows:>7} "
              f"{t.api_p50:>8.3f} {t.api_p95:>8.3f} {t.sql_p95:>8.3f}{flag}")  # fmt: skip
    api95 = [t.api_p95 for t in results]
    worst = max(results, key=lambda t: t.api_p95)
    member_worst = max(t.api_p95 for t in results if t.user != "admin")
    over = sum(v >= GOAL_S for v in api95)
    median, sql_worst = nearest_rank(api95, 0.5), max(t.sql_p95 for t in results)
    line = (
        f"- {dt.date.today()} dashboards, a year of synthetic marts ({args.members} members, "
        f"{counts['fct_member_traffic_5min']:,} member 5-min rows, "
        f"{counts['fct_port_traffic_5min']:,} port 5-min rows, {size_mb:.0f} MB): "
        f"{len(results)} charts x {args.repeat} fetches through Superset (force, no cache): "
        f"p95 per chart median {median:.3f} s, worst {worst.api_p95:.3f} s ({worst.chart}), "
        f"member view worst {member_worst:.3f} s; {over} of {len(results)} over the {GOAL_S} s goal; "
        f"SQL alone in DuckDB worst p95 {sql_worst:.3f} s "
        f"(CPython {platform.python_version()}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    print("\n" + line)
    if not args.no_record:
        with RESULTS.open("a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
