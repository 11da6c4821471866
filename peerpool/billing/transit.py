"""The pooled transit bill and each member's share of it.

**The pool's bill** is ``fct_transit_bill_monthly``: one row per transit contract and month.
Before a grosz of it is shared, every contract's figures are recomputed here from its
5-minute samples (``fct_transit_usage_5min``: the per-interval sum over the contract's
ports) and its terms in the configuration, and must agree with the mart to the last digit:
billable intervals under the gap policy, the nearest-rank percentile per direction, the
direction rule, Mbps = bytes / 37,500,000 rounded half up to 4 decimals, commit cost,
overage and total (each product rounded half up to 4 decimals). A disagreement stops the
bill: the serving file was built from another configuration, or the evidence would not
support the figure. Each contract's total is then rounded half up to the grosz (the
provider invoices whole grosz) and the pool's bill is their sum. Contracts in another
currency than the bill's are refused (no exchange rates are applied).

**A member's weight** under ``proportional_p95`` (the default) is its own transit 95th
(``fct_member_transit_usage.billed_p95_mbps``: max of in and out, nearest rank over the
intervals in which the transit counters scaled the flows, whole bytes per interval, the
member's missing intervals counting as 0), likewise recomputed from its 5-minute samples.
How the bill is then split is ``peerpool.billing.allocate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from peerpool.billing.money import ZERO, grosz
from peerpool.billing.period import Month
from peerpool.billing.ranking import Ranked, rank
from peerpool.billing.serving import ContractBill, ContractSamples, PortFlag, ServingFile
from peerpool.config.model import Exchange, TransitContract
from peerpool.errors import BillingError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

BYTES_PER_MBPS_INTERVAL = 37_500_000  # 1 Mbps for 300 s = 1e6 x 300 / 8 bytes
FOUR = Decimal("0.0001")
DIRECTIONS = {"max": ("in", "out"), "sum": ("sum",), "in": ("in",), "out": ("out",)}
MEMBER_PCT = 95


def bytes_to_mbps(byte_count: int) -> Decimal:
    """Mbps of a 5-minute byte count, half up to 4 decimals (the marts' ``bytes_to_mbps``)."""
    tenths_of_thousandths = (2 * byte_count * 10_000 + BYTES_PER_MBPS_INTERVAL) // (
        2 * BYTES_PER_MBPS_INTERVAL
    )
    return (Decimal(tenths_of_thousandths) * FOUR).quantize(FOUR)


def money4(value: Decimal) -> Decimal:
    """A product of two 4-decimal figures rounded half up to 4 decimals (the marts' ``multiply_money``)."""
    return value.quantize(FOUR, rounding=ROUND_HALF_UP)


# --- the pool's bill ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContractResult:
    """One contract's month, recomputed and checked against the mart."""

    mart: ContractBill
    samples: ContractSamples
    ranked: dict[str, Ranked]  # by direction: in, out, sum (those the rule uses)
    billed_direction: str  # the direction whose percentile is billed ("" when nothing billable)
    billed_bytes: int | None
    billed_mbps: Decimal | None
    commit_cost: Decimal
    overage_mbps: Decimal
    overage_cost: Decimal
    total_cost: Decimal
    total_grosz: Decimal
    port_ids: tuple[str, ...]
    port_flags: list[PortFlag]

    def series(self, direction: str) -> IntArray:
        s = self.samples
        return {"in": s.in_bytes, "out": s.out_bytes, "sum": s.in_plus_out_bytes}[direction]


@dataclass(frozen=True)
class Pool:
    """The month's pooled transit bill."""

    contracts: tuple[ContractResult, ...]
    total: Decimal  # sum of the contracts' totals, each rounded to the grosz
    currency: str


def _contract_config(exchange: Exchange, contract_id: str) -> TransitContract:
    for contract in exchange.transit_contracts:
        if contract.id == contract_id:
            return contract
    raise BillingError(
        f"the serving file bills transit contract {contract_id!r}, which "
        f"{exchange.source or 'exchange.toml'} "
        "does not define; rebuild the serving file from this configuration ('peerpool build')"
    )


def _check_terms(exchange: Exchange, mart: ContractBill) -> None:
    contract = _contract_config(exchange, mart.contract_id)
    mismatches = [
        name
        for name, config_value, mart_value in (
            ("commit_mbps", contract.commit_mbps, mart.commit_mbps),
            ("price_per_mbps", contract.price_per_mbps, mart.price_per_mbps),
            ("burst_price_per_mbps", contract.burst_price_per_mbps, mart.burst_price_per_mbps),
            ("percentile", contract.percentile, mart.percentile),
            ("direction_rule", contract.direction_rule, mart.direction_rule),
            ("gap_policy", contract.gap_policy, mart.gap_policy),
            ("currency", contract.currency, mart.currency),
        )
        if config_value != mart_value
    ]
    if mismatches:
        raise BillingError(
            f"transit contract {mart.contract_id}: the serving file has other terms than "
            f"{exchange.source or 'exchange.toml'} ({', '.join(mismatches)}); rebuild it from this "
            "configuration ('peerpool build') before billing"
        )


def recompute_contract(
    exchange: Exchange,
    mart: ContractBill,
    samples: ContractSamples,
    port_ids: tuple[str, ...],
    flags: list[PortFlag],
) -> ContractResult:
    """Recompute one contract's bill from its samples and terms; refuse any disagreement with the mart."""
    _check_terms(exchange, mart)
    if mart.currency != exchange.billing.currency:
        raise BillingError(
            f"transit contract {mart.contract_id} is billed in {mart.currency} but the bills are in "
            f"{exchange.billing.currency}; peerpool applies no exchange rates, so share it outside this bill "
            "or set the contract's currency"
        )
    billable = samples.is_billable
    series = {"in": samples.in_bytes, "out": samples.out_bytes, "sum": samples.in_plus_out_bytes}
    ranked = {
        d: rank(series[d], samples.interval_s, billable, mart.percentile)
        for d in DIRECTIONS[mart.direction_rule]
    }
    n = int(billable.sum())
    billed_bytes: int | None = None
    billed_direction = ""
    if n:
        candidates = [(int(series[d][r.billed_row]), d) for d, r in ranked.items()]
        # the max rule bills the larger of the two percentiles; on a tie, "in" is named
        billed_bytes, billed_direction = max(candidates, key=lambda c: (c[0], c[1] == "in"))
    billed_mbps = None if billed_bytes is None else bytes_to_mbps(billed_bytes)
    commit_cost = money4(mart.commit_mbps * mart.price_per_mbps)
    overage = max((billed_mbps or Decimal(0)) - mart.commit_mbps, Decimal(0)).quantize(FOUR)
    overage_cost = money4(overage * mart.burst_price_per_mbps)
    total = (commit_cost + overage_cost).quantize(FOUR)
    checks = (
        ("intervals_used", n, mart.intervals_used),
        ("billed_mbps", billed_mbps, mart.billed_mbps),
        ("commit_cost", commit_cost, mart.commit_cost),
        ("overage_mbps", overage, mart.overage_mbps),
        ("overage_cost", overage_cost, mart.overage_cost),
        ("total_cost", total, mart.total_cost),
    )
    for name, mine, theirs in checks:
        if mine != theirs:
            raise BillingError(
                f"transit contract {mart.contract_id}: {name} recomputed from the 5-minute samples is "
                f"{mine}, "
                f"the serving file says {theirs}; the bill would not match its evidence. Rebuild the serving "
                "file ('peerpool build') and report this if it persists"
            )
    return ContractResult(
        mart=mart,
        samples=samples,
        ranked=ranked,
        billed_direction=billed_direction,
        billed_bytes=billed_bytes,
        billed_mbps=billed_mbps,
        commit_cost=commit_cost,
        overage_mbps=overage,
        overage_cost=overage_cost,
        total_cost=total,
        total_grosz=grosz(total),
        port_ids=port_ids,
        port_flags=flags,
    )


def pool_bill(serving: ServingFile, exchange: Exchange, month: Month) -> Pool:
    ports = serving.contract_ports()
    results = []
    for mart in serving.contract_bills(month):
        samples = serving.contract_samples(mart.contract_id, month)
        port_ids = ports.get(mart.contract_id, ())
        contract_month = Month(month.year, month.month, mart.billing_timezone)
        flags = serving.port_flags(port_ids, contract_month.start_utc, contract_month.end_utc)
        results.append(recompute_contract(exchange, mart, samples, port_ids, flags))
    total = sum((r.total_grosz for r in results), ZERO)
    return Pool(tuple(results), total, exchange.billing.currency)


# --- members' transit 95ths -----------------------------------------------------------------


@dataclass(frozen=True)
class MemberSeries:
    """One member's transit samples over the month: the n counted intervals plus excluded rows."""

    interval_s: IntArray
    in_bytes: IntArray
    out_bytes: IntArray
    source: list[str]  # measured | zero_filled | excluded
    ranked_in: Ranked
    ranked_out: Ranked

    @property
    def in_p95(self) -> int:
        return int(self.in_bytes[self.ranked_in.billed_row]) if self.ranked_in.n else 0

    @property
    def out_p95(self) -> int:
        return int(self.out_bytes[self.ranked_out.billed_row]) if self.ranked_out.n else 0

    @property
    def billed_direction(self) -> str:
        return "in" if self.in_p95 >= self.out_p95 else "out"

    @property
    def billed_bytes(self) -> int:
        return max(self.in_p95, self.out_p95)

    @property
    def billed_mbps(self) -> Decimal:
        return bytes_to_mbps(self.billed_bytes)


@dataclass
class MemberTransit:
    """Every member's transit samples of the month and the intervals they are counted over."""

    spine: IntArray  # the intervals in which transit counters scaled the flows
    monthly: dict[str, Any]  # member_id -> MemberTransitMonth
    _samples: Any = field(repr=False)

    def series(self, member_id: str) -> MemberSeries:
        times, ins, outs = self._samples.of(member_id)
        all_times = np.union1d(self.spine, times)
        in_all = np.zeros(len(all_times), dtype=np.int64)
        out_all = np.zeros(len(all_times), dtype=np.int64)
        pos = np.searchsorted(all_times, times)
        in_all[pos] = ins
        out_all[pos] = outs
        counted = np.isin(all_times, self.spine, assume_unique=True)
        measured = np.zeros(len(all_times), dtype=np.bool_)
        measured[pos] = True
        source = [
            ("measured" if m else "zero_filled") if c else "excluded"
            for c, m in zip(counted.tolist(), measured.tolist(), strict=True)
        ]
        return MemberSeries(
            all_times,
            in_all,
            out_all,
            source,
            rank(in_all, all_times, counted, MEMBER_PCT),
            rank(out_all, all_times, counted, MEMBER_PCT),
        )

    def verified_p95(self, member_id: str) -> tuple[Decimal, MemberSeries]:
        """The member's billed transit 95th (Mbps), recomputed from its samples and checked."""
        row = self.monthly[member_id]
        series = self.series(member_id)
        mine = series.billed_mbps
        if series.ranked_in.n != row.intervals_used or mine != row.billed_p95_mbps:
            raise BillingError(
                f"member {member_id}: its transit 95th recomputed from the 5-minute samples is {mine} "
                "Mbps over "
                f"{series.ranked_in.n} intervals, the serving file says {row.billed_p95_mbps} Mbps over "
                f"{row.intervals_used}; rebuild the serving file ('peerpool build') and report this if it "
                "persists"
            )
        return mine, series


def member_transit(serving: ServingFile, month: Month) -> MemberTransit:
    monthly = {row.member_id: row for row in serving.member_transit_months(month)}
    return MemberTransit(serving.transit_intervals(month), monthly, serving.member_transit_samples(month))
