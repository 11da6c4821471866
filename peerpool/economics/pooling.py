"""The pooling dividend: what billing the pool as one saves against members billed alone.

Members do not peak at the same time, so the 95th percentile of the pool's per-interval sum
is below the sum of the members' own 95th percentiles (Stanojevic, Castro, Gorinsky, CIPT,
CoNEXT 2011). The difference, in Mbps and as a share of the sum, is the pooling dividend of
burstable billing; priced with a tender's price function it also shows the volume-tier
saving (one big commit at a low tier price against many small ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError
from peerpool.economics.percentile import Percent, nearest_rank_rows
from peerpool.economics.pricing import PriceSchedule, to_decimal

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PoolingDividend:
    """One month (and provider) of the pool: its 95th against the members' own."""

    members: tuple[str, ...]
    member_p95_mbps: tuple[float, ...]
    pool_p95_mbps: float
    intervals: int

    @property
    def sum_of_member_p95_mbps(self) -> float:
        return float(sum(self.member_p95_mbps))

    @property
    def dividend_mbps(self) -> float:
        return self.sum_of_member_p95_mbps - self.pool_p95_mbps

    @property
    def dividend_share(self) -> float:
        """Dividend as a share of the sum of the members' own 95ths (0 when nobody has traffic)."""
        total = self.sum_of_member_p95_mbps
        return self.dividend_mbps / total if total > 0 else 0.0

    def priced(self, schedule: PriceSchedule) -> tuple[Decimal, Decimal, Decimal]:
        """(members alone, pool, saving) per month at the schedule's buy-alone price."""
        alone = sum((schedule.alone_cost(to_decimal(p)) for p in self.member_p95_mbps), Decimal(0))
        pool = schedule.alone_cost(to_decimal(self.pool_p95_mbps))
        return alone, pool, alone - pool


def _directional(traffic: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(traffic, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise EconomicsError(
            f"traffic must be (members x intervals) or (directions x members x intervals); got {arr.shape}"
        )
    return arr


def pooling_dividend(traffic: npt.ArrayLike, members: Sequence[str], pct: Percent = 95) -> PoolingDividend:
    """Pooling dividend of one billing period.

    ``traffic`` is (members x intervals) in Mbps for one billed direction, or (directions x
    members x intervals) for the rule max(in95, out95), applied to each member and to the pool.
    """
    arr = _directional(traffic)
    if arr.shape[1] != len(members):
        raise EconomicsError(f"traffic has {arr.shape[1]} member rows but {len(members)} member ids")
    if arr.shape[1] == 0:
        raise EconomicsError("no members in the pool: nothing to compare")
    own = np.max([nearest_rank_rows(arr[d], pct) for d in range(arr.shape[0])], axis=0)
    pool = max(float(nearest_rank_rows(arr[d].sum(axis=0)[np.newaxis], pct)[0]) for d in range(arr.shape[0]))
    return PoolingDividend(tuple(members), tuple(float(v) for v in own), pool, int(arr.shape[2]))


def pooling_dividends(
    periods: Mapping[tuple[str, str], tuple[Sequence[str], npt.ArrayLike]], pct: Percent = 95
) -> dict[tuple[str, str], PoolingDividend]:
    """Pooling dividend per (month, provider) from each one's member ids and traffic matrix."""
    return {
        key: pooling_dividend(traffic, members, pct) for key, (members, traffic) in sorted(periods.items())
    }
