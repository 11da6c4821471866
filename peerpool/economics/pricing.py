"""Transit price functions: what a buyer pays for a month at a given 95th percentile.

A provider's offer is a set of volume tiers. Committing to ``commit`` Mbps puts the buyer in
the tier with the highest ``min_commit_mbps`` not above it; the whole commit is then paid at
that tier's price, and every Mbps of the billed 95th above the commit at its burst price.
Fixed monthly fees (ports, cross-connects) come on top.

Two views of the same schedule:

* ``monthly_cost(commit, p95)``: the bill for a chosen commit, exact in ``Decimal``;
* ``alone_cost(p95)``: what a buyer (a member, or any coalition of members) pays when it
  buys alone and commits to its own 95th (or the tier minimum, if a higher tier's lower
  price makes that cheaper). This is the cost function ``v(S)`` of the cost-sharing game; a
  float version (``alone_cost_array``) feeds the Shapley computations.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError

FloatArray = npt.NDArray[np.float64]
CENT = Decimal("0.01")


def float_decimal(value: float) -> Decimal:
    """A float's shortest round-trip decimal form (numpy floats included) as a Decimal."""
    return Decimal(repr(float(value)))


def to_decimal(value: float | int | Decimal, places: int = 6) -> Decimal:
    """A float measurement (Mbps) as a Decimal rounded to ``places`` decimals (1 bps at 6)."""
    if isinstance(value, Decimal):
        return value
    if not np.isfinite(value):
        raise EconomicsError(f"value {value!r} is not finite; check the traffic data for gaps")
    return float_decimal(round(float(value), places))


@dataclass(frozen=True)
class PriceTier:
    """One volume tier: commits from ``min_commit_mbps`` up are priced at ``price_per_mbps``."""

    min_commit_mbps: Decimal
    price_per_mbps: Decimal  # per Mbps of commit per month
    burst_price_per_mbps: Decimal  # per Mbps of billed 95th above the commit


@dataclass(frozen=True)
class PriceSchedule:
    """A provider's price function: volume tiers plus fixed monthly fees."""

    tiers: tuple[PriceTier, ...]
    fixed_monthly: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise EconomicsError("a price schedule needs at least one tier (min_commit_mbps, price_per_mbps)")
        mins = [t.min_commit_mbps for t in self.tiers]
        if mins != sorted(mins) or len(set(mins)) != len(mins):
            raise EconomicsError(
                "price tiers must be listed by strictly increasing min_commit_mbps; "
                f"got {[str(m) for m in mins]}"
            )
        for t in self.tiers:
            if t.min_commit_mbps < 0 or t.price_per_mbps < 0 or t.burst_price_per_mbps < 0:
                raise EconomicsError(f"price tier {t} has a negative figure; prices and commits are >= 0")

    @property
    def min_commit_mbps(self) -> Decimal:
        return self.tiers[0].min_commit_mbps

    def tier_for(self, commit_mbps: Decimal) -> PriceTier:
        """The tier a commit falls in (the one with the highest minimum not above it)."""
        if commit_mbps < self.tiers[0].min_commit_mbps:
            raise EconomicsError(
                f"commit {commit_mbps} Mbps is below the smallest tier ({self.tiers[0].min_commit_mbps} Mbps)"
            )
        chosen = self.tiers[0]
        for tier in self.tiers:
            if tier.min_commit_mbps <= commit_mbps:
                chosen = tier
        return chosen

    def monthly_cost(self, commit_mbps: Decimal, p95_mbps: Decimal, index: Decimal = Decimal(1)) -> Decimal:
        """One month's bill for a commit and a billed 95th, prices multiplied by ``index`` (CPI)."""
        tier = self.tier_for(commit_mbps)
        overage = max(Decimal(0), p95_mbps - commit_mbps)
        usage = commit_mbps * tier.price_per_mbps + overage * tier.burst_price_per_mbps
        return (usage * index + self.fixed_monthly).quantize(CENT)

    def alone_cost(self, p95_mbps: Decimal) -> Decimal:
        """Cost of buying alone, committing to one's own 95th (or a tier minimum, if cheaper)."""
        best = min(t.price_per_mbps * max(p95_mbps, t.min_commit_mbps) for t in self.tiers)
        return (best + self.fixed_monthly).quantize(CENT)

    def alone_cost_array(self, p95_mbps: FloatArray) -> FloatArray:
        """``alone_cost`` on an array of 95ths, in float: the cost function of the Shapley game."""
        p = np.asarray(p95_mbps, dtype=np.float64)
        best = np.full(p.shape, np.inf)
        for t in self.tiers:
            best = np.minimum(best, float(t.price_per_mbps) * np.maximum(p, float(t.min_commit_mbps)))
        result: FloatArray = best + float(self.fixed_monthly)
        return result


def linear_cost(price_per_mbps: float) -> PriceSchedule:
    """A plain price per Mbps with no minimum and no fees (v(S) proportional to the 95th)."""
    price = float_decimal(price_per_mbps)
    return PriceSchedule((PriceTier(Decimal(0), price, price),))
