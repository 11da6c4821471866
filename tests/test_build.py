"""``peerpool build`` end to end on a hand-made lake, checked against plain Python.

The lake is written here through the contract writer (``peerpool.lake.write_part``): raw SNMP
counter reads (cumulative octets, one poll every 5 minutes, one failed poll), the sFlow member
matrix, border-router IPFIX rows and a few loss / unknown-MAC rows. The real counter hygiene
(``ingest.counters.hygiene``) turns the reads into rates, dbt builds the marts, and every figure
asserted below is recomputed in this file from the numbers the fixture generated: nearest-rank
95ths with sorted lists, bills in ``Decimal``, matrix and transit scaling with plain division.

The period is 2026-03-28 00:00 to 2026-03-30 00:00 UTC, across the Europe/Warsaw spring DST
change, so the local day 2026-03-29 has 23 hours (276 intervals).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest

from peerpool import lake, lake_changes, settings
from peerpool.build import LOOKBACK_DAYS, BuildError, run_build

T0 = dt.datetime(2026, 3, 28, tzinfo=dt.UTC)
N = 576  # two UTC days of 5-minute intervals
STEP = dt.timedelta(minutes=5)
WARSAW = ZoneInfo("Europe/Warsaw")
FAILED_POLL = 300  # index of the failed poll of port waw-sw1:et-0/0/9

EXCHANGE_TOML = """
[exchange]
name = "Fixture IX"

[billing]
currency = "PLN"
vat_rate = "0.23"
timezone = "Europe/Warsaw"

[[sites]]
id = "KTW"
name = "Katowice"
city = "Katowice"

[[sites]]
id = "WAW"
name = "Warszawa"
city = "Warszawa"

[snmp.default]
version = "2c"
community_env = "PEERPOOL_SNMP_COMMUNITY"

[[switches]]
id = "ktw-sw1"
site = "KTW"
management_address = "127.0.0.1"
snmp = "default"
sflow_agent_address = "10.255.0.1"

[[switches]]
id = "waw-sw1"
site = "WAW"
management_address = "127.0.0.1"
snmp = "default"
sflow_agent_address = "10.255.0.2"

[[members]]
id = "AS64500"
asn = 64500
name = "Eyeball Net"
billing_entity = "Eyeball Net Sp. z o.o."
joined = 2024-01-01
kind = "eyeball"
prefixes = ["198.51.100.0/24"]

[[members]]
id = "AS64501"
asn = 64501
name = "Hosting Co"
billing_entity = "Hosting Co S.A."
joined = 2024-03-15
kind = "hosting"
prefixes = ["203.0.113.0/24", "2001:db8:200::/48"]

[[members]]
id = "AS64502"
asn = 64502
name = "Content Ltd"
billing_entity = "Content Ltd"
joined = 2025-01-01
kind = "content"
prefixes = ["192.0.2.0/25"]

[[ports]]
switch = "ktw-sw1"
interface = "et-0/0/1"
ifindex = 1001
speed_mbps = 10000
vlan = 100
member = "AS64500"
macs = ["02:00:00:00:fa:00"]
connected = 2024-01-01

[[ports]]
switch = "waw-sw1"
interface = "et-0/0/2"
ifindex = 1002
speed_mbps = 10000
vlan = 100
member = "AS64500"
macs = ["02:00:00:00:fa:01"]
connected = 2026-03-10

[[ports]]
switch = "waw-sw1"
interface = "et-0/0/7"
ifindex = 1007
speed_mbps = 1000
vlan = 100
member = "AS64501"
macs = ["02:00:00:00:fb:01"]
connected = 2024-03-15

[[ports]]
switch = "waw-sw1"
interface = "et-0/0/9"
ifindex = 1009
speed_mbps = 10000
vlan = 100
member = "AS64502"
macs = ["02:00:00:00:fc:01"]
connected = 2025-01-01

[[border_routers]]
id = "ktw-br1"
site = "KTW"
management_address = "127.0.0.1"
flow_exporter_address = "10.255.1.1"
snmp = "default"

[[border_routers.ports]]
interface = "xe-0/0/0"
ifindex = 501
speed_mbps = 100000

[[border_routers.ports]]
interface = "xe-0/0/1"
ifindex = 502
speed_mbps = 100000

[[transit_contracts]]
id = "arelion-2026"
provider = "Arelion"
ports = ["ktw-br1:xe-0/0/0", "ktw-br1:xe-0/0/1"]
commit_mbps = "300"
price_per_mbps = "0.80"
burst_price_per_mbps = "1.10"
currency = "PLN"
percentile = 95
direction_rule = "max"
billing_timezone = "Europe/Warsaw"
gap_policy = "exclude"
term_start = 2026-01-01
term_end = 2027-12-31

[[port_fees]]
speed_mbps = 1000
monthly_fee = "300.00"

[[port_fees]]
speed_mbps = 10000
monthly_fee = "900.00"

[[port_fees]]
speed_mbps = 100000
monthly_fee = "4500.00"
"""

# (port id, device, ifindex, member or None, speed Mbps)
MEMBER_PORTS = [
    ("ktw-sw1:et-0/0/1", "ktw-sw1", 1001, "AS64500", 10000),
    ("waw-sw1:et-0/0/2", "waw-sw1", 1002, "AS64500", 10000),
    ("waw-sw1:et-0/0/7", "waw-sw1", 1007, "AS64501", 1000),
    ("waw-sw1:et-0/0/9", "waw-sw1", 1009, "AS64502", 10000),
]
TRANSIT_PORTS = [("ktw-br1:xe-0/0/0", "ktw-br1", 501), ("ktw-br1:xe-0/0/1", "ktw-br1", 502)]
EXPORTER = "10.255.1.1"
# member -> (asn seen on its flows, an address of it): AS64501's flows carry no ASN (prefix match)
TRANSIT_MEMBERS = {"AS64500": (64500, "198.51.100.9"), "AS64501": (None, "2001:db8:200:1::5")}
REMOTES = [(15169, "8.8.8.8"), (13335, "1.1.1.1"), (2906, "45.57.0.1")]
UNATTRIBUTED = (65999, "100.64.0.1")  # neither a member ASN nor a member prefix


def at(k: int) -> dt.datetime:
    return T0 + k * STEP


@dataclass
class Truth:
    """What the fixture generated: the independent source of every expected value."""

    port_in: dict[str, list[int]] = field(default_factory=dict)  # bytes per interval (switch ifIn)
    port_out: dict[str, list[int]] = field(default_factory=dict)
    untrusted: dict[str, set[int]] = field(default_factory=dict)
    matrix: list[dict[str, Any]] = field(default_factory=list)
    transit_flows: list[dict[str, Any]] = field(default_factory=list)


def _counter_reads(truth: Truth, rng: random.Random) -> pa.Table:
    rows: list[dict[str, Any]] = []
    ports = [(p, d, i, s) for p, d, i, _, s in MEMBER_PORTS] + [
        (p, d, i, 100000) for p, d, i in TRANSIT_PORTS
    ]
    for port_id, device, ifindex, speed in ports:
        top = speed * 1_000_000 * 300 // 8 // 4  # a quarter of line rate at most
        ins = [rng.randrange(top // 20, top) for _ in range(N)]
        outs = [rng.randrange(top // 20, top) for _ in range(N)]
        if port_id.startswith("ktw-br1"):
            outs = [rng.randrange(5_000_000_000, 15_000_000_000) for _ in range(N)]
            ins = [rng.randrange(5_000_000_000, 15_000_000_000) for _ in range(N)]
        truth.port_in[port_id], truth.port_out[port_id] = ins, outs
        truth.untrusted[port_id] = set()
        cum_in, cum_out = 10**12, 2 * 10**12
        for k in range(N + 1):
            failed = port_id == "waw-sw1:et-0/0/9" and k == FAILED_POLL
            rows.append(
                {
                    "polled_at": at(k),
                    "source": "snmp",
                    "device_id": device,
                    "device_address": "127.0.0.1",
                    "ifindex": ifindex,
                    "port_id": port_id,
                    "ok": not failed,
                    "error": "timeout" if failed else None,
                    "sys_uptime_cs": 10_000_000 + k * 30_000,
                    "counter_bits": 64,
                    "in_octets": None if failed else cum_in,
                    "out_octets": None if failed else cum_out,
                    "in_ucast_pkts": None if failed else cum_in // 1000,
                    "out_ucast_pkts": None if failed else cum_out // 1000,
                    "if_high_speed_mbps": speed,
                    "if_oper_status": 1,
                    "if_name": port_id.split(":")[1],
                    "if_alias": "",
                    "source_file": "fixture-snmp",
                }
            )
            if k < N:
                cum_in += ins[k]
                cum_out += outs[k]
    return pa.Table.from_pylist(rows, schema=lake.PORT_COUNTERS)


def _matrix(truth: Truth, rng: random.Random) -> pa.Table:
    """sFlow estimates per source port: shares over destinations, total off the counter by +-8%."""
    rows = []
    dsts = [(p, m) for p, _, _, m, _ in MEMBER_PORTS] + [(None, None)]
    for src_port, _, _, src_member, _ in MEMBER_PORTS:
        for k in range(N):
            total = truth.port_in[src_port][k] * rng.uniform(0.92, 1.08)
            targets = [(p, m) for p, m in dsts if m != src_member]
            weights = [rng.random() + 0.1 for _ in targets]
            for (dst_port, dst_member), w in zip(targets, weights, strict=True):
                for version, part in ((4, 0.7), (6, 0.3)):
                    est = int(total * w / sum(weights) * part)
                    rows.append(
                        {
                            "interval_start": at(k),
                            "site": "KTW",
                            "exporter_address": "10.255.0.1",
                            "vlan": 100,
                            "ip_version": version,
                            "src_member_id": src_member,
                            "dst_member_id": dst_member,
                            "src_port_id": src_port,
                            "dst_port_id": dst_port,
                            "estimated_bytes": est,
                            "estimated_packets": est // 900,
                            "sample_count": max(1, est // (900 * 16384)),
                            "source_file": "fixture-sflow",
                        }
                    )
    truth.matrix = rows
    return pa.Table.from_pylist(rows, schema=lake.MEMBER_MATRIX)


def _transit_flows(truth: Truth, rng: random.Random) -> pa.Table:
    rows = []
    sources = [(m, asn, ip) for m, (asn, ip) in TRANSIT_MEMBERS.items()] + [(None, *UNATTRIBUTED)]
    for k in range(N):
        for port_id, _, ifindex in TRANSIT_PORTS:
            for direction in ("out", "in"):
                for member, member_asn, member_ip in sources:
                    if member == "AS64501" and k % 7 == 0:
                        continue  # intervals without this member's flows count as 0 for it
                    remote_asn, remote_ip = rng.choice(REMOTES)
                    est = rng.randrange(1_000_000, 3_000_000_000)
                    out = direction == "out"
                    row = {
                        "received_at": at(k) + dt.timedelta(seconds=310),
                        "flow_protocol": "ipfix",
                        "exporter_address": EXPORTER,
                        "observation_domain": 1,
                        "sequence_number": k,
                        "sampling_rate": 1000,
                        "input_ifindex": 10 if out else ifindex,
                        "output_ifindex": ifindex if out else 10,
                        "ip_version": 6 if ":" in member_ip else 4,
                        "src_ip": member_ip if out else remote_ip,
                        "dst_ip": remote_ip if out else member_ip,
                        "src_asn": member_asn if out else remote_asn,
                        "dst_asn": remote_asn if out else member_asn,
                        "bytes": est // 1000,
                        "packets": 1,
                        "estimated_bytes": est,
                        "estimated_packets": 1000,
                        "flow_start": at(k) + dt.timedelta(seconds=5),
                        "flow_end": at(k) + dt.timedelta(seconds=290),
                        "source_file": "fixture-ipfix",
                    }
                    rows.append(row)
                    truth.transit_flows.append(
                        {
                            "k": k,
                            "port": port_id,
                            "dir": direction,
                            "member": member,
                            "est": est,
                            "remote": remote_asn,
                        }
                    )
    return pa.Table.from_pylist(rows, schema=lake.FLOWS)


def _by_day(table: pa.Table, column: str) -> dict[dt.date, pa.Table]:
    days = sorted({v.date() for v in table.column(column).to_pylist()})
    out = {}
    for day in days:
        lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        mask = [lo <= v < lo + dt.timedelta(days=1) for v in table.column(column).to_pylist()]
        out[day] = table.filter(pa.array(mask))
    return out


def write_fixture(directory: Path, seed: int = 7) -> Truth:
    """Write exchange.toml and the lake under ``directory``; return the generated truth."""
    rng = random.Random(seed)
    truth = Truth()
    (directory / "exchange.toml").write_text(EXCHANGE_TOML, encoding="utf-8")
    root = directory / "lake"
    for table_name, table, column in (
        ("port_counters", _counter_reads(truth, rng), "polled_at"),
        ("member_matrix", _matrix(truth, rng), "interval_start"),
        ("flows", _transit_flows(truth, rng), "received_at"),
    ):
        for day, part in _by_day(table, column).items():
            lake.write_part(root, table_name, part, day, "fixture")
    loss = pa.Table.from_pylist(
        [
            {
                "interval_start": at(3),
                "flow_protocol": "sflow5",
                "exporter_address": "10.255.0.1",
                "observation_domain": 0,
                "datagrams_received": 90,
                "datagrams_missing": 10,
                "samples_received": 700,
                "samples_missing": 77,
                "source_file": "fixture-sflow",
            },
        ],
        schema=lake.FLOW_LOSS,
    )
    lake.write_part(root, "flow_loss", loss, T0.date(), "fixture")
    macs = pa.Table.from_pylist(
        [
            {
                "interval_start": at(k),
                "exporter_address": "10.255.0.1",
                "vlan": 100,
                "mac": "02:00:00:00:ee:ee",
                "direction": "src",
                "sample_count": 3,
                "estimated_bytes": 3 * 16384 * 900,
                "source_file": "fixture-sflow",
            }
            for k in (1, 2, 400)
        ],
        schema=lake.UNKNOWN_MACS,
    )
    for day, part in _by_day(macs, "interval_start").items():
        lake.write_part(root, "unknown_macs", part, day, "fixture")
    return truth


def nearest_rank(values: list[int], pct: int = 95) -> int:
    """The billing percentile by hand: sort, k = ceil(pct/100 * n) (1-based)."""
    ordered = sorted(values)
    k = math.ceil(Decimal(pct) / 100 * len(ordered))
    return ordered[k - 1]


def mbps(nbytes: int | float) -> Decimal:
    return (Decimal(nbytes) * 8 / 300 / 1_000_000).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def q4(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def hygiene_untrusted(directory: Path, truth: Truth) -> None:
    """Intervals counter hygiene (another part of peerpool) did not trust, read from the lake.

    Which intervals are usable is hygiene's judgement; the models must drop exactly those. The
    domain rule checked here: a failed poll loses both intervals it bounds.
    """
    con = duckdb.connect()
    rows = con.execute(
        "select port_id, interval_start from read_parquet(?, hive_partitioning = true) where not is_trusted",
        [str(directory / "lake" / "port_rates_5min" / "**" / "*.parquet")],
    ).fetchall()
    con.close()
    for port in truth.port_in:
        truth.untrusted[port] = set()
    for port, start in rows:
        truth.untrusted[port].add(int((start - T0) / STEP))
    assert {FAILED_POLL - 1, FAILED_POLL} <= truth.untrusted["waw-sw1:et-0/0/9"]


def build(directory: Path, **kwargs: Any) -> settings.Settings:
    cfg = settings.resolve(
        lake=directory / "lake", warehouse=directory / "warehouse", config=directory / "exchange.toml"
    )
    run_build(cfg, echo=lambda _: None, **kwargs)
    return cfg


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    directory = tmp_path_factory.mktemp("fixture")
    truth = write_fixture(directory)
    build(directory)
    hygiene_untrusted(directory, truth)
    return directory, truth


def serving(directory: Path) -> Path:
    return directory / "warehouse" / "serving.duckdb"


# --- member traffic -----------------------------------------------------------------------


def _member_series(truth: Truth) -> dict[str, tuple[list[int | None], list[int | None]]]:
    """Per member, the per-interval sums over its ports; None where a port had no trusted rate."""
    out: dict[str, tuple[list[int | None], list[int | None]]] = {}
    for member in ("AS64500", "AS64501", "AS64502"):
        ports = [p for p, _, _, m, _ in MEMBER_PORTS if m == member]
        ins: list[int | None] = []
        outs: list[int | None] = []
        for k in range(N):
            if any(k in truth.untrusted[p] for p in ports):
                ins.append(None)
                outs.append(None)
            else:
                ins.append(sum(truth.port_in[p][k] for p in ports))
                outs.append(sum(truth.port_out[p][k] for p in ports))
        out[member] = (ins, outs)
    return out


def test_member_monthly_95th_is_nearest_rank_of_the_port_sums(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    rows = query(
        serving(directory),
        "select member_id, month, in_p95_bps, out_p95_bps, billed_p95_bps, intervals_used, billed_p95_mbps "
        "from fct_member_traffic_monthly order by member_id",
    )
    assert [r[0] for r in rows] == ["AS64500", "AS64501", "AS64502"]
    for member, month, in_p95, out_p95, billed, used, billed_mbps in rows:
        assert month == dt.date(2026, 3, 1)  # both days are in March in Warsaw
        ins, outs = _member_series(truth)[member]
        in_ok = [v for v in ins if v is not None]
        out_ok = [v for v in outs if v is not None]
        assert used == len(in_ok) > N - 5
        assert in_p95 == pytest.approx(nearest_rank(in_ok) * 8 / 300, rel=1e-12)
        assert out_p95 == pytest.approx(nearest_rank(out_ok) * 8 / 300, rel=1e-12)
        assert billed == max(in_p95, out_p95)
        assert billed_mbps == mbps(max(nearest_rank(in_ok), nearest_rank(out_ok)))


def test_member_daily_uses_local_days_across_dst(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    rows = query(
        serving(directory),
        "select traffic_date, intervals_used, in_bytes, in_p95_bps, in_max_bps from fct_member_traffic_daily "
        "where member_id = 'AS64501' order by traffic_date",
    )
    ins, _ = _member_series(truth)["AS64501"]
    by_day: dict[dt.date, list[int]] = defaultdict(list)
    per_day_intervals: dict[dt.date, int] = defaultdict(int)
    for k, value in enumerate(ins):
        day = at(k).astimezone(WARSAW).date()
        per_day_intervals[day] += 1
        if value is not None:
            by_day[day].append(value)
    assert [r[0] for r in rows] == sorted(by_day)
    assert per_day_intervals == {
        dt.date(2026, 3, 28): 276,  # from 01:00 local (00:00 UTC) to midnight
        dt.date(2026, 3, 29): 276,  # the 23-hour day: clocks jump from 02:00 to 03:00
        dt.date(2026, 3, 30): 24,  # 00:00 to 02:00 local (22:00 to 24:00 UTC)
    }
    for day, used, in_bytes, p95, peak in rows:
        assert used == len(by_day[day])
        assert in_bytes == sum(by_day[day])
        assert p95 == pytest.approx(nearest_rank(by_day[day]) * 8 / 300, rel=1e-12)
        assert peak == pytest.approx(max(by_day[day]) * 8 / 300, rel=1e-12)


def test_ip_version_split_follows_sflow_shares(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    k = 17
    port = "waw-sw1:et-0/0/7"
    v4 = sum(
        r["estimated_bytes"]
        for r in truth.matrix
        if r["src_port_id"] == port and r["interval_start"] == at(k) and r["ip_version"] == 4
    )
    total = sum(
        r["estimated_bytes"]
        for r in truth.matrix
        if r["src_port_id"] == port and r["interval_start"] == at(k)
    )
    (row,) = query(
        serving(directory),
        f"select in_ipv4_bytes, in_ipv6_bytes, in_bytes from fct_member_traffic_5min "
        f"where member_id = 'AS64501' and interval_start = '{at(k).isoformat()}'",
    )
    assert row[2] == truth.port_in[port][k]
    assert row[0] == pytest.approx(truth.port_in[port][k] * v4 / total, abs=0.5)  # whole bytes
    assert row[0] + row[1] == pytest.approx(row[2], abs=1)


# --- matrix ---------------------------------------------------------------------------------


def test_pair_matrix_is_scaled_to_counters_per_sending_member(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    member_ports = defaultdict(list)
    for port, _, _, member, _ in MEMBER_PORTS:
        member_ports[member].append(port)
    sflow_member_total: dict[tuple[str, int], int] = defaultdict(int)
    for r in truth.matrix:
        k = int((r["interval_start"] - T0) / STEP)
        sflow_member_total[(r["src_member_id"], k)] += r["estimated_bytes"]
    expected: dict[tuple[int, str, str], float] = defaultdict(float)
    raw: dict[tuple[int, str, str], int] = defaultdict(int)
    for r in truth.matrix:
        k = int((r["interval_start"] - T0) / STEP)
        ports = member_ports[r["src_member_id"]]
        key = (k, r["src_member_id"], r["dst_member_id"] or "unknown")
        raw[key] += r["estimated_bytes"]
        if any(k in truth.untrusted[p] for p in ports):
            expected[key] = math.nan
        else:
            counters = sum(truth.port_in[p][k] for p in ports)
            expected[key] += r["estimated_bytes"] * counters / sflow_member_total[(r["src_member_id"], k)]
    rows = query(
        serving(directory),
        "select interval_start, src_member_id, dst_member_id, bytes, sflow_estimated_bytes, is_scaled "
        "from fct_member_pair_traffic_5min",
    )
    assert len(rows) == len(expected)
    for start, src, dst, nbytes, sflow, is_scaled in rows:
        key = (int((start - T0) / STEP), src, dst)
        assert sflow == raw[key]
        if math.isnan(expected[key]):
            assert nbytes is None and not is_scaled
        else:
            assert nbytes == pytest.approx(expected[key], rel=1e-9, abs=0.5)  # rounded to whole bytes
            assert is_scaled
    # every source member's row sum equals its ports' counters (the unknown destination included)
    totals = query(
        serving(directory),
        "select src_member_id, sum(bytes) from fct_member_pair_traffic_5min "
        "where src_member_id = 'AS64500' group by all",
    )
    sender = ("ktw-sw1:et-0/0/1", "waw-sw1:et-0/0/2")
    complete = [k for k in range(N) if not any(k in truth.untrusted[p] for p in sender)]
    assert totals[0][1] == pytest.approx(sum(truth.port_in[p][k] for p in sender for k in complete), rel=1e-9)


# --- transit ---------------------------------------------------------------------------------


def test_transit_bill_by_hand_in_decimal(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    ports = ("ktw-br1:xe-0/0/0", "ktw-br1:xe-0/0/1")
    complete = [k for k in range(N) if not any(k in truth.untrusted[p] for p in ports)]  # gap policy exclude
    ins = [truth.port_in[ports[0]][k] + truth.port_in[ports[1]][k] for k in complete]
    outs = [truth.port_out[ports[0]][k] + truth.port_out[ports[1]][k] for k in complete]
    billed = mbps(max(nearest_rank(ins), nearest_rank(outs)))  # percentile of the per-interval SUM
    commit, price, burst = Decimal("300"), Decimal("0.80"), Decimal("1.10")
    commit_cost = q4(commit * price)
    overage = max(billed - commit, Decimal(0))
    overage_cost = q4(overage * burst)
    total = commit_cost + overage_cost
    effective = q4(total / billed)
    (row,) = query(
        serving(directory),
        "select billing_month, intervals_used, intervals_in_month, billed_mbps, commit_cost, overage_mbps, "
        "overage_cost, total_cost, effective_price_per_mbps from fct_transit_bill_monthly",
    )
    assert row == (
        dt.date(2026, 3, 1),
        len(complete),
        8928 - 12,
        billed,
        commit_cost,
        overage,
        overage_cost,
        total,
        effective,
    )
    assert overage > 0  # the fixture is sized to exceed the commit


def _transit_expected(truth: Truth) -> dict[tuple[str, int], dict[str, float]]:
    flow_total: dict[tuple[str, str, int], int] = defaultdict(int)
    for f in truth.transit_flows:
        flow_total[(f["port"], f["dir"], f["k"])] += f["est"]
    per_member: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: {"in": 0.0, "out": 0.0})
    for f in truth.transit_flows:
        if f["member"] is None:
            continue
        if f["k"] in truth.untrusted[f["port"]]:
            per_member[(f["member"], f["k"])][f["dir"]] += math.nan
            continue
        counter = (truth.port_in if f["dir"] == "in" else truth.port_out)[f["port"]][f["k"]]
        per_member[(f["member"], f["k"])][f["dir"]] += (
            f["est"] * counter / flow_total[(f["port"], f["dir"], f["k"])]
        )
    return per_member


def test_member_transit_usage_scaled_to_transit_counters(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    expected = _transit_expected(truth)
    rows = query(
        serving(directory),
        "select member_id, interval_start, in_bytes, out_bytes, has_prefix_attribution "
        "from fct_member_transit_usage_5min",
    )
    assert len(rows) == len(expected)
    for member, start, in_b, out_b, by_prefix in rows:
        e = expected[(member, int((start - T0) / STEP))]
        if math.isnan(e["in"]) or math.isnan(e["out"]):
            continue  # a transit port without a trusted counter there: not scaled, and not in the month
        assert in_b == pytest.approx(e["in"], rel=1e-9, abs=0.5)  # rounded to whole bytes
        assert out_b == pytest.approx(e["out"], rel=1e-9, abs=0.5)
        assert by_prefix == (member == "AS64501")  # no ASN on its flows: matched by 2001:db8:200::/48
    monthly = dict(
        (r[0], r[1:])
        for r in query(
            serving(directory),
            "select member_id, intervals_used, in_p95_bps, out_p95_bps from fct_member_transit_usage",
        )
    )
    # the month's intervals: those in which some transit port had a trusted counter and flows
    scaled = [k for k in range(N) if not all(k in truth.untrusted[p] for p, _, _ in TRANSIT_PORTS)]
    for member in ("AS64500", "AS64501"):
        ins = [expected.get((member, k), {"in": 0.0})["in"] for k in scaled]  # absent = 0
        outs = [expected.get((member, k), {"out": 0.0})["out"] for k in scaled]
        ins = [0.0 if math.isnan(v) else v for v in ins]
        outs = [0.0 if math.isnan(v) else v for v in outs]
        used, in_p95, out_p95 = monthly[member]
        assert used == len(scaled)
        assert in_p95 == pytest.approx(nearest_rank(ins) * 8 / 300, rel=1e-9, abs=0.02)  # type: ignore[arg-type]
        assert out_p95 == pytest.approx(nearest_rank(outs) * 8 / 300, rel=1e-9, abs=0.02)  # type: ignore[arg-type]


def test_peering_vs_transit_economics(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    rows = {
        r[0]: r[1:]
        for r in query(
            serving(directory),
            "select member_id, peered_mbps, transit_price_per_mbps, peering_cost, peering_cost_per_mbps, "
            "break_even_mbps, savings, peered_value_at_transit_price from fct_peering_vs_transit",
        )
    }
    (price,) = query(serving(directory), "select effective_price_per_mbps from fct_transit_bill_monthly")[0]
    # AS64500: two 10G ports; et-0/0/2 connected on 2026-03-10 serves 22 of March's 31 days
    fees = {
        "AS64500": Decimal("900.00") + q4(Decimal("900.00") * 22 / 31),
        "AS64501": Decimal("300.00"),
        "AS64502": Decimal("900.00"),
    }
    for member, series in _member_series(truth).items():
        ins = [v for v in series[0] if v is not None]
        outs = [v for v in series[1] if v is not None]
        peered = mbps(max(nearest_rank(ins), nearest_rank(outs)))
        got = rows[member]
        assert got[0] == peered
        assert got[1] == price  # one contract: the pooled price is its effective price
        assert got[2] == fees[member]
        assert got[3] == q4(fees[member] / peered)
        break_even = q4(fees[member] / price)
        assert got[4] == break_even
        assert got[5] == q4((peered - break_even) * price)
        assert got[6] == q4(peered * price)


def test_peering_candidates_rank_remote_asns(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    rows = query(
        serving(directory),
        "select remote_asn, traffic_rank, flow_estimated_bytes from fct_peering_candidates "
        "order by traffic_rank",
    )
    raw: dict[int, int] = defaultdict(int)
    for f in truth.transit_flows:
        raw[f["remote"]] += f["est"]
    assert {r[0] for r in rows} == set(raw)  # the unattributed source's ASN is remote too, members are not
    assert [r[2] for r in rows] == [raw[r[0]] for r in rows]
    assert [r[1] for r in rows] == [1, 2, 3]


# --- operations -----------------------------------------------------------------------------


def test_operational_marts(built: tuple[Path, Truth]) -> None:
    directory, truth = built
    db = serving(directory)
    assert query(db, "select datagram_loss_ratio, sample_loss_ratio from fct_flow_loss_5min") == [
        (10 / 100, 77 / 777)
    ]
    macs = query(
        db, "select traffic_date, sample_count, intervals_seen from fct_unknown_macs_daily order by 1"
    )
    assert macs == [(dt.date(2026, 3, 28), 6, 2), (dt.date(2026, 3, 29), 3, 1)]
    quality = query(
        db,
        "select intervals_present, intervals_trusted, intervals_failed_read, intervals_in_month "
        "from fct_port_quality_monthly where port_id = 'waw-sw1:et-0/0/9'",
    )
    untrusted = truth.untrusted["waw-sw1:et-0/0/9"]
    assert quality == [(N + 1, N + 1 - len(untrusted), 2, 8928 - 12)]
    recon = query(
        db,
        "select count(*), min(in_ratio), max(in_ratio) from fct_reconciliation_5min "
        "where in_ratio is not null",
    )
    assert recon[0][0] == sum(1 for p, *_ in MEMBER_PORTS for k in range(N) if k not in truth.untrusted[p])
    assert recon[0][1] > 0.91 and recon[0][2] < 1.09  # the fixture's sFlow is within +-8% (rounded down)


# --- build behaviour --------------------------------------------------------------------------

MART_KEYS = {
    "fct_member_traffic_5min": "member_id, interval_start",
    "fct_member_pair_traffic_5min": "interval_start, src_member_id, dst_member_id",
    "fct_member_traffic_monthly": "member_id, month",
    "fct_transit_bill_monthly": "contract_id, billing_month",
    "fct_member_transit_usage_5min": "member_id, interval_start",
    "fct_peering_vs_transit": "member_id, month",
    "fct_member_pair_traffic_daily": "traffic_date, src_member_id, dst_member_id",
    "fct_member_traffic_daily": "member_id, traffic_date",
    "fct_exchange_traffic_daily": "traffic_date",
    "fct_exchange_traffic_monthly": "month",
}


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {t: query(db, f"select * from {t} order by {keys}") for t, keys in MART_KEYS.items()}


def test_rebuild_is_idempotent_and_late_data_replaces_its_day(tmp_path: Path) -> None:
    truth = write_fixture(tmp_path)
    build(tmp_path)
    first = snapshot(serving(tmp_path))
    build(tmp_path)  # incremental, nothing new
    assert snapshot(serving(tmp_path)) == first
    # late sFlow for the first day arrives in a new part file: re-run from that day
    late = [
        dict(r)
        for r in truth.matrix
        if r["interval_start"] == at(5) and r["src_port_id"] == "ktw-sw1:et-0/0/1"
    ]
    for r in late:
        r["source_file"] = "late"
    lake.write_part(
        tmp_path / "lake",
        "member_matrix",
        pa.Table.from_pylist(late, schema=lake.MEMBER_MATRIX),
        T0.date(),
        "late",
    )
    build(tmp_path, since=T0.date().isoformat())
    incremental = snapshot(serving(tmp_path))
    build(tmp_path, full_refresh=True)
    assert snapshot(serving(tmp_path)) == incremental  # same as rebuilding everything
    doubled = query(
        serving(tmp_path),
        "select sum(sflow_estimated_bytes) from fct_member_pair_traffic_5min "
        f"where interval_start = '{at(5).isoformat()}' and src_member_id = 'AS64500'",
    )[0][0]
    before = sum(
        r["estimated_bytes"]
        for r in truth.matrix
        if r["interval_start"] == at(5) and r["src_member_id"] == "AS64500"
    )
    assert doubled == before + sum(r["estimated_bytes"] for r in late)
    assert len(incremental["fct_member_traffic_5min"]) == len(
        first["fct_member_traffic_5min"]
    )  # no duplicates


def test_older_days_arriving_after_newer_ones_are_built_without_since(tmp_path: Path) -> None:
    """The newest day lands first (a scheduled run before a backfill), the two older days after it:
    the second build finds them by the partitions changed since the first (no --since given) and
    ends equal to a full build of the whole lake. The models' own rule alone would start at the
    newest day held minus one day, leaving the oldest day out."""
    whole = tmp_path / "whole"
    whole.mkdir()
    write_fixture(whole)
    late = tmp_path / "late"
    late.mkdir()
    shutil.copy(whole / "exchange.toml", late / "exchange.toml")
    partitions = sorted((whole / "lake").glob("*/date=*"))
    days = sorted({p.name for p in partitions})
    assert len(days) == 3, days  # the fixture spans three UTC days
    newest = [p for p in partitions if p.name == days[-1]]
    for p in newest:
        shutil.copytree(p, late / "lake" / p.parent.name / p.name)
    build(late)
    state = lake_changes.read_state(late / "warehouse")
    assert state is not None and state.newest_day == dt.date.fromisoformat(days[-1].removeprefix("date="))
    for p in partitions:
        if p not in newest:
            target = late / "lake" / p.parent.name / p.name
            shutil.copytree(p, target)
            os.utime(target)  # copytree keeps the source's times; these partitions arrive now
    first_day = dt.date.fromisoformat(days[0].removeprefix("date="))
    assert lake_changes.recompute_since(late / "lake", state, 1) == first_day - dt.timedelta(days=1)
    build(late)
    build(whole)
    assert snapshot(serving(late)) == snapshot(serving(whole))
    # and nothing changed since: the next build has nothing older to recompute
    assert lake_changes.recompute_since(late / "lake", lake_changes.read_state(late / "warehouse"), 1) is None


def test_lake_change_detection_by_partition_directory_times(tmp_path: Path) -> None:
    """Hand-set directory times: a part renamed into an hour partition changes its directory's
    time, not the day's; derived tables and unparseable names are not looked at."""
    lake = tmp_path / "lake"
    dirs = {
        "member_matrix/date=2026-03-01": 100,
        "flows/date=2026-03-02": 100,
        "flows/date=2026-03-02/hour=07": 500,  # changed after 300
        "port_rates_5min/date=2026-02-01": 900,  # derived: ignored
        "port_counters/date=bogus": 900,  # not a partition: ignored
        "port_counters/date=2026-03-05": 400,  # changed after 300
    }
    for name in dirs:
        (lake / name).mkdir(parents=True)
    for name, seconds in sorted(dirs.items(), key=lambda kv: -len(kv[0])):  # children first
        os.utime(lake / name, ns=(seconds * 10**9, seconds * 10**9))
    assert lake_changes.newest_day(lake) == dt.date(2026, 3, 5)
    assert lake_changes.oldest_changed_day(lake, 300 * 10**9) == dt.date(2026, 3, 2)
    assert lake_changes.oldest_changed_day(lake, 600 * 10**9) is None
    state = lake_changes.BuildState(300 * 10**9, dt.date(2026, 3, 5))
    assert lake_changes.recompute_since(lake, state, 1) == dt.date(2026, 3, 1)
    # a change within the days the models recompute anyway (newest day minus lookback) adds nothing
    assert (
        lake_changes.recompute_since(lake, lake_changes.BuildState(300 * 10**9, dt.date(2026, 3, 3)), 1)
        is None
    )
    assert lake_changes.recompute_since(lake, None, 1) is None


def test_lookback_matches_the_dbt_project() -> None:
    project = (Path(__file__).resolve().parents[1] / "dbt" / "dbt_project.yml").read_text()
    assert f"lookback_days: {LOOKBACK_DAYS}\n" in project


def test_empty_lake_builds_empty_marts(tmp_path: Path) -> None:
    (tmp_path / "exchange.toml").write_text(EXCHANGE_TOML, encoding="utf-8")
    build(tmp_path)
    db = serving(tmp_path)
    assert query(db, "select count(*) from fct_member_traffic_monthly") == [(0,)]
    assert query(db, "select count(*) from fct_transit_bill_monthly") == [(0,)]
    assert query(db, "select count(*) from dim_members") == [(3,)]


def test_failing_dbt_test_fails_the_build_and_keeps_serving(tmp_path: Path) -> None:
    """A port row with a port_kind outside the accepted values: the build stops, serving stays."""
    (tmp_path / "exchange.toml").write_text(EXCHANGE_TOML, encoding="utf-8")
    build(tmp_path)
    before = serving(tmp_path).read_bytes()
    # a member_matrix row naming a member that is not configured breaks a relationships test
    bad = pa.Table.from_pylist(
        [
            {
                "interval_start": T0,
                "site": "KTW",
                "exporter_address": "10.255.0.1",
                "vlan": 100,
                "ip_version": 4,
                "src_member_id": "AS99999",
                "dst_member_id": "AS64500",
                "src_port_id": None,
                "dst_port_id": None,
                "estimated_bytes": 1000,
                "estimated_packets": 1,
                "sample_count": 1,
                "source_file": "bad",
            }
        ],
        schema=lake.MEMBER_MATRIX,
    )
    lake.write_part(tmp_path / "lake", "member_matrix", bad, T0.date(), "bad")
    with pytest.raises(BuildError) as info:
        build(tmp_path)
    message = str(info.value)
    assert "relationships" in message and "fct_member_pair_traffic_5min" in message
    assert "hint:" in message
    assert serving(tmp_path).read_bytes() == before


READER = """
import sys, time, duckdb
path, stop = sys.argv[1], sys.argv[2]
import os
reads = 0
while not os.path.exists(stop):
    con = duckdb.connect(path, read_only=True)
    con.execute("select count(*), sum(in_bytes) from fct_member_traffic_5min").fetchall()
    con.close()
    reads += 1
    time.sleep(0.01)
print(reads)
"""


def test_dashboard_reader_never_blocks_during_builds(tmp_path: Path) -> None:
    """A separate process reads serving.duckdb read-only in a loop while two builds publish."""
    write_fixture(tmp_path)
    build(tmp_path)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(serving(tmp_path)), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        build(tmp_path)
        build(tmp_path, full_refresh=True)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out.strip()) > 10
    assert not list((tmp_path / "warehouse").glob("serving.duckdb.tmp-*"))


def test_settings_flag_over_environment_over_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERPOOL_LAKE", str(tmp_path / "env-lake"))
    monkeypatch.delenv("PEERPOOL_WAREHOUSE", raising=False)
    cfg = settings.resolve(lake=None, warehouse=None, config=tmp_path / "x.toml")
    assert cfg.lake == tmp_path / "env-lake"
    assert cfg.warehouse == Path("var").resolve()
    assert settings.resolve(lake=tmp_path / "flag").lake == tmp_path / "flag"


def test_since_must_be_a_date(tmp_path: Path) -> None:
    (tmp_path / "exchange.toml").write_text(EXCHANGE_TOML, encoding="utf-8")
    with pytest.raises(BuildError, match="YYYY-MM-DD"):
        build(tmp_path, since="yesterday'; drop table x")


def test_cli_build_runs(tmp_path: Path) -> None:
    (tmp_path / "exchange.toml").write_text(EXCHANGE_TOML, encoding="utf-8")
    env = dict(os.environ, PEERPOOL_WAREHOUSE=str(tmp_path / "wh"))
    result = subprocess.run(
        [
            shutil.which("peerpool") or str(Path(sys.executable).parent / "peerpool"),
            "build",
            "--lake",
            str(tmp_path / "lake"),
            "--config",
            str(tmp_path / "exchange.toml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "[4/4] publish" in result.stdout
    assert (tmp_path / "wh" / "serving.duckdb").is_file()
    _ = time
