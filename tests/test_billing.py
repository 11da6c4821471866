"""``peerpool bill`` on the hand-made serving file of ``tests/test_billing_support.py``.

Every expected figure below is worked out by hand in the comments (fee schedule, days, the
nearest-rank rule, largest remainder, VAT half up), never taken from the code's output.
February 2026 has 28 days; the 10G fee is 900.00, the 1G fee 300.00; VAT 23 %.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from peerpool.billing.cli import bill
from peerpool.errors import BillingError
from tests.test_billing_support import write_fixture

HOLD_READ_ONLY = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "con.execute('select count(*) from dim_ports').fetchall()\n"
    "print('holding', flush=True)\n"
    "time.sleep(60)\n"
)


def args(tmp: Path, serving: Path, config: Path, month: str = "2026-02") -> list[str]:
    return ["--month", month, "--out", str(tmp / "out"), "--serving", str(serving), "--config", str(config)]


def run(*args: str) -> Result:
    return CliRunner().invoke(bill, list(args), catch_exceptions=True)


@pytest.fixture(scope="module")
def default_preview(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture month's preview with the default rules, shared by the tests that only read it."""
    return preview(tmp_path_factory.mktemp("preview"))


def preview(tmp: Path, *extra: str, **fixture: Any) -> Path:
    serving, config = write_fixture(tmp, **fixture)
    result = run(*args(tmp, serving, config), *extra)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return tmp / "out" / "2026-02" / "preview"


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def lines_by_key(doc: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    return {(r["member_id"], r["kind"], r["reference"]): r for r in rows(doc / "bill-2026-02-lines.csv")}


def test_every_line_of_the_month_by_hand(default_preview: Path) -> None:
    doc = default_preview
    lines = lines_by_key(doc)
    expected = {
        # Alpha: one 10G port the whole month: 900.00 x 28/28
        ("AS64500", "port_fee", "ktw-sw1:et-0/0/1"): "900.00",
        # Beta joins on the 10th with a 1G port: days 10..28 = 19 (the connect day counts);
        # 300.00 x 19 / 28 = 203.5714... -> 203.57
        ("AS64501", "port_fee", "ktw-sw1:ge-0/0/1"): "203.57",
        ("AS64501", "one_off_fee", "cross-connect installation"): "250.00",
        # Gamma: two 10G ports in bundle ae1, each billed: 900.00 + 900.00
        ("AS64502", "port_fee", "ktw-sw1:et-0/0/2"): "900.00",
        ("AS64502", "port_fee", "ktw-sw1:et-0/0/3"): "900.00",
        # Gamma's credit on et-0/0/2 (unreachable only; the oper-down on et-0/0/3 is not credited):
        #   fault 1: 31 Jan 22:00-23:30 UTC, clipped to the month (from 23:00 UTC = 1 Feb 00:00 local):
        #            30 min -> 1 started day
        #   faults 2+3 overlap: 5 Feb 10:00 -> 6 Feb 12:00 UTC = 26 h -> 2 started days
        #   3 started days x 900.00 / 30 = 90.00
        ("AS64502", "sla_credit", "ktw-sw1:et-0/0/2"): "-90.00",
        # Delta's port is disconnected on the 15th (first day out of service): days 1..14 = 14
        # 900.00 x 14 / 28 = 450.00
        ("AS64503", "port_fee", "ktw-sw1:et-0/0/4"): "450.00",
        ("AS64503", "one_off_fee", "port removal"): "11.50",
        # Transit: pool bill 191.1054 -> 191.11 = 19111 grosz, weights 30 + 20 + 10.0001 = 60.0001 Mbps
        #   Alpha 19111 x 30 / 60.0001      = 9555.484... -> 9555, remainder .484
        #   Beta  19111 x 20 / 60.0001      = 6370.322... -> 6370, remainder .323
        #   Gamma 19111 x 10.0001 / 60.0001 = 3185.193... -> 3185, remainder .193
        #   floors 19110, one grosz left -> largest remainder (Alpha)
        ("AS64500", "transit_share", "pool"): "95.56",
        ("AS64501", "transit_share", "pool"): "63.70",
        ("AS64502", "transit_share", "pool"): "31.85",
    }
    assert {k: v["amount_net"] for k, v in lines.items()} == expected
    # not a line: Alpha's one-off fee of March, Delta's transit (no use), the transit port's outage
    assert lines[("AS64501", "port_fee", "ktw-sw1:ge-0/0/1")]["quantity"] == "19"
    assert lines[("AS64501", "port_fee", "ktw-sw1:ge-0/0/1")]["unit"] == "days of 28"
    assert "bundle ae1" in lines[("AS64502", "port_fee", "ktw-sw1:et-0/0/3")]["description"]
    assert lines[("AS64502", "sla_credit", "ktw-sw1:et-0/0/2")]["quantity"] == "3"
    assert lines[("AS64502", "transit_share", "pool")]["quantity"] == "10.0001"
    # the shares add up to the provider's bill exactly
    shares = [Decimal(v["amount_net"]) for k, v in lines.items() if k[1] == "transit_share"]
    assert sum(shares) == Decimal("191.11")


def test_totals_vat_half_up_and_gross(default_preview: Path) -> None:
    doc = default_preview
    totals = {r["member_id"]: (r["net"], r["vat"], r["gross"]) for r in rows(doc / "bill-2026-02-totals.csv")}
    assert totals == {
        # 900.00 + 95.56 = 995.56; x 0.23 = 228.9788 -> 228.98; 995.56 + 228.98
        "AS64500": ("995.56", "228.98", "1224.54"),
        # 203.57 + 63.70 + 250.00 = 517.27; x 0.23 = 118.9721 -> 118.97
        "AS64501": ("517.27", "118.97", "636.24"),
        # 900 + 900 - 90 + 31.85 = 1741.85; x 0.23 = 400.6255 -> 400.63
        "AS64502": ("1741.85", "400.63", "2142.48"),
        # 450.00 + 11.50 = 461.50; x 0.23 = 106.145 exactly: half up -> 106.15 (half even would give 106.14)
        "AS64503": ("461.50", "106.15", "567.65"),
    }
    combined = json.loads((doc / "bill-2026-02.json").read_text())
    # totals are sums of the rounded member figures
    assert combined["totals"] == {"net": "3716.18", "vat": "854.73", "gross": "4570.91"}
    assert combined["pool"]["total"] == "191.11"
    assert combined["pool"]["allocation"]["total_weight"] == "60.0001"
    assert combined["pool"]["allocation"]["method"] == "proportional_p95"


def test_oper_down_credited_only_when_asked(tmp_path: Path) -> None:
    doc = preview(tmp_path, "--credit-oper-down")
    lines = lines_by_key(doc)
    # the 3-minute oper-down on et-0/0/3: one started day, 900.00 / 30 = 30.00
    assert lines[("AS64502", "sla_credit", "ktw-sw1:et-0/0/3")]["amount_net"] == "-30.00"
    assert lines[("AS64502", "sla_credit", "ktw-sw1:et-0/0/2")]["amount_net"] == "-90.00"
    policy = json.loads((doc / "bill-2026-02.json").read_text())["generated_from"]["policy"]
    assert policy["credited_outage_causes"] == ["unreachable", "oper_down"]


def test_every_preview_file_says_preview_and_files_are_stable(default_preview: Path) -> None:
    doc = default_preview
    tmp_path = doc.parents[2]
    for path in doc.rglob("*.csv"):
        data = path.read_bytes()
        assert b"\r" not in data
        assert {r["status"] for r in rows(path)} == {"preview"}, path
        header = data.split(b"\n", 1)[0]
        assert header.startswith(b"status,month,member_id"), path
    for path in doc.rglob("*.json"):
        document = json.loads(path.read_text())["document"]
        assert document["status"] == "preview", path
    for path in doc.rglob("*.zip"):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
            summary = next(n for n in names if n.endswith(".json"))
            assert json.loads(archive.read(summary))["document"]["status"] == "preview"
    # rows sorted by member, then kind (fee, credit, transit, one-off), then reference
    keys = [(r["member_id"], r["line_no"]) for r in rows(doc / "bill-2026-02-lines.csv")]
    assert keys == [
        ("AS64500", "1"), ("AS64500", "2"),
        ("AS64501", "1"), ("AS64501", "2"), ("AS64501", "3"),
        ("AS64502", "1"), ("AS64502", "2"), ("AS64502", "3"), ("AS64502", "4"),
        ("AS64503", "1"), ("AS64503", "2"),
    ]  # fmt: skip
    # the inputs by checksum, not by time
    generated = json.loads((doc / "bill-2026-02.json").read_text())["generated_from"]
    assert (
        generated["serving_sha256"] == hashlib.sha256((tmp_path / "serving.duckdb").read_bytes()).hexdigest()
    )
    assert generated["config_sha256"] == hashlib.sha256((tmp_path / "exchange.toml").read_bytes()).hexdigest()
    # every file in the manifest with its sha256
    manifest = json.loads((doc / "MANIFEST.json").read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    on_disk = {
        p.relative_to(doc).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in doc.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json"
    }
    assert listed == on_disk


def member_pack(doc: Path, member: str) -> dict[str, bytes]:
    with zipfile.ZipFile(doc / "evidence" / f"{member}.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_member_evidence_reproduces_the_transit_95th(default_preview: Path) -> None:
    doc = default_preview
    pack = member_pack(doc, "AS64502")
    samples = list(csv.DictReader(io.StringIO(pack["transit/samples.csv"].decode())))
    counted = [r for r in samples if r["source"] != "excluded"]
    # n = 20 intervals with scaled transit counters; Gamma was measured in 2, zero-filled in 18;
    # the interval without scaled counters (10 Feb 12:00 UTC, 9e12 bytes) is left out
    assert len(counted) == 20
    assert sorted(r["source"] for r in samples).count("zero_filled") == 18
    excluded = [r for r in samples if r["source"] == "excluded"]
    assert [(r["interval_start_utc"], r["in_class"]) for r in excluded] == [
        ("2026-02-10T12:00:00Z", "excluded")
    ]
    # by hand: sort the 20 inbound values, k = ceil(0.95 x 20) = 19 -> the 19th smallest
    values = sorted(int(r["in_bytes"]) for r in counted)
    assert values[19 - 1] == 375_001_875
    billed = [r for r in counted if r["in_class"] == "billed"]
    assert [(r["in_bytes"], r["in_rank"]) for r in billed] == [("375001875", "19")]
    assert [r["in_bytes"] for r in counted if r["in_class"] == "discarded"] == ["450000000"]
    summary = json.loads(pack["summary.json"])
    transit = summary["transit_95th"]
    assert (transit["n"], transit["k"], transit["discarded_top"]) == (20, 19, 1)
    # 375,001,875 bytes / 37,500,000 = 10.00005 Mbps -> 10.0001 (half up; half even would give 10.0000)
    assert transit["billed_bytes"] == 375_001_875
    assert transit["billed_mbps"] == "10.0001"
    top = list(csv.DictReader(io.StringIO(pack["transit/top_in.csv"].decode())))
    assert [(r["rank"], r["class"]) for r in top] == [("20", "discarded"), ("19", "billed")]
    # the credit's outage intervals, credited or not, with the reason
    outages = list(csv.DictReader(io.StringIO(pack["outages.csv"].decode())))
    assert [(o["port_id"], o["cause"], o["credited"]) for o in outages] == [
        ("ktw-sw1:et-0/0/2", "unreachable", "true"),
        ("ktw-sw1:et-0/0/2", "unreachable", "true"),
        ("ktw-sw1:et-0/0/2", "unreachable", "true"),
        ("ktw-sw1:et-0/0/3", "oper_down", "false"),
    ]
    assert outages[0]["clipped_start"] == "2026-01-31T23:00:00Z"
    credit = next(line for line in summary["lines"] if line["kind"] == "sla_credit")
    assert [(f["start"], f["end"], f["started_days"]) for f in credit["detail"]["faults"]] == [
        ("2026-01-31T23:00:00Z", "2026-01-31T23:30:00Z", 1),
        ("2026-02-05T10:00:00Z", "2026-02-06T12:00:00Z", 2),
    ]
    # the pool's evidence is referenced by checksum
    pool_sha = hashlib.sha256((doc / "evidence" / "pool.zip").read_bytes()).hexdigest()
    assert summary["pool_evidence"]["sha256"] == pool_sha
    # proration days in the evidence (Beta)
    beta = json.loads(member_pack(doc, "AS64501")["summary.json"])
    fee = next(line for line in beta["lines"] if line["kind"] == "port_fee")["detail"]
    assert (fee["first_day_billed"], fee["last_day_billed"], fee["days_served"], fee["days_in_month"]) == (
        "2026-02-10", "2026-02-28", 19, 28,
    )  # fmt: skip
    assert beta["transit_95th"]["billed_direction"] == "out"


def test_pool_evidence_reproduces_the_contract_bill(default_preview: Path) -> None:
    doc = default_preview
    with zipfile.ZipFile(doc / "evidence" / "pool.zip") as archive:
        samples = list(csv.DictReader(io.StringIO(archive.read("contracts/upstream-1/samples.csv").decode())))
        flags = list(
            csv.DictReader(io.StringIO(archive.read("contracts/upstream-1/port_flags.csv").decode()))
        )
        pool = json.loads(archive.read("pool.json"))
    assert len(samples) == 21
    billable = [r for r in samples if r["is_billable"] == "true"]
    assert len(billable) == 20
    # the incomplete interval (8e9 bytes, one port missing) is excluded under the gap policy
    assert [(r["in_bytes"], r["in_class"]) for r in samples if r["is_billable"] == "false"] == [
        ("8000000000", "excluded")
    ]
    ordered = sorted(int(r["in_bytes"]) for r in billable)
    # k = ceil(0.95 x 20) = 19: the 19th smallest is interval 18's 19 x 10 Mbps x 37,500,000 + 12,345 bytes
    assert ordered[19 - 1] == 19 * 10 * 37_500_000 + 12_345
    assert [r["in_bytes"] for r in billable if r["in_class"] == "billed"] == ["7125012345"]
    contract = pool["contracts"][0]
    assert contract["percentiles"]["in"]["k"] == 19
    assert contract["percentiles"]["in"]["discarded_top"] == 1
    assert contract["billed_mbps"] == "190.0003"  # 7,125,012,345 / 37,500,000 = 190.00032920
    assert contract["overage_cost"] == "111.1054"  # 90.0003 x 1.2345 = 111.10537035
    assert contract["total_grosz"] == "191.11"
    assert contract["intervals_without_row"] == 8064 - 21  # 28 days x 288 intervals
    # counter discontinuities of the contract's ports: the reset, the wrap, the failed read
    assert sorted((f["port_id"], f["interval_start_utc"]) for f in flags) == [
        ("ktw-br1:xe-0/0/0", "2026-01-31T23:25:00Z"),
        ("ktw-br1:xe-0/0/1", "2026-01-31T23:30:00Z"),
        ("ktw-br1:xe-0/0/1", "2026-02-01T00:40:00Z"),
    ]
    assert contract["counter_flags"] == {"failed_read": 1, "reset": 1, "untrusted": 2, "wrap": 1}
    # pool evidence holds totals only: no member's own figure
    assert "AS645" not in json.dumps(pool)


def test_serving_file_is_opened_read_only_and_left_unchanged(tmp_path: Path) -> None:
    serving, config = write_fixture(tmp_path)
    before = hashlib.sha256(serving.read_bytes()).hexdigest()
    # another process holding the file read-only (as Superset does) does not stop the bill; a
    # writer would, and the bill must never be one
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_ONLY, str(serving)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        result = run(*args(tmp_path, serving, config))
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(serving.read_bytes()).hexdigest() == before


def test_a_mart_figure_the_samples_do_not_support_stops_the_bill(tmp_path: Path) -> None:
    serving, config = write_fixture(tmp_path, alpha_mart_mbps="30.0001")
    result = run(
        "--month",
        "2026-02",
        "--out",
        str(tmp_path / "out"),
        "--serving",
        str(serving),
        "--config",
        str(config),
    )
    assert isinstance(result.exception, BillingError)
    message = str(result.exception)
    assert "AS64500" in message and "30.0000" in message and "30.0001" in message
    assert not (tmp_path / "out" / "2026-02" / "preview").exists()


def test_contract_in_another_currency_is_refused(tmp_path: Path) -> None:
    serving, config = write_fixture(tmp_path, contract_currency="EUR")
    result = run(
        "--month",
        "2026-02",
        "--out",
        str(tmp_path / "out"),
        "--serving",
        str(serving),
        "--config",
        str(config),
    )
    assert isinstance(result.exception, BillingError)
    assert "upstream-1" in str(result.exception) and "currency" in str(result.exception)


def test_serving_file_from_another_configuration_is_refused(tmp_path: Path) -> None:
    serving, config = write_fixture(tmp_path)
    config.write_text(config.read_text().replace("speed_mbps = 1000\nvlan", "speed_mbps = 10000\nvlan", 1))
    result = run(
        "--month",
        "2026-02",
        "--out",
        str(tmp_path / "out"),
        "--serving",
        str(serving),
        "--config",
        str(config),
    )
    assert isinstance(result.exception, BillingError)
    assert "ktw-sw1:ge-0/0/1" in str(result.exception) and "peerpool build" in str(result.exception)


@pytest.mark.parametrize("month", ["2026-13", "2026/02", "Feb", ""])
def test_bad_month_is_refused_with_the_format(tmp_path: Path, month: str) -> None:
    serving, config = write_fixture(tmp_path)
    result = run(
        "--month", month, "--out", str(tmp_path / "out"), "--serving", str(serving), "--config", str(config)
    )
    assert isinstance(result.exception, BillingError)
    assert "YYYY-MM" in str(result.exception)


def test_missing_serving_file_names_it(tmp_path: Path) -> None:
    _, config = write_fixture(tmp_path)
    missing = tmp_path / "nope.duckdb"
    result = run(
        "--month",
        "2026-02",
        "--out",
        str(tmp_path / "out"),
        "--serving",
        str(missing),
        "--config",
        str(config),
    )
    assert isinstance(result.exception, BillingError)
    assert "nope.duckdb" in str(result.exception) and "peerpool build" in str(result.exception)


def test_member_visibility_none_keeps_cooperative_totals_out_of_member_files(tmp_path: Path) -> None:
    serving, config = write_fixture(tmp_path)
    config.write_text(
        config.read_text().replace('member_visibility = "totals"', 'member_visibility = "none"')
    )
    result = run(*args(tmp_path, serving, config))
    assert result.exit_code == 0, result.output
    doc = tmp_path / "out" / "2026-02" / "preview"
    member = json.loads((doc / "members" / "AS64500.json").read_text())
    assert "total" not in member["pool"] and "191.11" not in json.dumps(member)
    pack = member_pack(doc, "AS64500")
    summary = json.loads(pack["summary.json"])
    share = next(line for line in summary["lines"] if line["kind"] == "transit_share")
    assert "pool_total" not in share["detail"] and "pool_allocation" not in share["detail"]
    assert "pool_evidence" not in summary
    # the member's own figures stay: its 95th and its share
    assert share["amount_net"] == "95.56" and summary["transit_95th"]["billed_mbps"] == "30.0000"


def test_closing_a_month_that_has_not_ended_is_refused(tmp_path: Path) -> None:
    serving, config = write_fixture(tmp_path)
    result = run(*args(tmp_path, serving, config, "2099-01"), "--final")
    assert isinstance(result.exception, BillingError)
    assert "has not ended" in str(result.exception)
    assert not (tmp_path / "out" / "2099-01" / "final").exists()
