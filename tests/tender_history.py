"""A few months of pooled transit history for ``peerpool tender run`` in the dashboard and model tests.

The tender report needs three months or more before it plans scenarios; simulating that many
months through the whole pipeline would take many minutes. This writes only the three transit
marts the tender planner reads (``peerpool/tender/source.py``: its ``REQUIRED`` columns, typed as
the dbt contract types them) into a DuckDB file, with synthetic daily-cycle traffic from
``peerpool.economics.synthetic``. The report is then real ``peerpool tender run`` output.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from peerpool.economics.synthetic import member_traffic

MBPS_TO_BYTES = 300 * 1e6 / 8

TIERS = """
[tender]
alone_price = "Arelion"
min_month_coverage = "0.01"
shapley_exact_max = 8
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
provider = "Hurricane Electric"
min_term_months = 12
sites = ["KTW"]
port_fee_monthly = "400.00"
commit_step_mbps = "10"
  [[offers.tiers]]
  min_commit_mbps = "0"
  price_per_mbps = "0.90"
  burst_price_per_mbps = "1.40"
"""


def write_transit_history(
    path: Path, members: int = 5, months: int = 4, days: int = 2, seed: int = 1
) -> None:
    """Months 2025-01 .. of ``days`` days each (from the 2nd, Warsaw): members' 5-minute transit and bills."""
    ids = [f"AS{64500 + i}" for i in range(members)]
    n = days * 288
    k = math.ceil(0.95 * n)
    series = member_traffic(members, n * months, seed=seed)
    con = duckdb.connect(str(path))
    con.execute("set timezone = 'UTC'")
    con.execute(
        "create table fct_member_transit_usage_5min (member_id varchar, interval_start timestamptz, "
        "in_bytes bigint, out_bytes bigint)"
    )
    con.execute(
        "create table fct_member_transit_usage (member_id varchar, month date, intervals_used bigint, "
        "billed_p95_mbps decimal(18,4))"
    )
    con.execute(
        "create table fct_transit_bill_monthly (contract_id varchar, billing_month date, provider varchar, "
        "direction_rule varchar, billing_timezone varchar, intervals_in_month bigint, intervals_used bigint, "
        "billed_mbps decimal(18,4), commit_mbps decimal(18,4), commit_cost decimal(18,4), "
        "overage_cost decimal(18,4), total_cost decimal(18,4))"
    )
    for m in range(months):
        month = dt.date(2025, 1 + m, 1)
        in_bytes = np.round(series[:, m * n : (m + 1) * n] * 1.03**m * MBPS_TO_BYTES).astype(np.int64)
        out_bytes = in_bytes // 4
        start = int(dt.datetime(2025, 1 + m, 2, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp())
        member_idx, t_idx = np.nonzero(in_bytes > 0)
        rows = pa.table(
            {
                "member_id": pa.array([ids[i] for i in member_idx]),
                "interval_start": pa.array((start + 300 * t_idx) * 1_000_000, pa.timestamp("us", tz="UTC")),
                "in_bytes": pa.array(in_bytes[member_idx, t_idx]),
                "out_bytes": pa.array(out_bytes[member_idx, t_idx]),
            }
        )
        con.register("new_rows", rows)
        con.execute("insert into fct_member_transit_usage_5min select * from new_rows")
        con.unregister("new_rows")
        for i, member in enumerate(ids):
            p95 = int(np.sort(in_bytes[i])[k - 1])
            mbps = (Decimal(p95) / Decimal(37_500_000)).quantize(Decimal("0.0001"))
            con.execute("insert into fct_member_transit_usage values (?, ?, ?, ?)", [member, month, n, mbps])
        billed = (Decimal(int(np.sort(in_bytes.sum(axis=0))[k - 1])) / Decimal(37_500_000)).quantize(
            Decimal("0.0001")
        )
        commit = (billed * Decimal("0.8")).quantize(Decimal("1"))
        commit_cost = commit * Decimal("0.90")
        overage_cost = ((billed - commit) * Decimal("1.30")).quantize(Decimal("0.0001"))
        con.execute(
            "insert into fct_transit_bill_monthly "
            "values ('c1', ?, 'Arelion', 'max', 'Europe/Warsaw', 8640, ?, ?, ?, ?, ?, ?)",
            [month, n, billed, commit, commit_cost, overage_cost, commit_cost + overage_cost],
        )
    con.close()
