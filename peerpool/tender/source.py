"""Read the transit marts from the serving DuckDB file (read-only) for the tender planner.

Marts read (their columns are the dbt contract in ``dbt/models/marts/_marts__models.yml``):

* ``fct_member_transit_usage_5min``: member_id, interval_start (UTC), in_bytes, out_bytes:
  each member's transit traffic per 5-minute interval;
* ``fct_member_transit_usage``: member_id, month, intervals_used, billed_p95_mbps: each
  member's own monthly 95th (the member forecasts start from these);
* ``fct_transit_bill_monthly``: contract_id, billing_month, provider, direction_rule,
  billing_timezone, intervals_in_month, intervals_used, billed_mbps, commit_mbps,
  commit_cost, overage_cost, total_cost: the pooled bills being shared.

A month's interval grid is every interval in which any member used transit; a member without
a row in an interval used none (0), as in ``fct_member_transit_usage``. Months follow the
contracts' billing time zone. The file is opened with external access disabled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from peerpool.errors import InputError

FloatArray = npt.NDArray[np.float64]
BYTES_PER_5MIN_TO_MBPS = 8.0 / 300.0 / 1e6

REQUIRED = {
    "fct_member_transit_usage_5min": ("member_id", "interval_start", "in_bytes", "out_bytes"),
    "fct_member_transit_usage": ("member_id", "month", "intervals_used", "billed_p95_mbps"),
    "fct_transit_bill_monthly": (
        "contract_id",
        "billing_month",
        "provider",
        "direction_rule",
        "billing_timezone",
        "intervals_in_month",
        "intervals_used",
        "billed_mbps",
        "commit_mbps",
        "commit_cost",
        "overage_cost",
        "total_cost",
    ),
}


@dataclass(frozen=True)
class ContractMonth:
    contract_id: str
    provider: str
    direction_rule: str
    intervals_in_month: int
    intervals_used: int
    billed_mbps: Decimal | None
    commit_mbps: Decimal
    commit_cost: Decimal
    overage_cost: Decimal
    total_cost: Decimal


@dataclass(frozen=True)
class MonthTraffic:
    """One billing month: every member's transit rate per interval, in and out, in Mbps."""

    month: str  # YYYY-MM
    members: tuple[str, ...]
    inbound: FloatArray  # members x intervals
    outbound: FloatArray  # members x intervals
    interval_count: int

    def billed_directions(self, rule: str) -> FloatArray:
        """(directions x members x intervals) under the contract's direction rule."""
        if rule == "max":
            return np.stack([self.inbound, self.outbound])
        if rule == "sum":
            return (self.inbound + self.outbound)[np.newaxis]
        if rule == "in":
            return self.inbound[np.newaxis]
        if rule == "out":
            return self.outbound[np.newaxis]
        raise InputError(f"direction rule {rule!r} is not one of max, sum, in, out")


class TransitMarts:
    """The serving file, opened read-only."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise InputError(f"{path}: no such serving file; run 'peerpool build' first or pass --serving")
        try:
            self._con = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
        except duckdb.Error as exc:
            raise InputError(f"{path}: cannot open as a DuckDB file read-only ({exc})") from exc
        self.path = path
        self._check_columns()

    def __enter__(self) -> TransitMarts:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql, params or []).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"{self.path}: query on the transit marts failed ({exc})") from exc

    def _check_columns(self) -> None:
        rows = self._con.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'main'"
        ).fetchall()
        present: dict[str, set[str]] = {}
        for table, column in rows:
            present.setdefault(table, set()).add(column)
        for table, columns in REQUIRED.items():
            if table not in present:
                raise InputError(
                    f"{self.path}: table main.{table} is missing; "
                    "build the transit marts with 'peerpool build'"
                )
            missing = [c for c in columns if c not in present[table]]
            if missing:
                raise InputError(
                    f"{self.path}: main.{table} lacks column(s) {', '.join(missing)}; "
                    "the serving file is older than this peerpool: rebuild it"
                )

    def timezone(self) -> str:
        zones = [r[0] for r in self._query("select distinct billing_timezone from fct_transit_bill_monthly")]
        return zones[0] if len(zones) == 1 else "Europe/Warsaw"

    def bill_months(self) -> list[str]:
        rows = self._query(
            "select distinct strftime(billing_month, '%Y-%m') from fct_transit_bill_monthly order by 1"
        )
        return [r[0] for r in rows]

    def contracts(self, month: str) -> list[ContractMonth]:
        rows = self._query(
            "select contract_id, provider, direction_rule, intervals_in_month, intervals_used, billed_mbps, "
            "commit_mbps, commit_cost, overage_cost, total_cost from fct_transit_bill_monthly "
            "where strftime(billing_month, '%Y-%m') = ? order by contract_id",
            [month],
        )
        return [ContractMonth(*r) for r in rows]

    def member_monthly_p95(self) -> dict[str, list[tuple[str, float, int]]]:
        """member -> [(month, billed 95th Mbps, intervals used)] from fct_member_transit_usage."""
        rows = self._query(
            "select member_id, strftime(month, '%Y-%m'), billed_p95_mbps, intervals_used "
            "from fct_member_transit_usage order by member_id, month"
        )
        out: dict[str, list[tuple[str, float, int]]] = {}
        for member, month, p95, used in rows:
            out.setdefault(member, []).append((month, float(p95 or 0), int(used)))
        return out

    def month_traffic(self, month: str, timezone: str) -> MonthTraffic:
        """Every member's per-interval transit rates in one billing month (zeros where absent)."""
        start = dt.date.fromisoformat(month + "-01")
        try:
            data = self._con.execute(
                "select member_id, epoch(interval_start)::bigint as t, coalesce(in_bytes, 0) as i, "
                "coalesce(out_bytes, 0) as o from fct_member_transit_usage_5min "
                "where cast(date_trunc('month', timezone(?, interval_start)) as date) = ? "
                "order by member_id, interval_start",
                [timezone, start],
            ).fetchnumpy()
        except duckdb.Error as exc:
            raise InputError(f"{self.path}: reading fct_member_transit_usage_5min failed ({exc})") from exc
        if len(data["t"]) == 0:
            raise InputError(f"{self.path}: no member transit traffic in {month} ({timezone})")
        member_col = np.asarray(data["member_id"]).astype(str)
        members, idx = np.unique(member_col, return_inverse=True)
        stamps_all = np.asarray(data["t"], dtype=np.int64)
        stamps, col = np.unique(stamps_all, return_inverse=True)
        inbound = np.zeros((members.size, stamps.size))
        outbound = np.zeros((members.size, stamps.size))
        inbound[idx, col] = np.asarray(data["i"], dtype=np.float64) * BYTES_PER_5MIN_TO_MBPS
        outbound[idx, col] = np.asarray(data["o"], dtype=np.float64) * BYTES_PER_5MIN_TO_MBPS
        return MonthTraffic(month, tuple(str(m) for m in members), inbound, outbound, int(stamps.size))
