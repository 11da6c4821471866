"""A tiny serving DuckDB file with hand-made mart rows, and its exchange configuration.

Shared by the billing tests (this module has no tests of its own). Tables are created with the
columns and types of the dbt mart contract (``dbt/models/marts/_marts__models.yml``), so a
renamed or retyped mart column breaks these tests as it would break the bill; columns a row
does not give are NULL.

The month is February 2026 (28 days) in Europe/Warsaw: it starts 2026-01-31T23:00Z.

Members and what their bill must be (every figure worked out by hand in ``tests/test_billing.py``):

* AS64500 "Alpha": one 10G port all month; transit 95th 30 Mbps.
* AS64501 "Beta": joins on 2026-02-10 with a 1G port; transit 95th 20 Mbps (outbound);
  a 250.00 cross-connect installation fee.
* AS64502 "Gamma": two 10G ports in bundle ae1; unreachable outages on et-0/0/2 (one across
  the start of the month, two overlapping), an oper-down on et-0/0/3; transit 95th
  10.0001 Mbps from a sample of 375,001,875 bytes = 10.00005 Mbps (half up; half even gives 10.0000).
* AS64503 "Delta": one 10G port disconnected on 2026-02-15; a one-off fee of 11.50.

One transit contract (two border-router ports, commit 100 Mbps at 0.80, burst 1.2345, 95th,
max rule, gap policy exclude) with 21 intervals, one of them incomplete.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
MARTS_YML = REPO / "dbt" / "models" / "marts" / "_marts__models.yml"

T0 = dt.datetime(2026, 1, 31, 23, 0, tzinfo=dt.UTC)  # 2026-02-01 00:00 Europe/Warsaw
STEP = dt.timedelta(minutes=5)
SCALING_DDL = (
    "create schema if not exists intermediate; create table intermediate.int_transit_port_scaling_5min ("
    "interval_start timestamptz, interval_date date, port_id varchar, direction varchar, "
    "flow_estimated_bytes hugeint, counter_bytes hugeint, scale_factor double)"
)

CONFIG = """
[exchange]
name = "Billing Fixture IX"

[billing]
currency = "PLN"
vat_rate = "0.23"
timezone = "Europe/Warsaw"
transit_allocation = "proportional_p95"
member_visibility = "totals"

[[sites]]
id = "KTW"
name = "Katowice"

[snmp.default]
version = "2c"
community_env = "PEERPOOL_SNMP_COMMUNITY"

[[switches]]
id = "ktw-sw1"
site = "KTW"
management_address = "127.0.0.1"
snmp = "default"

[[members]]
id = "AS64500"
asn = 64500
name = "Alpha"
billing_entity = "Alpha Sp. z o.o."
joined = 2020-01-01

[[members]]
id = "AS64501"
asn = 64501
name = "Beta"
billing_entity = "Beta S.A."
joined = 2026-02-10

[[members]]
id = "AS64502"
asn = 64502
name = "Gamma"
billing_entity = "Gamma Sp. j."
joined = 2019-05-01

[[members]]
id = "AS64503"
asn = 64503
name = "Delta"
billing_entity = "Delta Sp. z o.o."
joined = 2018-01-01

[[ports]]
switch = "ktw-sw1"
interface = "et-0/0/1"
ifindex = 1
speed_mbps = 10000
vlan = 100
member = "AS64500"
macs = ["02:00:00:00:00:01"]
connected = 2024-01-01

[[ports]]
switch = "ktw-sw1"
interface = "ge-0/0/1"
ifindex = 2
speed_mbps = 1000
vlan = 100
member = "AS64501"
macs = ["02:00:00:00:00:02"]
connected = 2026-02-10

[[ports]]
switch = "ktw-sw1"
interface = "et-0/0/2"
ifindex = 3
speed_mbps = 10000
vlan = 100
member = "AS64502"
macs = ["02:00:00:00:00:03"]
connected = 2023-01-01
bundle = "ae1"

[[ports]]
switch = "ktw-sw1"
interface = "et-0/0/3"
ifindex = 4
speed_mbps = 10000
vlan = 100
member = "AS64502"
macs = ["02:00:00:00:00:03"]
connected = 2023-01-01
bundle = "ae1"

[[ports]]
switch = "ktw-sw1"
interface = "et-0/0/4"
ifindex = 5
speed_mbps = 10000
vlan = 100
member = "AS64503"
macs = ["02:00:00:00:00:04"]
connected = 2022-01-01
disconnected = 2026-02-15

[[border_routers]]
id = "ktw-br1"
site = "KTW"
management_address = "127.0.0.1"
flow_exporter_address = "10.255.1.1"
snmp = "default"

[[border_routers.ports]]
interface = "xe-0/0/0"
ifindex = 501
speed_mbps = 10000

[[border_routers.ports]]
interface = "xe-0/0/1"
ifindex = 502
speed_mbps = 10000

[[transit_contracts]]
id = "upstream-1"
provider = "Upstream One"
ports = ["ktw-br1:xe-0/0/0", "ktw-br1:xe-0/0/1"]
commit_mbps = "100"
price_per_mbps = "0.80"
burst_price_per_mbps = "1.2345"
currency = "PLN"
percentile = 95
direction_rule = "max"
gap_policy = "exclude"
term_start = 2026-01-01

[[port_fees]]
speed_mbps = 1000
monthly_fee = "300.00"

[[port_fees]]
speed_mbps = 10000
monthly_fee = "900.00"

[[one_off_fees]]
member = "AS64501"
month = "2026-02"
description = "cross-connect installation"
amount = "250.00"

[[one_off_fees]]
member = "AS64503"
month = "2026-02"
description = "port removal"
amount = "11.50"

[[one_off_fees]]
member = "AS64500"
month = "2026-03"
description = "not this month"
amount = "999.00"
"""

MEMBER_PORTS = [
    # port_id, member, speed, bundle, connected, disconnected
    ("ktw-sw1:et-0/0/1", "AS64500", 10000, None, dt.date(2024, 1, 1), None),
    ("ktw-sw1:ge-0/0/1", "AS64501", 1000, None, dt.date(2026, 2, 10), None),
    ("ktw-sw1:et-0/0/2", "AS64502", 10000, "ae1", dt.date(2023, 1, 1), None),
    ("ktw-sw1:et-0/0/3", "AS64502", 10000, "ae1", dt.date(2023, 1, 1), None),
    ("ktw-sw1:et-0/0/4", "AS64503", 10000, None, dt.date(2022, 1, 1), dt.date(2026, 2, 15)),
]
CONTRACT_PORTS = ["ktw-br1:xe-0/0/0", "ktw-br1:xe-0/0/1"]
MBPS = 37_500_000  # bytes in 5 minutes at 1 Mbps


def at(i: int) -> dt.datetime:
    return T0 + i * STEP


def mart_types() -> dict[str, dict[str, str]]:
    models = yaml.safe_load(MARTS_YML.read_text())["models"]
    return {m["name"]: {c["name"]: c["data_type"] for c in m["columns"]} for m in models}


def create_marts(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    types = mart_types()
    for name in names:
        cols = ", ".join(f'"{col}" {kind}' for col, kind in types[name].items())
        con.execute(f"create table {name} ({cols})")
    con.execute(SCALING_DDL)


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        cols = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"insert into {table} ({cols}) values ({marks})", list(row.values()))


BILLING_MARTS = [
    "dim_members",
    "dim_ports",
    "dim_transit_contracts",
    "fct_transit_bill_monthly",
    "fct_transit_usage_5min",
    "fct_port_traffic_5min",
    "fct_member_transit_usage",
    "fct_member_transit_usage_5min",
    "fct_port_outages",
]

# --- the contract's 21 intervals: billable ones carry (i + 1) x 10 Mbps + 12,345 bytes inbound ----------
CONTRACT_IN = [(i + 1) * 10 * MBPS + 12_345 for i in range(20)] + [8_000_000_000]
CONTRACT_OUT = [1_000_000_000] * 21
CONTRACT_BILLABLE = [True] * 20 + [False]  # interval 20: one of the two ports had no trusted rate

# --- members' transit samples over the 20 intervals the transit counters scaled ------------------------
ALPHA_IN = [MBPS] * 18 + [30 * MBPS, 100 * MBPS]
BETA_OUT = {i: v for i, v in zip(range(10, 20), [MBPS // 2] * 8 + [20 * MBPS, 50 * MBPS], strict=True)}
GAMMA_IN = {3: 375_001_875, 7: 12 * MBPS}
GAMMA_OUTSIDE = (
    dt.datetime(2026, 2, 10, 12, 0, tzinfo=dt.UTC),
    9_000_000_000_000,
)  # an interval nobody is counted in


def outage(
    port_id: str, cause: str, start: tuple[int, int, int, int], end: tuple[int, int, int, int]
) -> dict[str, Any]:
    """A ``fct_port_outages`` row between two UTC times of 2026 given as (month, day, hour, minute)."""
    start_at = dt.datetime(2026, *start, tzinfo=dt.UTC)
    end_at = dt.datetime(2026, *end, tzinfo=dt.UTC)
    return {
        "port_id": port_id,
        "cause": cause,
        "start_at": start_at,
        "end_at": end_at,
        "duration_s": int((end_at - start_at).total_seconds()),
    }


def build_serving(path: Path, *, alpha_mart_mbps: str = "30.0000", contract_currency: str = "PLN") -> Path:
    """Write the fixture's serving file; the keyword arguments let a test plant one wrong figure."""
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    create_marts(con, BILLING_MARTS)
    insert(
        con,
        "dim_members",
        [
            {"member_id": m, "asn": int(m[2:]), "member_name": n, "joined_date": j}
            for m, n, j in (
                ("AS64500", "Alpha", dt.date(2020, 1, 1)),
                ("AS64501", "Beta", dt.date(2026, 2, 10)),
                ("AS64502", "Gamma", dt.date(2019, 5, 1)),
                ("AS64503", "Delta", dt.date(2018, 1, 1)),
            )
        ],
    )
    insert(
        con,
        "dim_ports",
        [
            {
                "port_id": p,
                "port_kind": "member",
                "member_id": m,
                "speed_mbps": s,
                "bundle_name": b,
                "connected_date": c,
                "disconnected_date": d,
                "monthly_fee": 900 if s == 10000 else 300,
            }
            for p, m, s, b, c, d in MEMBER_PORTS
        ]
        + [{"port_id": p, "port_kind": "transit", "speed_mbps": 10000} for p in CONTRACT_PORTS],
    )
    insert(
        con,
        "dim_transit_contracts",
        [
            {
                "contract_id": "upstream-1",
                "provider": "Upstream One",
                "currency": "PLN",
                "port_ids": CONTRACT_PORTS,
            }
        ],
    )
    # the contract's bill, worked out by hand:
    #   20 billable intervals, k = ceil(0.95 x 20) = 19: inbound sample 19 = 19 x 37,500,000 + 12,345
    #   = 7,125,012,345 bytes = 190.0003292 Mbps -> 190.0003; outbound 1e9 bytes = 26.6667 Mbps;
    #   max -> 190.0003
    #   commit 100 x 0.80 = 80.0000; overage 90.0003 x 1.2345 = 111.10537035 -> 111.1054; total 191.1054
    insert(
        con,
        "fct_transit_bill_monthly",
        [
            {
                "contract_id": "upstream-1",
                "billing_month": dt.date(2026, 2, 1),
                "provider": "Upstream One",
                "currency": contract_currency,
                "percentile": 95,
                "direction_rule": "max",
                "gap_policy": "exclude",
                "billing_timezone": "Europe/Warsaw",
                "intervals_in_month": 8064,
                "intervals_used": 20,
                "intervals_incomplete": 1,
                "billed_mbps": "190.0003",
                "commit_mbps": "100.0000",
                "price_per_mbps": "0.8000",
                "burst_price_per_mbps": "1.2345",
                "commit_cost": "80.0000",
                "overage_mbps": "90.0003",
                "overage_cost": "111.1054",
                "total_cost": "191.1054",
            }
        ],
    )
    insert(
        con,
        "fct_transit_usage_5min",
        [
            {
                "contract_id": "upstream-1",
                "interval_start": at(i),
                "interval_date": at(i).date(),
                "billing_month": dt.date(2026, 2, 1),
                "in_bytes": CONTRACT_IN[i],
                "out_bytes": CONTRACT_OUT[i],
                "in_plus_out_bytes": CONTRACT_IN[i] + CONTRACT_OUT[i],
                "ports_expected": 2,
                "ports_with_rate": 2 if CONTRACT_BILLABLE[i] else 1,
                "is_complete": CONTRACT_BILLABLE[i],
                "is_billable": CONTRACT_BILLABLE[i],
            }
            for i in range(21)
        ],
    )
    flag = {
        "is_gap": False,
        "is_failed_read": False,
        "is_reset": False,
        "is_wrap": False,
        "is_over_speed": False,
    }
    insert(
        con,
        "fct_port_traffic_5min",
        [
            {"port_id": CONTRACT_PORTS[0], "interval_start": at(4), "is_trusted": True, **flag},
            {
                "port_id": CONTRACT_PORTS[0],
                "interval_start": at(5),
                "is_trusted": False,
                **flag,
                "is_reset": True,
            },
            {
                "port_id": CONTRACT_PORTS[1],
                "interval_start": at(20),
                "is_trusted": False,
                **flag,
                "is_failed_read": True,
            },
            {
                "port_id": CONTRACT_PORTS[1],
                "interval_start": at(6),
                "is_trusted": True,
                **flag,
                "is_wrap": True,
            },
        ],
    )
    insert(
        con,
        "fct_member_transit_usage",
        [
            {
                "member_id": "AS64500",
                "month": dt.date(2026, 2, 1),
                "intervals_used": 20,
                "billed_p95_mbps": alpha_mart_mbps,
            },
            {
                "member_id": "AS64501",
                "month": dt.date(2026, 2, 1),
                "intervals_used": 20,
                "billed_p95_mbps": "20.0000",
            },
            {
                "member_id": "AS64502",
                "month": dt.date(2026, 2, 1),
                "intervals_used": 20,
                "billed_p95_mbps": "10.0001",
            },
        ],
    )
    rows: list[dict[str, Any]] = []
    for i, value in enumerate(ALPHA_IN):
        rows.append({"member_id": "AS64500", "interval_start": at(i), "in_bytes": value, "out_bytes": 0})
    for i, value in BETA_OUT.items():
        rows.append({"member_id": "AS64501", "interval_start": at(i), "in_bytes": 1000, "out_bytes": value})
    for i, value in GAMMA_IN.items():
        rows.append({"member_id": "AS64502", "interval_start": at(i), "in_bytes": value, "out_bytes": 0})
    rows.append(
        {
            "member_id": "AS64502",
            "interval_start": GAMMA_OUTSIDE[0],
            "in_bytes": GAMMA_OUTSIDE[1],
            "out_bytes": 0,
        }
    )
    insert(con, "fct_member_transit_usage_5min", rows)
    insert(
        con,
        "intermediate.int_transit_port_scaling_5min",
        [
            {"interval_start": at(i), "port_id": CONTRACT_PORTS[0], "direction": "in", "scale_factor": 1.0}
            for i in range(20)
        ]
        + [
            {
                "interval_start": GAMMA_OUTSIDE[0],
                "port_id": CONTRACT_PORTS[0],
                "direction": "in",
                "scale_factor": None,
            }
        ],
    )
    insert(
        con,
        "fct_port_outages",
        [
            # across the start of the month: only 23:00-23:30 UTC on 31 January is February (local time)
            outage("ktw-sw1:et-0/0/2", "unreachable", (1, 31, 22, 0), (1, 31, 23, 30)),
            # two overlapping ones: one fault from 5 Feb 10:00 to 6 Feb 12:00 UTC (26 h)
            outage("ktw-sw1:et-0/0/2", "unreachable", (2, 5, 10, 0), (2, 6, 11, 0)),
            outage("ktw-sw1:et-0/0/2", "unreachable", (2, 6, 10, 0), (2, 6, 12, 0)),
            # oper-down for 3 minutes on the bundle's other port: ambiguous, not credited by default
            outage("ktw-sw1:et-0/0/3", "oper_down", (2, 7, 0, 0), (2, 7, 0, 3)),
            # a transit port's outage is nobody's credit
            outage(CONTRACT_PORTS[0], "unreachable", (2, 8, 0, 0), (2, 8, 1, 0)),
        ],
    )
    con.close()
    return path


def write_fixture(tmp: Path, **kwargs: Any) -> tuple[Path, Path]:
    """(serving file, exchange.toml) of the fixture in ``tmp``."""
    config = tmp / "exchange.toml"
    config.write_text(CONFIG)
    return build_serving(tmp / "serving.duckdb", **kwargs), config
