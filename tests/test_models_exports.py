"""The bill and the tender report as sources of the models, end to end on a simulated exchange.

The chain runs as in production: ``peerpool simulate`` (5 members, 2 days of February 2026) ->
``asn build`` -> ``decode`` -> ``counters import`` -> ``build`` -> ``bill`` (preview, then
``--final``, then a correction) -> ``tender run`` (twice, on a few months of transit history
written by ``tests/tender_history.py``) -> ``build --exports``. Then, against independent sources:

* ``fct_member_transit_bill_share_monthly`` holds exactly the transit share lines of the standing
  document (the correction), read here with ``csv``/``json`` from the bill's own files and
  ``Decimal``: every member's amount, its own 95th, the pool total (which the shares add up to),
  the method from exchange.toml, and the sha256 of the document's MANIFEST.json computed here;
* the standing document follows preview -> final -> correction-01; a document changed after it
  was written (a byte of the lines CSV, an evidence pack) is refused with an error naming it,
  and nothing is written to the lake; ``member_visibility = "none"`` leaves the pool figures out;
* the exchange totals equal sums and nearest-rank 95ths computed here with polars and numpy from
  the member and transit 5-minute marts, and the monthly pooled bill equals the bill document's
  pool total (the billing code's own figure);
* the tender marts equal the newest ``report.json`` (parsed here with its own rules).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import shutil
import stat
import subprocess
import tomllib
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from peerpool import export_sources
from peerpool.errors import InputError
from tests.conftest import REPO
from tests.tender_history import TIERS, write_transit_history

PEERPOOL = REPO / ".venvs" / "core" / "bin" / "peerpool"
MONTH = "2026-02"
TZ = "Europe/Warsaw"

pytestmark = pytest.mark.slow


def peerpool(*args: str) -> str:
    proc = subprocess.run([str(PEERPOOL), *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"peerpool {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


class Exchange:
    """Paths of the fixture's exchange and what each billing stage left standing."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.sim = work / "sim"
        self.config = self.sim / "exchange.toml"
        self.lake = work / "lake"
        self.warehouse = work / "wh"
        self.exports = work / "exports"
        self.stages: dict[str, list[dict[str, Any]]] = {}
        self.build_output = ""

    @property
    def serving(self) -> Path:
        return self.warehouse / "serving.duckdb"

    def bill(self, *extra: str, config: Path | None = None, out: Path | None = None) -> None:
        peerpool("bill", *extra, "--month", MONTH, "--out", str(out or self.exports), "--serving",
                 str(self.serving), "--config", str(config or self.config))  # fmt: skip

    def build(self, *extra: str) -> str:
        return peerpool("build", "--lake", str(self.lake), "--config", str(self.config), "--warehouse",
                        str(self.warehouse), *extra)  # fmt: skip

    def q(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.serving), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def ex(tmp_path_factory: pytest.TempPathFactory) -> Exchange:
    e = Exchange(tmp_path_factory.mktemp("exports-e2e"))
    peerpool("simulate", "--members", "5", "--days", "2", "--seed", "11", "--start", f"{MONTH}-01",
             "--out", str(e.sim))  # fmt: skip
    peerpool("asn", "build", str(e.sim / "rib.mrt"), "--out", str(e.sim / "asn.dat"))
    peerpool("decode", str(e.sim / "spool"), "--lake", str(e.lake), "--config", str(e.config), "--asn-db",
             str(e.sim / "asn.dat"), "--quiet")  # fmt: skip
    peerpool("counters", "import", "--dir", str(e.sim / "counters"), "--lake", str(e.lake), "--config",
             str(e.config))  # fmt: skip
    e.build()
    e.bill()
    e.stages["preview"] = export_sources.bill_rows(e.exports)[1]
    e.bill("--final")
    e.stages["final"] = export_sources.bill_rows(e.exports)[1]
    # a correction: a one-off fee added to the configuration after the close
    member = tomllib.loads(e.config.read_text())["members"][0]["id"]
    corrected = e.work / "corrected.toml"
    corrected.write_text(
        e.config.read_text()
        + f'\n[[one_off_fees]]\nmember = "{member}"\nmonth = "{MONTH}"\n'
        + 'description = "late fee"\namount = "12.34"\n'
    )
    peerpool("bill", "correct", "--month", MONTH, "--reason", "late fee", "--out", str(e.exports),
             "--serving", str(e.serving), "--config", str(corrected))  # fmt: skip
    e.stages["correction"] = export_sources.bill_rows(e.exports)[1]
    # two tender runs; the second is the newer one
    history = e.work / "tender.duckdb"
    write_transit_history(history)
    tiers = e.work / "tiers.toml"
    tiers.write_text(TIERS)
    for run, months in (("run-a", "12"), ("run-b", "24")):
        peerpool("tender", "run", "--serving", str(history), "--tiers", str(tiers), "--months", months,
                 "--out", str(e.exports / "tender" / run))  # fmt: skip
    old = (e.exports / "tender" / "run-b" / "report.json").stat().st_mtime - 60
    os.utime(e.exports / "tender" / "run-a" / "report.json", (old, old))
    e.build_output = e.build("--exports", str(e.exports))
    return e


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def half_up(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


# ---- the bill share mart is the bill --------------------------------------------------------------


def test_bill_share_mart_is_the_standing_documents_lines(ex: Exchange) -> None:
    document = ex.exports / MONTH / "correction-01"
    lines = [r for r in read_csv(document / f"bill-{MONTH}-lines.csv") if r["kind"] == "transit_share"]
    assert len(lines) >= 3, "the simulated month has too few transit shares to prove anything"
    bill = json.loads((document / f"bill-{MONTH}.json").read_text())
    pool_total = Decimal(bill["pool"]["total"])
    manifest_sha = hashlib.sha256((document / "MANIFEST.json").read_bytes()).hexdigest()
    method = tomllib.loads(ex.config.read_text())["billing"]["transit_allocation"]

    rows = ex.q(
        "select member_id, month, document_status, is_invoice_basis, allocation_method, transit_share, "
        "own_transit_p95_mbps, pool_total, members_sharing, manifest_sha256, document "
        "from fct_member_transit_bill_share_monthly order by member_id"
    )
    assert [r[0] for r in rows] == sorted(r["member_id"] for r in lines)
    by_member = {r["member_id"]: r for r in lines}
    for member, month, status, basis, alloc, share, p95, pool, sharing, sha, doc in rows:
        line = by_member[member]
        assert (month, status, basis, alloc) == (dt.date(2026, 2, 1), "correction-01", True, method)
        assert share == Decimal(line["amount_net"]), member  # exact: DECIMAL against the CSV's text
        assert p95 == Decimal(line["quantity"]), member
        assert pool == pool_total and sharing == len(lines)
        assert (sha, doc) == (manifest_sha, f"{MONTH}/correction-01")
    assert sum((r[5] for r in rows), Decimal(0)) == pool_total  # not a grosz lost or created


def test_the_standing_document_follows_close_and_correction(ex: Exchange) -> None:
    for stage, status in (("preview", "preview"), ("final", "final"), ("correction", "correction-01")):
        rows = ex.stages[stage]
        assert rows and {r["document_status"] for r in rows} == {status}, stage
    # the correction added a one-off fee, not a transit change: the shares stand as closed
    shares = {stage: {r["member_id"]: r["transit_share"] for r in ex.stages[stage]} for stage in ex.stages}
    assert shares["final"] == shares["correction"]
    assert len({r["manifest_sha256"] for s in ex.stages.values() for r in s}) == 3
    assert "bills of 1 month(s)" in ex.build_output and "tender report run-b" in ex.build_output


def test_standing_documents_pick_correction_then_final_then_preview(tmp_path: Path) -> None:
    for folder in ("2026-01/preview", "2026-01/final", "2026-02/preview", "2026-03/final",
                   "2026-03/correction-02", "2026-03/correction-10", "2026-03/.tmp-correction-11-5",
                   "2026-04/.tmp-preview-7", "tender/run/x", "2026-13/preview"):  # fmt: skip
        (tmp_path / folder).mkdir(parents=True)
    found = [p.relative_to(tmp_path).as_posix() for p in export_sources.standing_documents(tmp_path)]
    assert found == ["2026-01/final", "2026-02/preview", "2026-03/correction-10"]


def _writable_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target


@pytest.mark.parametrize("victim", [f"bill-{MONTH}-lines.csv", "evidence/{member}.zip", "MANIFEST.json"])
def test_a_changed_document_is_refused_and_nothing_is_written(
    ex: Exchange, tmp_path: Path, victim: str
) -> None:
    exports = _writable_copy(ex.exports, tmp_path / "exports")
    member = ex.stages["correction"][0]["member_id"]
    path = exports / MONTH / "correction-01" / victim.format(member=member)
    data = bytearray(path.read_bytes())
    if victim == "MANIFEST.json":
        data = bytearray(data.replace(b'"sha256": "', b'"sha256": "0', 1))
    else:
        data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    lake = tmp_path / "lake"
    with pytest.raises(InputError) as caught:
        export_sources.export(exports, lake)
    message = str(caught.value)
    assert f"{MONTH}/correction-01" in message and "peerpool bill" in message
    named = "MANIFEST.json" if victim == "MANIFEST.json" else victim.format(member=member)
    assert f"{named}: sha256 differs" in message or f"differs from {MONTH}/correction-01/{named}" in message
    assert not (lake / "exports").exists(), "a refused document must not reach the lake"


def test_member_visibility_none_leaves_the_pool_out(ex: Exchange, tmp_path: Path) -> None:
    config = tmp_path / "exchange.toml"
    text = ex.config.read_text()
    assert 'member_visibility = "totals"' in text
    config.write_text(text.replace('member_visibility = "totals"', 'member_visibility = "none"'))
    ex.bill(config=config, out=tmp_path / "exports")
    _, rows = export_sources.bill_rows(tmp_path / "exports")
    assert rows and all(r["pool_total"] is None and r["members_sharing"] is None for r in rows)
    assert all(r["total_allocation_weight"] is None for r in rows)
    totals = {r["member_id"]: r["transit_share"] for r in ex.stages["preview"]}
    assert {r["member_id"]: r["transit_share"] for r in rows} == totals  # the same shares, no pool


# ---- exchange totals against polars / numpy on the marts ---------------------------------------------


def _frame(ex: Exchange, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(ex.serving), read_only=True) as con:
        frame: pl.DataFrame = con.sql(sql).pl()
        return frame


def nearest_rank(values: np.ndarray, pct: int = 95) -> int:
    ordered = np.sort(values)
    return int(ordered[math.ceil(pct / 100 * len(ordered)) - 1])


def test_exchange_daily_totals_equal_independent_sums(ex: Exchange) -> None:
    traffic = _frame(ex, "select member_id, interval_start, in_bytes, out_bytes from fct_member_traffic_5min")
    traffic = traffic.with_columns(
        pl.col("interval_start").dt.convert_time_zone(TZ).dt.date().alias("day"),
        pl.col("in_bytes").fill_null(0),
        pl.col("out_bytes").fill_null(0),
    )
    transit = _frame(
        ex, "select interval_start, in_bytes, out_bytes from fct_transit_usage_5min"
    ).with_columns(pl.col("interval_start").dt.convert_time_zone(TZ).dt.date().alias("day"))
    member_transit = _frame(
        ex, "select member_id, interval_start, in_bytes, out_bytes from fct_member_transit_usage_5min"
    ).with_columns(pl.col("interval_start").dt.convert_time_zone(TZ).dt.date().alias("day"))
    mart = {
        r[0]: r[1:]
        for r in ex.q(
            "select traffic_date, members_counted, is_exchange_suppressed, exchange_in_bytes, "
            "exchange_out_bytes, exchange_p95_bps, exchange_max_bps, exchange_avg_bps, "
            "transit_members_counted, is_transit_suppressed, transit_in_bytes, transit_out_bytes, "
            "transit_p95_bps from fct_exchange_traffic_daily"
        )
    }
    checked = 0
    for (day,), rows in traffic.group_by(["day"]):
        per_interval = rows.group_by("interval_start").agg(
            pl.col("in_bytes").sum(), pl.col("out_bytes").sum()
        )
        inbound = per_interval["in_bytes"].to_numpy()
        members = rows.filter(pl.col("in_bytes") + pl.col("out_bytes") > 0)["member_id"].n_unique()
        got = mart[day]
        assert got[0] == members, day
        if members < 3:
            assert got[1] is True and got[2] is None, day
            continue
        assert got[1] is False
        assert (got[2], got[3]) == (int(inbound.sum()), int(per_interval["out_bytes"].sum())), day
        assert got[4] == pytest.approx(nearest_rank(inbound) * 8 / 300, rel=1e-12), day
        assert got[5] == pytest.approx(int(inbound.max()) * 8 / 300, rel=1e-12), day
        assert got[6] == pytest.approx(int(inbound.sum()) * 8 / 300 / len(inbound), rel=1e-12), day
        day_transit = (
            transit.filter(pl.col("day") == day)
            .group_by("interval_start")
            .agg(pl.col("in_bytes").sum(), pl.col("out_bytes").sum())
        )
        users = member_transit.filter(
            (pl.col("day") == day) & (pl.col("in_bytes") + pl.col("out_bytes") > 0)
        )["member_id"].n_unique()
        assert got[7] == users, day
        if users >= 3 and len(day_transit):
            t_in, t_out = day_transit["in_bytes"].to_numpy(), day_transit["out_bytes"].to_numpy()
            assert (got[9], got[10]) == (int(t_in.sum()), int(t_out.sum())), day
            expected = max(nearest_rank(t_in), nearest_rank(t_out)) * 8 / 300
            assert got[11] == pytest.approx(expected, rel=1e-12), day
            checked += 1
        elif users < 3:
            assert got[8] is True and got[9] is None, day
    assert checked >= 1, "no day had both totals shown; the check proved nothing"


def test_exchange_monthly_totals_and_the_pooled_bill(ex: Exchange) -> None:
    traffic = _frame(ex, "select interval_start, in_bytes from fct_member_traffic_5min").with_columns(
        pl.col("interval_start").dt.convert_time_zone(TZ).dt.strftime("%Y-%m").alias("month"),
        pl.col("in_bytes").fill_null(0),
    )
    feb = traffic.filter(pl.col("month") == MONTH).group_by("interval_start").agg(pl.col("in_bytes").sum())
    inbound = feb["in_bytes"].to_numpy()
    (row,) = ex.q(
        "select exchange_in_bytes, exchange_p95_mbps, exchange_max_mbps, pool_transit_cost, "
        "transit_billed_mbps, pooled_price_per_mbps, is_exchange_suppressed, is_transit_suppressed "
        "from fct_exchange_traffic_monthly where month = date '2026-02-01'"
    )
    assert row[6] is False and row[7] is False
    assert row[0] == int(inbound.sum())
    assert row[1] == half_up(Decimal(nearest_rank(inbound)) / Decimal(37_500_000), "0.0001")
    assert row[2] == half_up(Decimal(int(inbound.max())) / Decimal(37_500_000), "0.0001")
    bills = ex.q(
        "select total_cost, billed_mbps from fct_transit_bill_monthly where billing_month = date '2026-02-01'"
    )
    pool = sum((half_up(Decimal(t), "0.01") for t, _ in bills), Decimal(0))
    billed = sum((Decimal(b) for _, b in bills), Decimal(0))
    assert row[3] == pool and row[4] == billed
    assert row[5] == half_up(pool / billed, "0.0001")
    # the billing code's own pool total for the month, from the closed document
    document = json.loads((ex.exports / MONTH / "final" / f"bill-{MONTH}.json").read_text())
    assert row[3] == Decimal(document["pool"]["total"])


def test_totals_marts_carry_no_member_column(ex: Exchange) -> None:
    for table in ("fct_exchange_traffic_daily", "fct_exchange_traffic_monthly"):
        columns = {r[0] for r in ex.q(
            "select column_name from information_schema.columns where table_name = ?", [table]
        )}  # fmt: skip
        assert columns and not {c for c in columns if "member_id" in c}, table


# ---- rollups the dashboards read instead of 5-minute rows ------------------------------------------


def test_pooling_dividend_is_the_members_95ths_against_the_pools(ex: Exchange) -> None:
    """Per month: the members' billed transit 95ths summed, and the greater of the in and out
    nearest-rank 95th of their per-interval summed transit bytes (numpy), in Mbps."""
    usage = _frame(
        ex, "select interval_start, in_bytes, out_bytes from fct_member_transit_usage_5min"
    ).with_columns(pl.col("interval_start").dt.convert_time_zone(TZ).dt.strftime("%Y-%m-01").alias("month"))
    billed = {
        str(m): b
        for m, b in ex.q("select month, sum(billed_p95_bps) from fct_member_transit_usage group by 1")
    }
    mart = {
        str(r[0]): r[1:]
        for r in ex.q(
            "select month, pool_intervals, sum_of_member_p95_mbps, pool_p95_mbps, dividend_mbps "
            "from fct_pooling_dividend_monthly"
        )
    }
    assert mart and set(mart) == set(billed)
    for (month,), rows in usage.group_by(["month"]):
        pool = rows.group_by("interval_start").agg(pl.col("in_bytes").sum(), pl.col("out_bytes").sum())
        p95 = max(nearest_rank(pool["in_bytes"].to_numpy()), nearest_rank(pool["out_bytes"].to_numpy()))
        intervals, members_mbps, pool_mbps, dividend = mart[str(month)]
        assert intervals == pool.height
        # Mbps to 4 places, half up (DuckDB's decimal cast), from the exact byte counts
        exact_pool = Decimal(p95) * 8 / 300 / Decimal(10**6)
        assert pool_mbps == half_up(exact_pool, "0.0001")
        assert members_mbps == pytest.approx(
            Decimal(billed[str(month)]) / Decimal(10**6), abs=Decimal("0.00005")
        )
        assert dividend == members_mbps - pool_mbps
        assert dividend >= 0, "the pool's 95th cannot exceed the sum of the members' 95ths"


def test_hourly_reconciliation_sums_the_five_minute_rows(ex: Exchange) -> None:
    five = _frame(
        ex,
        "select interval_start, port_id, counter_in_bytes, counter_out_bytes, sflow_in_bytes, "
        "sflow_out_bytes, is_alarm from fct_reconciliation_5min",
    ).with_columns(pl.col("interval_start").dt.truncate("1h").alias("hour"))
    expected = (
        five.group_by("hour")
        .agg(
            pl.col("port_id").n_unique().alias("ports"),
            pl.len().alias("port_intervals"),
            pl.col("is_alarm").sum().alias("alarms"),
            *(
                pl.col(c).cast(pl.Float64).sum()
                for c in ("counter_in_bytes", "counter_out_bytes", "sflow_in_bytes", "sflow_out_bytes")
            ),
        )
        .sort("hour")
    )
    got = _frame(
        ex,
        "select hour_start as hour, ports, port_intervals, alarm_intervals as alarms, counter_in_bytes, "
        "counter_out_bytes, sflow_in_bytes, sflow_out_bytes, in_ratio, out_ratio "
        "from fct_reconciliation_hourly order by 1",
    )
    assert got.height == expected.height > 24
    assert got["hour"].to_list() == expected["hour"].to_list()
    for column in ("ports", "port_intervals", "alarms"):
        assert got[column].cast(pl.Int64).to_list() == expected[column].cast(pl.Int64).to_list(), column
    for column in ("counter_in_bytes", "counter_out_bytes", "sflow_in_bytes", "sflow_out_bytes"):
        assert got[column].cast(pl.Float64).to_list() == expected[column].to_list(), column
    for direction in ("in", "out"):
        sflow, counter = expected[f"sflow_{direction}_bytes"], expected[f"counter_{direction}_bytes"]
        ratio = [None if c == 0 else f / c for f, c in zip(sflow.to_list(), counter.to_list(), strict=True)]
        obtained = got[f"{direction}_ratio"].to_list()
        assert [r is None for r in obtained] == [r is None for r in ratio], direction
        assert [r for r in obtained if r is not None] == pytest.approx(
            [r for r in ratio if r is not None], rel=1e-12
        )


# ---- tender marts are the newest report ---------------------------------------------------------------


def test_tender_marts_equal_the_newest_report(ex: Exchange) -> None:
    path = ex.exports / "tender" / "run-b" / "report.json"
    report = json.loads(path.read_text())
    scenarios = report["tables"]["scenarios"]["rows"]
    assert len(scenarios) >= 3 and report["horizon_months"] == 24  # run-b, not the older run-a
    mart = ex.q(
        "select scenario_rank, scenario, provider_count, commits, expected_monthly_cost, "
        "expected_total_cost, cost_p95_total, effective_price_per_mbps, run_id, report_sha256, "
        "horizon_months from fct_tender_scenarios order by scenario_rank"
    )
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(mart) == len(scenarios)
    for rank, (got, row) in enumerate(zip(mart, scenarios, strict=True), start=1):
        assert got[:4] == (rank, row[0], row[1], row[2])
        assert got[4:8] == tuple(Decimal(v) for v in row[3:7])
        assert got[8:] == ("run-b", sha, 24)
    # each scenario's providers: the name says 'P 60% + Q 40%', the commits 'P 3000; Q 2000'
    expected: dict[int, dict[str, tuple[int, Decimal]]] = defaultdict(dict)
    for rank, row in enumerate(scenarios, start=1):
        commits = dict(part.rsplit(" ", 1) for part in row[2].split("; "))
        for part in row[0].split(" + "):
            provider, percent = part.rsplit(" ", 1)
            expected[rank][provider] = (int(percent.rstrip("%")), Decimal(commits[provider]))
    providers: dict[int, dict[str, tuple[int, Decimal]]] = defaultdict(dict)
    for rank, provider, share, commit in ex.q(
        "select scenario_rank, provider, share_percent, commit_mbps from fct_tender_scenario_providers"
    ):
        providers[rank][provider] = (share, commit)
    assert providers == expected
    assert any(sum(s for s, _ in p.values()) == 100 and len(p) == 2 for p in providers.values())
    commits = report["tables"]["commits"]["rows"]
    mart_commits = ex.q(
        "select provider, commit_mbps, expected_monthly_cost, overage_probability from fct_tender_commits "
        "order by offer_rank"
    )
    assert mart_commits == [(r[0], Decimal(r[1]), Decimal(r[5]), r[8]) for r in commits]


def test_a_tender_report_of_another_shape_is_refused(tmp_path: Path, ex: Exchange) -> None:
    report = json.loads((ex.exports / "tender" / "run-b" / "report.json").read_text())
    report["tables"]["scenarios"]["columns"][3] = "expected_monthly_eur"
    bad = tmp_path / "tender" / "odd" / "report.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps(report))
    with pytest.raises(InputError, match=r"odd/report\.json.*scenarios.*peerpool tender run"):
        export_sources.export(tmp_path, tmp_path / "lake")
