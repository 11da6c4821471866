"""Sharing the pooled transit bill among the members, by the configured method.

The method is ``[billing] transit_allocation``; the arithmetic is the cost-sharing library's
(``peerpool.economics.allocation``): every method gives each member an exact rational quota of
the bill and the quotas are rounded to the grosz by largest remainder (ties to the smaller
member id), so the shares add up to the provider's bill exactly. Here the methods get their
inputs from the month's verified figures and each member's line gets the figures behind it:

* ``proportional_p95`` (default): weight = the member's own transit 95th (Mbps, 4 decimals).
* ``capacity_share``: required capacity = own 95th; the capacity part of the bill is the sum of
  the contracts' commit costs (each rounded to the grosz), the rest is the burst part.
* ``peak_contribution``: weight = the member's bytes summed over the pool's peak intervals
  (those at or above the 95th of the members' summed traffic) in the direction whose pooled
  95th is higher (the max rule).
* ``shapley``: weight = the member's Shapley value in the 95th-percentile game over both
  directions (max rule); exact up to 12 members, else the Monte Carlo estimate with seed 0 on
  one worker and no time budget, so a re-run with the same software gives the same figures.

Members sharing are those with transit use in the month (a row in ``fct_member_transit_usage``).
If all their weights are zero the bill is split equally (it is then a fixed cost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from peerpool.billing.lines import Line
from peerpool.billing.money import ZERO, exact_text, grosz
from peerpool.billing.period import Month
from peerpool.billing.transit import MemberSeries, Pool
from peerpool.economics import allocation
from peerpool.economics.errors import EconomicsError
from peerpool.economics.game import PercentileGame, shapley_exact
from peerpool.economics.shapley_mc import shapley_monte_carlo
from peerpool.errors import BillingError

SHAPLEY_EXACT_MAX = 12


@dataclass(frozen=True)
class Allocation:
    method: str
    amounts: dict[str, Decimal]
    detail: dict[str, dict[str, Any]]  # per member: the figures behind its share
    summary: dict[str, Any]  # cooperative-wide figures (no member's own)


def _counted(series: MemberSeries, direction: str) -> npt.NDArray[np.float64]:
    values = series.in_bytes if direction == "in" else series.out_bytes
    counted = np.array([s != "excluded" for s in series.source], dtype=np.bool_)
    return values[counted].astype(np.float64)


def _matrix(
    members: list[str], series: Mapping[str, MemberSeries], direction: str
) -> npt.NDArray[np.float64]:
    rows = [_counted(series[m], direction) for m in members]
    if len({len(r) for r in rows}) > 1:
        raise BillingError("members' transit samples cover different intervals; rebuild the serving file")
    return np.vstack(rows) if rows else np.zeros((0, 0))


def _proportional_detail(
    total: Decimal, weights: Mapping[str, Fraction], amounts: Mapping[str, Decimal]
) -> dict[str, dict[str, Any]]:
    whole = sum(weights.values(), Fraction(0))
    out = {}
    for member, weight in weights.items():
        exact = Fraction(total) * weight / whole if whole else Fraction(total) / len(weights)
        floor = (exact * 100).numerator // (exact * 100).denominator
        out[member] = {
            "exact_share": exact_text(exact),
            "floor_grosz": floor,
            "got_left_over_grosz": amounts[member] * 100 > floor,
        }
    return out


def allocate(
    method: str, pool: Pool, p95: Mapping[str, Decimal], series: Mapping[str, MemberSeries]
) -> Allocation:
    members = sorted(p95)
    total = pool.total
    if not members:
        if total:
            raise BillingError(
                f"the pooled transit bill is {total} {pool.currency} but no member has transit use in the "
                "serving file to share it by; check the border-router flows and the build"
            )
        return Allocation(method, {}, {}, {"method": method, "members_sharing": 0})
    rule = (
        "exact quota per member, floored to the grosz; the grosz left over go one each to the largest "
        "remainders (ties to the smaller member id); all weights zero: equal split"
    )
    try:
        if method == "capacity_share":
            capacity = sum((min(grosz(c.commit_cost), c.total_grosz) for c in pool.contracts), ZERO)
            amounts = allocation.capacity_share(total, capacity, p95)
            required = sum(p95.values(), Decimal(0))
            needs: dict[str, dict[str, Any]] = {m: {"required_mbps": p95[m]} for m in members}
            summary = {
                "capacity_part": capacity,
                "burst_part": total - capacity,
                "total_required_mbps": required,
                "rule": "required capacity = own 95th; capacity part shared by required / total required; "
                "burst part by use above the required capacity (none here), else like the capacity part; "
                + rule,
            }
            return Allocation(
                method, amounts, needs, {"method": method, "members_sharing": len(members), **summary}
            )
        if method == "proportional_p95":
            weights = {m: Fraction(p95[m]) for m in members}
            amounts = allocation.proportional_p95(total, p95)
            unit, label = "Mbps", "own transit 95th"
        elif method == "peak_contribution":
            direction = _pool_direction(members, series)
            traffic = _matrix(members, series, direction)
            peak = allocation.peak_weights(traffic, members)
            weights = {m: Fraction(v) for m, v in peak.items()}
            amounts = allocation.apportion(total, peak)
            unit, label = f"bytes ({direction}bound) in the pool's peak intervals", "peak-interval bytes"
        elif method == "shapley":
            traffic = np.stack([_matrix(members, series, "in"), _matrix(members, series, "out")])
            game = PercentileGame.build(traffic, members)
            if game.n <= SHAPLEY_EXACT_MAX:
                values = shapley_exact(game)
            else:
                values = shapley_monte_carlo(game, seed=0, workers=1).estimate
            shapley = {m: float(v) for m, v in zip(members, values, strict=True)}
            weights = {m: Fraction(v) for m, v in shapley.items()}
            amounts = allocation.shapley_shares(total, shapley)
            unit, label = "Shapley value of the 95th game (bytes)", "Shapley value"
        else:
            raise BillingError(f"[billing] transit_allocation {method!r} is not a method peerpool knows")
    except EconomicsError as exc:
        raise BillingError(f"sharing the pooled transit bill by {method} failed: {exc}") from exc
    shares = _proportional_detail(total, weights, amounts)
    shown = {m: (f"{p95[m]:f}" if method == "proportional_p95" else _show(weights[m])) for m in members}
    detail: dict[str, dict[str, Any]] = {
        m: {"weight": shown[m], "weight_unit": unit, "weight_is": label, **shares[m]} for m in members
    }
    summary = {
        "method": method,
        "members_sharing": len(members),
        "total_weight": _show(sum(weights.values(), Fraction(0))),
        "weight_unit": unit,
        "rule": "pool total x weight / total weight; " + rule,
    }
    return Allocation(method, amounts, detail, summary)


def _show(value: Fraction) -> str:
    return exact_text(value, 4) if value.denominator != 1 else str(value.numerator)


def _pool_direction(members: list[str], series: Mapping[str, MemberSeries]) -> str:
    """The direction whose 95th of the members' summed traffic is higher (ties: in)."""
    from peerpool.economics.percentile import nearest_rank

    pooled = {d: _matrix(members, series, d).sum(axis=0) for d in ("in", "out")}
    if pooled["in"].size == 0:
        return "in"
    return "in" if nearest_rank(pooled["in"]) >= nearest_rank(pooled["out"]) else "out"


def share_lines(result: Allocation, p95: Mapping[str, Decimal], pool: Pool, month: Month) -> dict[str, Line]:
    """Each sharing member's line: its share of the pooled bill, with the figures behind it."""
    how = (
        "by own transit 95th"
        if result.method == "proportional_p95"
        else f"by {result.method}; own transit 95th"
    )
    return {
        member: Line(
            member_id=member,
            kind="transit_share",
            reference="pool",
            description=f"share of the pooled transit bill {month.label} {how} {p95[member]} Mbps",
            quantity=p95[member],
            unit="Mbps (own transit 95th)",
            unit_price=None,
            amount=amount,
            detail={
                "method": result.method,
                "own_p95_mbps": p95[member],
                "pool_total": pool.total,
                **result.detail[member],
                "pool_allocation": {k: v for k, v in result.summary.items() if k != "method"},
            },
        )
        for member, amount in result.amounts.items()
    }
