"""``peerpool bill`` end to end on a small simulated exchange.

The whole pipeline runs as in production: ``peerpool simulate`` -> ``asn build`` -> ``decode`` ->
``counters import`` -> ``build`` -> ``bill --final``. The bill is then checked for internal
consistency against figures computed here, independently of the billing code: the transit shares
add up exactly to the contracts' totals read from the serving file (each rounded half up to the
grosz), each member's VAT and gross follow from its lines, every port fee is the configured fee
prorated by the configured dates, every transit 95th is the nearest-rank sample of the member's
5-minute rows (numpy), and a re-run is byte-identical.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import subprocess
import tomllib
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.conftest import REPO

PEERPOOL = REPO / ".venvs" / "core" / "bin" / "peerpool"
MONTH = "2026-02"
CENT = Decimal("0.01")

pytestmark = pytest.mark.slow


def peerpool(*args: str) -> str:
    proc = subprocess.run([str(PEERPOOL), *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"peerpool {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("bill-e2e")
    sim = work / "sim"
    peerpool(
        "simulate",
        "--members",
        "5",
        "--days",
        "2",
        "--seed",
        "11",
        "--start",
        "2026-02-01",
        "--out",
        str(sim),
    )
    peerpool("asn", "build", str(sim / "rib.mrt"), "--out", str(sim / "asn.dat"))
    config = sim / "exchange.toml"
    lake = work / "lake"
    peerpool("decode", str(sim / "spool"), "--lake", str(lake), "--config", str(config), "--asn-db",
             str(sim / "asn.dat"), "--quiet")  # fmt: skip
    peerpool(
        "counters", "import", "--dir", str(sim / "counters"), "--lake", str(lake), "--config", str(config)
    )
    peerpool("build", "--lake", str(lake), "--config", str(config), "--warehouse", str(work / "wh"))
    serving = work / "wh" / "serving.duckdb"
    out = work / "exports"
    peerpool("bill", "--month", MONTH, "--final", "--out", str(out), "--serving", str(serving), "--config",
             str(config))  # fmt: skip
    return out / MONTH / "final", serving, config


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def test_transit_shares_add_up_to_the_providers_bills(closed: tuple[Path, Path, Path]) -> None:
    final, serving, _ = closed
    with duckdb.connect(str(serving), read_only=True) as con:
        totals = [r[0] for r in con.execute(
            "select total_cost from fct_transit_bill_monthly where billing_month = date '2026-02-01'"
        ).fetchall()]  # fmt: skip
    assert totals, "the simulated month has no transit bill"
    pool = sum((half_up(Decimal(t)) for t in totals), Decimal(0))
    lines = read_csv(final / f"bill-{MONTH}-lines.csv")
    shares = [Decimal(r["amount_net"]) for r in lines if r["kind"] == "transit_share"]
    assert len(shares) >= 2
    assert sum(shares) == pool  # not a grosz lost or created


def test_member_totals_follow_from_the_lines(closed: tuple[Path, Path, Path]) -> None:
    final, _, config = closed
    vat_rate = Decimal(tomllib.loads(config.read_text())["billing"]["vat_rate"])
    net: dict[str, Decimal] = defaultdict(Decimal)
    for row in read_csv(final / f"bill-{MONTH}-lines.csv"):
        assert row["status"] == "final"
        net[row["member_id"]] += Decimal(row["amount_net"])
    totals = read_csv(final / f"bill-{MONTH}-totals.csv")
    assert {r["member_id"] for r in totals} == set(net)
    for row in totals:
        member_net = net[row["member_id"]]
        vat = half_up(member_net * vat_rate)
        assert (Decimal(row["net"]), Decimal(row["vat"]), Decimal(row["gross"])) == (
            member_net,
            vat,
            member_net + vat,
        )


def test_port_fees_are_the_configured_fee_prorated_by_the_configured_days(
    closed: tuple[Path, Path, Path],
) -> None:
    final, _, config = closed
    data = tomllib.loads(config.read_text())
    fees = {f["speed_mbps"]: Decimal(f["monthly_fee"]) for f in data["port_fees"]}
    joined = {m["id"]: (m["joined"], m.get("left")) for m in data["members"]}
    first, end = dt.date(2026, 2, 1), dt.date(2026, 3, 1)
    expected = {}
    for p in data["ports"]:
        member_joined, member_left = joined[p["member"]]
        start = max(first, p.get("connected", dt.date(1970, 1, 1)), member_joined)
        stop = min(end, p.get("disconnected") or end, member_left or end)
        days = (stop - start).days
        if days > 0:
            expected[f"{p['switch']}:{p['interface']}"] = half_up(fees[p["speed_mbps"]] * days / 28)
    lines = read_csv(final / f"bill-{MONTH}-lines.csv")
    got = {r["reference"]: Decimal(r["amount_net"]) for r in lines if r["kind"] == "port_fee"}
    assert got == expected


def test_transit_95ths_are_the_nearest_rank_of_the_members_samples(closed: tuple[Path, Path, Path]) -> None:
    final, serving, _ = closed
    start, end = "2026-01-31 23:00:00+00", "2026-02-28 23:00:00+00"
    with duckdb.connect(str(serving), read_only=True) as con:
        spine = [r[0] for r in con.execute(
            "select distinct epoch(interval_start)::bigint from intermediate.int_transit_port_scaling_5min "
            f"where scale_factor is not null and interval_start >= '{start}' and interval_start < '{end}'"
        ).fetchall()]  # fmt: skip
        rows = con.execute(
            "select member_id, epoch(interval_start)::bigint, in_bytes, out_bytes from "
            f"fct_member_transit_usage_5min where interval_start >= '{start}' "
            f"and interval_start < '{end}'"
        ).fetchall()
    counted = set(spine)
    samples: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"in": [], "out": []})
    for member, t, i, o in rows:
        if t in counted:
            samples[member]["in"].append(int(i))
            samples[member]["out"].append(int(o))
    n = len(spine)
    k = -(-95 * n // 100)  # ceil(0.95 n) in integers
    lines = read_csv(final / f"bill-{MONTH}-lines.csv")
    quantities = {r["member_id"]: r["quantity"] for r in lines if r["kind"] == "transit_share"}
    assert quantities
    for member, quantity in quantities.items():
        best = 0
        for direction in ("in", "out"):
            values = np.zeros(n, dtype=np.int64)  # intervals without the member's flows count 0
            values[: len(samples[member][direction])] = samples[member][direction]
            best = max(best, int(np.sort(values)[k - 1]))
        mbps = (Decimal(best) / Decimal(37_500_000)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        assert Decimal(quantity) == mbps, member


def test_a_rerun_of_the_closed_month_is_byte_identical(closed: tuple[Path, Path, Path]) -> None:
    final, serving, config = closed
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in final.rglob("*") if p.is_file()}
    output = peerpool("bill", "--month", MONTH, "--final", "--out", str(final.parents[1]), "--serving",
                      str(serving), "--config", str(config))  # fmt: skip
    assert "identical" in output
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in final.rglob("*") if p.is_file()} == before
