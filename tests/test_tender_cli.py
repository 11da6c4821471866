"""`peerpool tender run` end to end on a real DuckDB file holding the transit marts.

The serving file is written here with the mart columns of the dbt contract (checked against
``dbt/models/marts/_marts__models.yml``) and synthetic daily-cycle traffic; the expected
figures are computed in the test with DuckDB's ``quantile_disc`` and by brute force.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import yaml

from peerpool.cli import main
from peerpool.economics.synthetic import member_traffic
from peerpool.tender.source import REQUIRED

REPO = Path(__file__).resolve().parents[1]
MONTHS = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
DAYS = 3  # days of 5-minute data per month (keeps the file small)
MBPS_TO_BYTES = 300 * 1e6 / 8


def _write_serving(
    path: Path, members: int, seed: int = 1, months: list[str] = MONTHS
) -> dict[str, np.ndarray]:
    """A serving file with the three transit marts; returns member traffic (Mbps) per month."""
    rng = np.random.default_rng(seed)
    ids = [f"AS{64500 + i}" for i in range(members)]
    con = duckdb.connect(str(path))
    con.execute("set timezone = 'UTC'")
    con.execute(
        "create table fct_member_transit_usage_5min (member_id varchar, interval_start timestamptz, "
        "interval_date date, in_bytes bigint, out_bytes bigint, in_bps double, out_bps double)"
    )
    con.execute(
        "create table fct_member_transit_usage (member_id varchar, month date, intervals_used bigint, "
        "in_bytes hugeint, out_bytes hugeint, in_p95_bps double, out_p95_bps double, billed_p95_bps double, "
        "billed_p95_mbps decimal(18,4))"
    )
    con.execute(
        "create table fct_transit_bill_monthly (contract_id varchar, billing_month date, provider varchar, "
        "currency varchar, percentile integer, direction_rule varchar, gap_policy varchar, "
        "billing_timezone varchar, intervals_in_month bigint, intervals_used bigint, "
        "intervals_incomplete bigint, billed_mbps decimal(18,4), commit_mbps decimal(18,4), "
        "price_per_mbps decimal(18,4), burst_price_per_mbps decimal(18,4), commit_cost decimal(18,4), "
        "overage_mbps decimal(18,4), overage_cost decimal(18,4), total_cost decimal(18,4))"
    )
    out: dict[str, np.ndarray] = {}
    n = DAYS * 288
    k = math.ceil(0.95 * n)
    # one synthetic exchange (same members, sizes and peak hours) cut into months, growing 3% a month
    series = member_traffic(members, n * len(months), seed=seed)
    up_share = rng.uniform(0.1, 0.4, (members, 1))
    for m, month in enumerate(months):
        inbound = series[:, m * n : (m + 1) * n] * 1.03**m
        outbound = inbound * up_share
        # whole bytes per interval, as the mart stores them
        in_bytes = np.round(inbound * MBPS_TO_BYTES).astype(np.int64)
        out_bytes = np.round(outbound * MBPS_TO_BYTES).astype(np.int64)
        out[month] = np.stack([in_bytes / MBPS_TO_BYTES, out_bytes / MBPS_TO_BYTES])
        # from 00:00 Warsaw on the 2nd of the month (well inside the month in both time zones)
        start = int(dt.datetime.fromisoformat(f"{month}-02T00:00:00+01:00").timestamp())
        member_idx, t_idx = np.nonzero((in_bytes > 0) | (out_bytes > 0))
        epoch = start + 300 * t_idx
        rows = pa.table(
            {
                "member_id": pa.array([ids[i] for i in member_idx]),
                "interval_start": pa.array(epoch * 1_000_000, pa.timestamp("us", tz="UTC")),
                "interval_date": pa.array((epoch // 86400).astype("int32"), pa.date32()),
                "in_bytes": pa.array(in_bytes[member_idx, t_idx]),
                "out_bytes": pa.array(out_bytes[member_idx, t_idx]),
                "in_bps": pa.array(in_bytes[member_idx, t_idx] * 8 / 300),
                "out_bps": pa.array(out_bytes[member_idx, t_idx] * 8 / 300),
            }
        )
        con.register("new_rows", rows)
        con.execute("insert into fct_member_transit_usage_5min select * from new_rows")
        con.unregister("new_rows")
        for i in range(members):
            ip = np.sort(in_bytes[i])[k - 1]
            op = np.sort(out_bytes[i])[k - 1]
            con.execute(
                "insert into fct_member_transit_usage values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ids[i],
                    dt.date.fromisoformat(month + "-01"),
                    n,
                    int(in_bytes[i].sum()),
                    int(out_bytes[i].sum()),
                    ip * 8 / 300,
                    op * 8 / 300,
                    max(ip, op) * 8 / 300,
                    Decimal(int(max(ip, op))) * 8 / 300 / 1_000_000,
                ],
            )
        # two contracts, each billed on half of the pool (commit 40% of the pool's 95th each)
        pool = in_bytes.sum(axis=0)
        billed = Decimal(int(np.sort(pool)[k - 1])) * 8 / 300 / 1_000_000
        for cid, provider in (("arelion-2025", "Arelion"), ("cogent-2025", "Cogent")):
            half = (billed / 2).quantize(Decimal("0.0001"))
            commit = (billed * Decimal("0.4")).quantize(Decimal("1"))
            overage = max(Decimal(0), half - commit)
            commit_cost = commit * Decimal("0.90")
            overage_cost = (overage * Decimal("1.30")).quantize(Decimal("0.0001"))
            con.execute(
                "insert into fct_transit_bill_monthly values (?, ?, ?, 'PLN', 95, 'max', 'exclude', "
                "'Europe/Warsaw', 8640, ?, 0, ?, ?, 0.90, 1.30, ?, ?, ?, ?)",
                [
                    cid,
                    dt.date.fromisoformat(month + "-01"),
                    provider,
                    n,
                    half,
                    commit,
                    commit_cost,
                    overage,
                    overage_cost,
                    commit_cost + overage_cost,
                ],
            )
    con.close()
    return out


TIERS = """
[tender]
alone_price = "Arelion"
min_month_coverage = "0.05"
shapley_rel_target = "{rel}"
shapley_exact_max = 12
min_share = "0.3"
share_step = "0.1"

[sites]
KTW = "0.6"
WAW = "0.4"

[[offers]]
provider = "Arelion"
min_term_months = 12
sites = ["KTW", "WAW"]
port_fee_monthly = "500.00"
cpi_index = "105.0"
commit_step_mbps = "10"
  [[offers.tiers]]
  min_commit_mbps = "0"
  price_per_mbps = "1.00"
  burst_price_per_mbps = "1.50"
  [[offers.tiers]]
  min_commit_mbps = "2000"
  price_per_mbps = "0.80"
  burst_price_per_mbps = "1.20"

[[offers]]
provider = "Cogent"
min_term_months = 12
sites = ["KTW"]
port_fee_monthly = "400.00"
commit_step_mbps = "10"
  [[offers.tiers]]
  min_commit_mbps = "0"
  price_per_mbps = "0.90"
  burst_price_per_mbps = "1.40"

[[offers]]
provider = "Lumen"
min_term_months = 36
  [[offers.tiers]]
  min_commit_mbps = "0"
  price_per_mbps = "0.10"
  burst_price_per_mbps = "0.20"
"""


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _run(
    capsys: pytest.CaptureFixture[str], serving: Path, tiers: Path, out: Path, months: int = 12
) -> tuple[int, str]:
    """Run ``peerpool tender run`` through the real entry point (error handling and exit codes)."""
    args = ["tender", "run", "--serving", str(serving), "--months", str(months), "--tiers", str(tiers)]
    try:
        main([*args, "--out", str(out)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_columns_read_are_in_the_dbt_contract() -> None:
    models = yaml.safe_load((REPO / "dbt" / "models" / "marts" / "_marts__models.yml").read_text())
    contract = {m["name"]: {c["name"] for c in m.get("columns", [])} for m in models["models"]}
    for table, columns in REQUIRED.items():
        assert table in contract, table
        assert set(columns) <= contract[table], (table, set(columns) - contract[table])


def test_tender_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serving = tmp_path / "serving.duckdb"
    traffic = _write_serving(serving, members=6)
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS.format(rel="0.01"))
    out = tmp_path / "report"
    code, output = _run(capsys, serving, tiers, out)
    assert code == 0, output
    tables = ("pooling_dividend", "forecast_pool", "forecast_members", "commits", "commit_curve", "scenarios")
    files = ("report.html", "report.json", *(f"{t}.csv" for t in tables), "cost_sharing.csv")
    for name in files:
        assert (out / name).is_file(), name

    # pooling dividend: the pool's 95th is DuckDB's quantile_disc of max(in, out) over the
    # per-interval sum of the members, recomputed here from the mart itself
    con = duckdb.connect(str(serving), read_only=True)
    expected = dict(
        con.execute(
            "select strftime(date_trunc('month', timezone('Europe/Warsaw', interval_start)), '%Y-%m') as m, "
            "greatest(quantile_disc(i, 0.95), quantile_disc(o, 0.95)) * 8.0 / 300 / 1e6 from ("
            "  select interval_start, sum(in_bytes) as i, sum(out_bytes) as o "
            "  from fct_member_transit_usage_5min group by interval_start) group by m"
        ).fetchall()
    )
    own_sum = dict(
        con.execute(
            "select strftime(month, '%Y-%m'), sum(billed_p95_mbps) from fct_member_transit_usage group by 1"
        ).fetchall()
    )
    bills = dict(
        con.execute(
            "select strftime(billing_month, '%Y-%m'), sum(total_cost) "
            "from fct_transit_bill_monthly group by 1"
        ).fetchall()
    )
    con.close()
    pooling = _read_csv(out / "pooling_dividend.csv")
    assert [r["month"] for r in pooling] == MONTHS
    for row in pooling:
        assert float(row["pool_p95_mbps"]) == pytest.approx(expected[row["month"]], abs=1e-3)
        assert float(row["sum_member_p95_mbps"]) == pytest.approx(float(own_sum[row["month"]]), abs=1e-3)
        assert float(row["dividend_mbps"]) > 0  # members peak at different hours
        assert Decimal(row["bill_pln"]) == Decimal(bills[row["month"]]).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )

    # cost sharing: every method adds up exactly to the last month's bill
    sharing = _read_csv(out / "cost_sharing.csv")
    rows = [r for r in sharing if r["member"] != "TOTAL"]
    bill = Decimal(pooling[-1]["bill_pln"])
    for column in ("proportional_p95", "capacity_share", "peak_contribution", "shapley"):
        assert sum(Decimal(r[column]) for r in rows) == bill, column
    # exact Shapley (6 members) against brute force over all 720 orderings, with the cost of
    # buying alone at Arelion's tiers: min(1.00 * p, 0.80 * max(p, 2000)) + 2 sites x 500 PLN
    month = traffic[MONTHS[-1]]
    ids = [f"AS{64500 + i}" for i in range(6)]
    k = math.ceil(0.95 * month.shape[2])

    def v(coalition: tuple[int, ...]) -> float:
        if not coalition:
            return 0.0
        sums = month[:, list(coalition), :].sum(axis=1)
        p = max(np.sort(sums[0])[k - 1], np.sort(sums[1])[k - 1])
        return min(1.0 * p, 0.8 * max(p, 2000.0)) + 1000.0

    phi = np.zeros(6)
    for order in itertools.permutations(range(6)):
        for pos, member in enumerate(order):
            phi[member] += v(tuple(sorted(order[: pos + 1]))) - v(tuple(sorted(order[:pos])))
    phi /= math.factorial(6)
    by_member = {r["member"]: float(r["shapley_value"]) for r in rows}
    for member, value in zip(ids, phi, strict=True):
        assert by_member[member] == pytest.approx(value, rel=1e-6)

    # forecast: 12 months from the month after the data, with bands around the median
    forecast = _read_csv(out / "forecast_pool.csv")
    assert [r["month"] for r in forecast] == [f"2025-{m:02d}" for m in range(7, 13)] + [
        f"2026-{m:02d}" for m in range(1, 7)
    ]
    for r in forecast:
        assert float(r["p2_5"]) < float(r["median"]) < float(r["p97_5"])
    # offers: Lumen's 36-month minimum term does not fit a 12-month plan and is said so
    commits = _read_csv(out / "commits.csv")
    assert {r["provider"] for r in commits} == {"Arelion", "Cogent"}
    report = json.loads((out / "report.json").read_text())
    assert any("Lumen" in note and "minimum term" in note for note in report["notes"])
    scenarios = _read_csv(out / "scenarios.csv")
    assert {r["scenario"].split(" ")[0] for r in scenarios} >= {"Arelion", "Cogent"}
    two = [r for r in scenarios if r["providers"] == "2"]
    assert two and all("30%" in r["scenario"] or "40%" in r["scenario"] or "50%" in r["scenario"] or
                       "60%" in r["scenario"] or "70%" in r["scenario"] for r in two)  # fmt: skip
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 5
    for heading in ("Pooling dividend", "Forecast", "Commit", "Scenarios", "Cost sharing"):
        assert heading in html


def test_tender_run_with_monte_carlo_shapley(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """14 members (> shapley_exact_max): the Monte Carlo estimate, its bound in the table."""
    serving = tmp_path / "serving.duckdb"
    _write_serving(serving, members=14, seed=3)
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS.format(rel="0.05"))
    out = tmp_path / "report"
    code, output = _run(capsys, serving, tiers, out, months=12)
    assert code == 0, output
    rows = [r for r in _read_csv(out / "cost_sharing.csv") if r["member"] != "TOTAL"]
    assert len(rows) == 14
    for r in rows:
        value, half = float(r["shapley_value"]), float(r["shapley_half_width_95"])
        # the stopping rule holds for the raw estimate; the table shows it scaled to add up to
        # v(N), which moves it by far less than 1%
        assert half <= 0.05 * value * 1.01
    report = json.loads((out / "report.json").read_text())
    assert report["shapley_method"].startswith("Monte Carlo")


def test_errors_name_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS.format(rel="0.01"))
    code, output = _run(capsys, tmp_path / "missing.duckdb", tiers, tmp_path / "out")
    assert code == 3 and "no such serving file" in output
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    code, output = _run(capsys, empty, tiers, tmp_path / "out")
    assert code == 3 and "fct_member_transit_usage_5min is missing" in output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[offers]]\nprovider = "X"\n[[offers.tiers]]\nmin_commit_mbps = 0\nprice_per_mbps = 0.9\n'
    )
    code, output = _run(capsys, empty, bad, tmp_path / "out")
    assert code == 2 and "bad.toml" in output and "burst_price_per_mbps" in output
    floaty = tmp_path / "floaty.toml"
    floaty.write_text(
        '[[offers]]\nprovider = "X"\n[[offers.tiers]]\nmin_commit_mbps = "0"\nprice_per_mbps = 0.9\n'
        'burst_price_per_mbps = "1"\n'
    )
    code, output = _run(capsys, empty, floaty, tmp_path / "out")
    assert code == 2 and "as strings" in output


def test_two_months_give_pooling_and_sharing_without_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serving = tmp_path / "serving.duckdb"
    _write_serving(serving, members=4, seed=5, months=MONTHS[:2])
    # a member that appears in the 5-minute mart with no traffic at all is left out of the game
    con = duckdb.connect(str(serving))
    con.execute(
        "insert into fct_member_transit_usage_5min values "
        "('AS65000', timestamptz '2025-02-02 00:00:00+01', date '2025-02-01', 0, 0, 0, 0)"
    )
    con.close()
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TIERS.format(rel="0.01"))
    out = tmp_path / "report"
    code, output = _run(capsys, serving, tiers, out)
    assert code == 0, output
    report = json.loads((out / "report.json").read_text())
    assert any("no forecast, commit or scenarios" in note for note in report["notes"])
    assert report["tables"]["forecast_pool"]["rows"] == []
    assert report["tables"]["scenarios"]["rows"] == []
    rows = {r["member"]: r for r in _read_csv(out / "cost_sharing.csv")}
    assert rows["AS65000"]["shapley"] == "0.00" and rows["AS65000"]["alone"] == "0.00"
    bill = Decimal(_read_csv(out / "pooling_dividend.csv")[-1]["bill_pln"])
    members = [r for m, r in rows.items() if m != "TOTAL"]
    assert len(members) == 5
    for column in ("proportional_p95", "capacity_share", "peak_contribution", "shapley"):
        assert sum(Decimal(r[column]) for r in members) == bill
    assert "left out of the game" in report["shapley_method"]
