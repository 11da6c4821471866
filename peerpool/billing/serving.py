"""Read-only access to the serving DuckDB file: the marts a bill is made from.

The file is opened with ``read_only=True`` (DuckDB allows readers beside each other, never
beside a writer; ``peerpool build`` publishes by an atomic rename, so a reader keeps the file
it opened) and external access disabled. Each method runs one query for the whole month and
returns plain values: integers for epoch seconds and byte counts, ``Decimal`` for money and
Mbps, numpy arrays for the 5-minute samples. Column names are the dbt marts' contract
(``dbt/models/marts/_marts__models.yml``); the one intermediate table read,
``intermediate.int_transit_port_scaling_5min``, gives the intervals a member's transit 95th
is taken over (the intervals the transit counters scaled the flows in), which the marts do
not list.
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

from peerpool.billing.period import Month
from peerpool.errors import BillingError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SCALING_TABLE = "intermediate.int_transit_port_scaling_5min"


@dataclass(frozen=True)
class ContractBill:
    """One row of ``fct_transit_bill_monthly``."""

    contract_id: str
    provider: str
    currency: str
    percentile: int
    direction_rule: str
    gap_policy: str
    billing_timezone: str
    intervals_in_month: int
    intervals_used: int
    intervals_incomplete: int
    billed_mbps: Decimal | None
    commit_mbps: Decimal
    price_per_mbps: Decimal
    burst_price_per_mbps: Decimal
    commit_cost: Decimal
    overage_mbps: Decimal
    overage_cost: Decimal
    total_cost: Decimal


@dataclass(frozen=True)
class ContractSamples:
    """``fct_transit_usage_5min`` of one contract and billing month, in interval order."""

    interval_s: IntArray  # epoch seconds (UTC) of the interval start
    in_bytes: IntArray
    out_bytes: IntArray
    in_plus_out_bytes: IntArray
    ports_expected: IntArray
    ports_with_rate: IntArray
    is_complete: BoolArray
    is_billable: BoolArray


@dataclass(frozen=True)
class PortFlag:
    """A 5-minute interval of a port whose counter rate is not a clean one (``fct_port_traffic_5min``)."""

    port_id: str
    interval_s: int
    is_trusted: bool
    is_gap: bool
    is_failed_read: bool
    is_reset: bool
    is_wrap: bool
    is_over_speed: bool


@dataclass(frozen=True)
class MemberTransitMonth:
    """One row of ``fct_member_transit_usage``."""

    member_id: str
    intervals_used: int
    billed_p95_mbps: Decimal


@dataclass(frozen=True)
class MemberTransitSamples:
    """All members' ``fct_member_transit_usage_5min`` rows in the month, sorted by member and interval."""

    member_id: npt.NDArray[np.object_]
    interval_s: IntArray
    in_bytes: IntArray
    out_bytes: IntArray

    def of(self, member_id: str) -> tuple[IntArray, IntArray, IntArray]:
        lo = int(np.searchsorted(self.member_id, member_id, side="left"))
        hi = int(np.searchsorted(self.member_id, member_id, side="right"))
        return self.interval_s[lo:hi], self.in_bytes[lo:hi], self.out_bytes[lo:hi]


@dataclass(frozen=True)
class Outage:
    """One row of ``fct_port_outages`` (times as UTC datetimes)."""

    port_id: str
    cause: str
    start_at: dt.datetime
    end_at: dt.datetime | None
    duration_s: int


@dataclass(frozen=True)
class ServingPort:
    """The billing-relevant columns of a member port in ``dim_ports``."""

    port_id: str
    member_id: str
    speed_mbps: int
    bundle_name: str
    connected_date: dt.date | None
    disconnected_date: dt.date | None


class ServingFile:
    """The serving DuckDB file, opened read-only for the length of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise BillingError(
                f"{path}: serving file not found; run 'peerpool build' first or pass --serving FILE"
            )
        self.path = path
        try:
            self._con = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
        except duckdb.Error as exc:
            raise BillingError(
                f"{path}: cannot open the serving file read-only ({exc}); is it a DuckDB file written by "
                "'peerpool build' and not being written right now?"
            ) from exc

    def __enter__(self) -> ServingFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    def _query(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        try:
            return self._con.execute(sql, params or [])
        except duckdb.CatalogException as exc:
            raise BillingError(
                f"{self.path}: the serving file lacks a table or column the bill needs ({exc}); "
                "rebuild it with this version of peerpool ('peerpool build')"
            ) from exc

    # --- reference -----------------------------------------------------------------
    def member_ports(self) -> list[ServingPort]:
        rows = self._query(
            "select port_id, member_id, speed_mbps, coalesce(bundle_name, ''), connected_date, "
            "disconnected_date "
            "from dim_ports where port_kind = 'member' order by port_id"
        ).fetchall()
        return [ServingPort(r[0], r[1], int(r[2]), r[3], r[4], r[5]) for r in rows]

    def member_ids(self) -> list[str]:
        return [r[0] for r in self._query("select member_id from dim_members order by member_id").fetchall()]

    def contract_ports(self) -> dict[str, tuple[str, ...]]:
        rows = self._query(
            "select contract_id, port_ids from dim_transit_contracts order by contract_id"
        ).fetchall()
        return {r[0]: tuple(sorted(r[1] or ())) for r in rows}

    # --- the pool's bill ------------------------------------------------------------
    def contract_bills(self, month: Month) -> list[ContractBill]:
        rows = self._query(
            "select contract_id, provider, currency, percentile, direction_rule, gap_policy, "
            "billing_timezone, intervals_in_month, intervals_used, intervals_incomplete, billed_mbps, "
            "commit_mbps, price_per_mbps, "
            "burst_price_per_mbps, commit_cost, overage_mbps, overage_cost, total_cost "
            "from fct_transit_bill_monthly where billing_month = ? order by contract_id",
            [month.start],
        ).fetchall()
        return [ContractBill(*_contract_values(r)) for r in rows]

    def contract_samples(self, contract_id: str, month: Month) -> ContractSamples:
        data = self._query(
            "select epoch(interval_start)::bigint as t, in_bytes::bigint as i, out_bytes::bigint as o, "
            "in_plus_out_bytes::bigint as s, ports_expected as pe, ports_with_rate as pr, "
            "is_complete as c, is_billable as b "
            "from fct_transit_usage_5min where contract_id = ? and billing_month = ? order by interval_start",
            [contract_id, month.start],
        ).fetchnumpy()
        return ContractSamples(
            interval_s=np.asarray(data["t"], dtype=np.int64),
            in_bytes=np.asarray(data["i"], dtype=np.int64),
            out_bytes=np.asarray(data["o"], dtype=np.int64),
            in_plus_out_bytes=np.asarray(data["s"], dtype=np.int64),
            ports_expected=np.asarray(data["pe"], dtype=np.int64),
            ports_with_rate=np.asarray(data["pr"], dtype=np.int64),
            is_complete=np.asarray(data["c"], dtype=np.bool_),
            is_billable=np.asarray(data["b"], dtype=np.bool_),
        )

    def port_flags(self, port_ids: tuple[str, ...], start: dt.datetime, end: dt.datetime) -> list[PortFlag]:
        """Intervals of the ports in ``[start, end)`` that were not a clean trusted rate."""
        if not port_ids:
            return []
        rows = self._query(
            "select port_id, epoch(interval_start)::bigint, is_trusted, is_gap, is_failed_read, is_reset, "
            "is_wrap, is_over_speed from fct_port_traffic_5min "
            "where port_id in (select unnest(?::varchar[])) and interval_start >= ? and interval_start < ? "
            "and (not coalesce(is_trusted, false) or is_gap or is_failed_read or is_reset or is_wrap "
            "or is_over_speed) order by port_id, interval_start",
            [list(port_ids), start, end],
        ).fetchall()
        return [PortFlag(r[0], int(r[1]), *(bool(x) for x in r[2:])) for r in rows]

    # --- members' transit use -------------------------------------------------------
    def member_transit_months(self, month: Month) -> list[MemberTransitMonth]:
        rows = self._query(
            "select member_id, intervals_used, billed_p95_mbps from fct_member_transit_usage "
            "where month = ? order by member_id",
            [month.start],
        ).fetchall()
        return [MemberTransitMonth(r[0], int(r[1]), r[2]) for r in rows]

    def member_transit_samples(self, month: Month) -> MemberTransitSamples:
        data = self._query(
            "select member_id as m, epoch(interval_start)::bigint as t, in_bytes::bigint as i, "
            "out_bytes::bigint as o "
            "from fct_member_transit_usage_5min where interval_start >= ? and interval_start < ? "
            "order by member_id, interval_start",
            [month.start_utc, month.end_utc],
        ).fetchnumpy()
        return MemberTransitSamples(
            member_id=np.asarray(data["m"], dtype=np.object_),
            interval_s=np.asarray(data["t"], dtype=np.int64),
            in_bytes=np.asarray(data["i"], dtype=np.int64),
            out_bytes=np.asarray(data["o"], dtype=np.int64),
        )

    def transit_intervals(self, month: Month) -> IntArray:
        """The intervals of the month in which the transit counters scaled the flows (the member n)."""
        data = self._query(
            f"select distinct epoch(interval_start)::bigint as t from {SCALING_TABLE} "
            "where scale_factor is not null and interval_start >= ? and interval_start < ? order by t",
            [month.start_utc, month.end_utc],
        ).fetchnumpy()
        return np.asarray(data["t"], dtype=np.int64)

    # --- outages --------------------------------------------------------------------
    def outages(self, port_ids: list[str], month: Month) -> list[Outage]:
        """Outages of the ports that overlap the month (ongoing ones up to their last poll)."""
        if not port_ids:
            return []
        rows = self._query(
            "select port_id, cause, start_at, end_at, duration_s from fct_port_outages "
            "where port_id in (select unnest(?::varchar[])) and start_at < ? "
            "and coalesce(end_at, start_at + to_seconds(duration_s)) > ? "
            "order by port_id, start_at, cause",
            [port_ids, month.end_utc, month.start_utc],
        ).fetchall()
        return [
            Outage(r[0], r[1], _utc(r[2]), None if r[3] is None else _utc(r[3]), int(r[4] or 0)) for r in rows
        ]


def _contract_values(r: tuple[Any, ...]) -> list[Any]:
    """A ``fct_transit_bill_monthly`` row with its integer columns as ``int``."""
    return [int(v) if i in (3, 7, 8, 9) else v for i, v in enumerate(r)]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
