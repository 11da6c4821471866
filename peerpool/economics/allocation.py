"""Sharing a transit bill among the members of the pool, exactly.

Every method turns the bill into per-member amounts that add up to the bill to the grosz.
Each method first gives every member an exact rational quota (``Fraction``) of the bill in
grosze; amounts are the quotas rounded down, and the grosze still missing go one each to
the members with the largest remainders (largest-remainder / Hamilton apportionment). Equal
remainders are broken by member id in ascending order, so the result never depends on the
order of the input. Floats (traffic, Shapley estimates) enter the quotas through their exact
binary value, so the same input always gives the same grosze.

Methods, side by side in the tender report:

* ``proportional_p95``: quota proportional to the member's own billed 95th.
* ``capacity_share``: the cost model of Polish wholesale regulation (required capacity over
  purchased capacity): the bill splits into a capacity part (the commit and the fixed fees:
  what was bought whether used or not) and a burst part (billed 95th above the commit). Each
  member's required capacity is its reserved capacity if the cooperative configured one, else
  its own 95th. A member pays ``required / purchased`` of the capacity part; capacity nobody
  required (``purchased - sum required``) is a common cost spread pro rata to required
  capacity, like spare capacity of a network element in the regulator's model (so with the
  default, required = own 95th, the capacity part is shared like ``proportional_p95``). If
  members require more than was purchased (the pooling dividend at work), each pays its
  share of what was purchased. The burst part is paid by the members who used more than they
  reserved, pro rata to their excess; if nobody did, pro rata to required capacity.
* ``peak_contribution``: the pool's peak intervals are those at or above its billed sample
  (the top 5% plus the billed one); a member's quota is its share of the pool's traffic
  summed over those intervals: who fills the pipe when the bill is set.
* ``shapley``: quota proportional to the member's Shapley value in the 95th-percentile cost
  game (``peerpool.economics.game`` / ``shapley_mc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError
from peerpool.economics.percentile import Percent, nearest_rank_k

Weight = Fraction | Decimal | int | float
GROSZ = Decimal("0.01")
METHODS = ("proportional_p95", "capacity_share", "peak_contribution", "shapley")


def _fraction(value: Weight, what: str) -> Fraction:
    if isinstance(value, float) and not np.isfinite(value):
        raise EconomicsError(f"{what} is {value}; weights must be finite numbers")
    result = Fraction(value)
    if result < 0:
        raise EconomicsError(f"{what} is negative ({value}); cost-sharing weights are >= 0")
    return result


def _grosze(total: Decimal) -> int:
    units = total / GROSZ
    if units != units.to_integral_value():
        raise EconomicsError(f"bill {total} has fractions of a grosz; round the bill to 0.01 first")
    return int(units)


def apportion_quotas(total: Decimal, quotas: Mapping[str, Fraction]) -> dict[str, Decimal]:
    """Round exact quotas (in the bill's currency, summing to ``total``) to grosze that sum exactly.

    Largest remainder: round every quota down to a grosz, then hand the missing grosze one
    each to the largest remainders; ties go to the smaller member id.
    """
    if not quotas:
        raise EconomicsError("no members to share the bill among")
    units = _grosze(total)
    exact = {m: q / Fraction(GROSZ) for m, q in quotas.items()}
    if sum(exact.values()) != units:
        raise EconomicsError(f"quotas add up to {sum(quotas.values())}, not to the bill {total}")
    floors = {m: (q.numerator // q.denominator) for m, q in exact.items()}
    missing = units - sum(floors.values())
    by_remainder = sorted(exact, key=lambda m: (-(exact[m] - floors[m]), m))
    for m in by_remainder[:missing]:
        floors[m] += 1
    return {m: Decimal(floors[m]) * GROSZ for m in sorted(floors)}


def apportion(total: Decimal, weights: Mapping[str, Weight]) -> dict[str, Decimal]:
    """Split ``total`` pro rata to ``weights`` in grosze that add up exactly.

    All weights zero (nobody used anything) splits the bill equally: it is then a fixed cost.
    """
    if not weights:
        raise EconomicsError("no members to share the bill among")
    exact = {m: _fraction(w, f"weight of {m}") for m, w in weights.items()}
    whole = sum(exact.values(), Fraction(0))
    if whole == 0:
        exact = {m: Fraction(1) for m in exact}
        whole = Fraction(len(exact))
    bill = Fraction(total)
    return apportion_quotas(total, {m: bill * w / whole for m, w in exact.items()})


def proportional_p95(bill: Decimal, member_p95: Mapping[str, Weight]) -> dict[str, Decimal]:
    """Each member pays in proportion to its own billed 95th."""
    return apportion(bill, member_p95)


def capacity_share(
    bill: Decimal,
    capacity_cost: Decimal,
    member_p95: Mapping[str, Weight],
    reserved_mbps: Mapping[str, Weight] | None = None,
) -> dict[str, Decimal]:
    """Required capacity over purchased capacity (see the module docstring for the rule).

    ``capacity_cost`` is the part of ``bill`` that pays for purchased capacity (commit and fixed
    fees); the rest of the bill is the burst part. ``reserved_mbps`` gives configured
    capacities; members missing from it require their own 95th. The purchased capacity itself
    cancels out of the shares (own share plus pro-rata spare is r / sum(r)), so it is not
    an argument; the report shows it beside the shares.
    """
    if not Decimal(0) <= capacity_cost <= bill:
        raise EconomicsError(
            f"capacity part {capacity_cost} must be between 0 and the bill {bill}; "
            "it is the commit plus fixed fees"
        )
    reserved = reserved_mbps or {}
    unknown = sorted(set(reserved) - set(member_p95))
    if unknown:
        raise EconomicsError(f"reserved capacity given for {unknown}, who are not in the pool this month")
    used = {m: _fraction(p, f"95th of {m}") for m, p in member_p95.items()}
    required = {m: _fraction(reserved.get(m, used[m]), f"required capacity of {m}") for m in used}
    total_required = sum(required.values(), Fraction(0))
    cap = Fraction(capacity_cost)
    burst = Fraction(bill) - cap
    quotas: dict[str, Fraction] = {}
    if total_required == 0:
        capacity_quota = {m: cap / len(used) for m in used}
    else:
        # r/purchased of the capacity part plus the spare (purchased - sum r)/purchased spread
        # pro rata to r is r/sum(r); with more required than purchased, r/sum(r) of what was
        # bought: one formula for both cases
        capacity_quota = {m: cap * r / total_required for m, r in required.items()}
    excess = {m: max(Fraction(0), used[m] - required[m]) for m in used}
    total_excess = sum(excess.values(), Fraction(0))
    if total_excess > 0:
        burst_quota = {m: burst * e / total_excess for m, e in excess.items()}
    elif total_required > 0:
        burst_quota = {m: burst * r / total_required for m, r in required.items()}
    else:
        burst_quota = {m: burst / len(used) for m in used}
    for m in used:
        quotas[m] = capacity_quota[m] + burst_quota[m]
    return apportion_quotas(bill, quotas)


def peak_intervals(pool: npt.ArrayLike, pct: Percent = 95) -> npt.NDArray[np.bool_]:
    """Intervals at or above the pool's billed sample: the top ``100 - pct``% and the billed one."""
    series = np.asarray(pool, dtype=np.float64)
    k = nearest_rank_k(series.shape[0], pct)
    billed = np.partition(series, k - 1)[k - 1]
    result: npt.NDArray[np.bool_] = series >= billed
    return result


def peak_weights(traffic: npt.ArrayLike, members: Sequence[str], pct: Percent = 95) -> dict[str, float]:
    """Each member's traffic summed over the pool's peak intervals (one billed direction)."""
    arr = np.asarray(traffic, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != len(members):
        raise EconomicsError(
            f"traffic must be (members x intervals) with {len(members)} rows; got {arr.shape}"
        )
    mask = peak_intervals(arr.sum(axis=0), pct)
    sums = arr[:, mask].sum(axis=1)
    return {m: float(s) for m, s in zip(members, sums, strict=True)}


def peak_contribution(
    bill: Decimal, traffic: npt.ArrayLike, members: Sequence[str], pct: Percent = 95
) -> dict[str, Decimal]:
    """Each member pays its share of the pool's traffic during the pool's peak intervals."""
    return apportion(bill, peak_weights(traffic, members, pct))


def shapley_shares(bill: Decimal, shapley_values: Mapping[str, Weight]) -> dict[str, Decimal]:
    """The bill split in proportion to Shapley values (exact or estimated)."""
    return apportion(bill, shapley_values)
