"""``peerpool build`` on a small simulated exchange, checked against independent computations.

The whole chain runs as a user would run it: ``peerpool simulate --members 5 --days 2`` (with
denser sampling than its default so that every member has samples in nearly every interval,
as a real exchange at 1:16384 does), ``peerpool decode``, ``peerpool counters import``, then
``peerpool build`` (reference export, the real counter hygiene, every dbt test). Then:

* member 95ths and transit bills are recomputed here from the lake's ``port_rates_5min`` (the
  hygiene output the models start from) with sorted lists and ``Decimal``;
* the matrix adds up to each member's counters in every scaled interval;
* figures are compared with the simulator's ground truth (``DIR/truth/``): member 95ths within
  1 % (hygiene re-times polls to 5-minute bins), the large member pairs within 5 %, member
  transit totals within 10 %.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
import tomllib
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from peerpool import settings
from peerpool.build import run_build

pytestmark = pytest.mark.slow


def _peerpool(*args: str) -> None:
    exe = Path(sys.executable).parent / "peerpool"
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"peerpool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sim")
    _peerpool(
        "simulate",
        "--members",
        "5",
        "--days",
        "2",
        "--out",
        str(d),
        "--samples-per-member-day",
        "40000",
        "--records-per-member-day",
        "20000",
    )
    _peerpool("decode", "--lake", str(d / "lake"), "--config", str(d / "exchange.toml"), str(d / "spool"))
    _peerpool(
        "counters",
        "import",
        "--lake",
        str(d / "lake"),
        "--config",
        str(d / "exchange.toml"),
        "--dir",
        str(d / "counters"),
    )
    cfg = settings.resolve(lake=d / "lake", warehouse=d / "warehouse", config=d / "exchange.toml")
    run_build(cfg, echo=lambda _: None)
    return d


def q(db: Path | None, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True) if db else duckdb.connect()
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def serving(d: Path) -> Path:
    return d / "warehouse" / "serving.duckdb"


def nearest_rank(values: list[int], pct: int = 95) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(Decimal(pct) / 100 * len(ordered)) - 1]


def _config(d: Path) -> dict[str, Any]:
    return tomllib.loads((d / "exchange.toml").read_text(encoding="utf-8"))


def _rates(d: Path) -> dict[tuple[str, dt.datetime], tuple[bool, int | None, int | None]]:
    rows = q(
        None,
        "select port_id, interval_start, is_trusted, in_bytes, out_bytes from read_parquet("
        f"'{d / 'lake' / 'port_rates_5min'}/**/*.parquet', hive_partitioning = true)",
    )
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def _member_ports(d: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for port in _config(d)["ports"]:
        out[port["member"]].append(f"{port['switch']}:{port['interface']}")
    return out


def _member_sums(d: Path) -> dict[str, dict[dt.datetime, tuple[int, int]]]:
    """Per member and interval, in/out bytes summed over its ports where every port is trusted."""
    rates = _rates(d)
    intervals = sorted({k[1] for k in rates})
    sums: dict[str, dict[dt.datetime, tuple[int, int]]] = {}
    for member, ports in _member_ports(d).items():
        sums[member] = {}
        for t in intervals:
            present = [rates[(p, t)] for p in ports if (p, t) in rates]
            if present and all(r[0] for r in present):
                sums[member][t] = (sum(r[1] or 0 for r in present), sum(r[2] or 0 for r in present))
    return sums


def test_member_95ths_match_hygiene_rates_and_truth(simulated: Path) -> None:
    d = simulated
    got = {
        r[0]: r[1:]
        for r in q(
            serving(d),
            "select member_id, intervals_used, in_p95_bps, out_p95_bps from fct_member_traffic_monthly",
        )
    }
    true_series: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for member, in_b, out_b in q(
        None,
        "select member_id, sum(in_bytes), sum(out_bytes) from read_parquet("
        f"'{d / 'truth' / 'port_traffic'}/**/*.parquet', hive_partitioning = true) "
        "where not is_transit group by member_id, interval_start",
    ):
        true_series[member].append((int(in_b), int(out_b)))
    truth = {
        m: (nearest_rank([v[0] for v in s]) * 8 / 300, nearest_rank([v[1] for v in s]) * 8 / 300)
        for m, s in true_series.items()
    }
    sums = _member_sums(d)
    assert set(got) == set(sums)
    for member, series in sums.items():
        used, in_p95, out_p95 = got[member]
        assert used == len(series)  # the simulation spans one month (October, Warsaw)
        assert in_p95 == pytest.approx(nearest_rank([v[0] for v in series.values()]) * 8 / 300, rel=1e-12)
        assert out_p95 == pytest.approx(nearest_rank([v[1] for v in series.values()]) * 8 / 300, rel=1e-12)
        assert in_p95 == pytest.approx(truth[member][0], rel=0.01)
        assert out_p95 == pytest.approx(truth[member][1], rel=0.01)


def test_transit_bills_by_hand_from_hygiene_rates(simulated: Path) -> None:
    d = simulated
    rates = _rates(d)
    intervals = sorted({k[1] for k in rates})
    warsaw = ZoneInfo("Europe/Warsaw")
    bills = {
        r[0]: r[1:]
        for r in q(
            serving(d),
            "select contract_id, billing_month, intervals_used, billed_mbps, commit_cost, "
            "overage_cost, total_cost, effective_price_per_mbps from fct_transit_bill_monthly",
        )
    }
    contracts = _config(d)["transit_contracts"]
    assert set(bills) == {c["id"] for c in contracts}
    for c in contracts:
        assert c["gap_policy"] == "exclude" and c["percentile"] == 95  # what the sums below assume
        ins: list[int] = []
        outs: list[int] = []
        for t in intervals:
            if t.astimezone(warsaw).date() < c["term_start"]:
                continue
            present = [rates.get((p, t)) for p in c["ports"]]
            if all(r is not None and r[0] for r in present):
                ins.append(sum(r[1] or 0 for r in present if r))
                outs.append(sum(r[2] or 0 for r in present if r))
        in95, out95 = nearest_rank(ins), nearest_rank(outs)
        billed_bytes = {"max": max(in95, out95), "in": in95, "out": out95}[c["direction_rule"]]
        billed = (Decimal(billed_bytes) * 8 / 300 / 1_000_000).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        commit = Decimal(c["commit_mbps"])
        commit_cost = (commit * Decimal(c["price_per_mbps"])).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        overage = max(billed - commit, Decimal(0))
        overage_cost = (overage * Decimal(c["burst_price_per_mbps"])).quantize(
            Decimal("0.0001"), ROUND_HALF_UP
        )
        total = commit_cost + overage_cost
        effective = (total / billed).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        assert bills[c["id"]] == (
            dt.date(2026, 10, 1),
            len(ins),
            billed,
            commit_cost,
            overage_cost,
            total,
            effective,
        ), c["id"]


def test_matrix_adds_up_to_counters_and_truth(simulated: Path) -> None:
    d = simulated
    sums = _member_sums(d)
    rows = q(
        serving(d),
        "select src_member_id, interval_start, sum(bytes) from fct_member_pair_traffic_5min "
        "where src_member_id <> 'unknown' group by all having bool_and(is_scaled)",
    )
    assert len(rows) > 0.75 * sum(len(s) for s in sums.values())  # most intervals have samples of the member
    for member, start, nbytes in rows:
        assert nbytes == pytest.approx(sums[member][start][0], abs=10)  # pairs rounded to whole bytes
    got = {
        (r[0], r[1]): r[2]
        for r in q(
            serving(d),
            "select src_member_id, dst_member_id, sum(bytes) from fct_member_pair_traffic_5min group by all",
        )
    }
    truth = q(
        None,
        "select src_member_id, dst_member_id, sum(bytes) from read_parquet("
        f"'{d / 'truth' / 'member_pairs'}/**/*.parquet', hive_partitioning = true) group by all",
    )
    total = sum(r[2] for r in truth)
    large = [r for r in truth if r[2] > 0.1 * total]
    assert large
    for src, dst, nbytes in large:
        assert got[(src, dst)] == pytest.approx(nbytes, rel=0.05), (src, dst)


def test_member_transit_totals_near_truth(simulated: Path) -> None:
    d = simulated
    got = {
        r[0]: r[1:]
        for r in q(
            serving(d),
            "select member_id, sum(in_bytes), sum(out_bytes) from fct_member_transit_usage_5min group by 1",
        )
    }
    truth = q(
        None,
        "select member_id, sum(in_bytes), sum(out_bytes) from read_parquet("
        f"'{d / 'truth' / 'transit'}/**/*.parquet', hive_partitioning = true) group by 1",
    )
    everything = sum(r[1] + r[2] for r in truth)
    for member, in_b, out_b in truth:
        if in_b + out_b > 0.05 * everything:
            assert got[member][0] + got[member][1] == pytest.approx(in_b + out_b, rel=0.10), member
