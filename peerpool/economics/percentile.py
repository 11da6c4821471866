"""The billing percentile: nearest rank, exactly as the transit contracts define it.

Sort the ``n`` interval rates ascending, discard the top ``100 - pct`` percent and bill the
highest remaining one: the sample of 1-based rank ``k = ceil(pct / 100 * n)``. For a 30-day
month of 5-minute intervals (n = 8640) and pct = 95 that is sample #8208, so the 432 highest
intervals are free. DuckDB's ``quantile_disc(x, 0.95)`` follows the same rule; interpolating
percentiles (``quantile_cont``, numpy's default ``percentile``) do not and are never used here.

The rank is computed in exact rational arithmetic: ``0.95 * 8640`` in binary floating point
is not exactly 8208, and a ceiling of a float can be off by one.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError

FloatArray = npt.NDArray[np.float64]

Percent = int | Decimal | Fraction | str


def _as_fraction(pct: Percent) -> Fraction:
    try:
        value = Fraction(Decimal(pct)) if isinstance(pct, str) else Fraction(pct)
    except (ValueError, ArithmeticError) as exc:
        raise EconomicsError(f"percentile {pct!r} is not a number; give e.g. 95") from exc
    if not 0 < value <= 100:
        raise EconomicsError(f"percentile {pct} is outside (0, 100]; contracts use e.g. 95")
    return value


def nearest_rank_k(n: int, pct: Percent = 95) -> int:
    """1-based rank of the billed sample among ``n`` sorted samples: ``ceil(pct/100 * n)``."""
    if n <= 0:
        raise EconomicsError(
            "no intervals to take a percentile of (n = 0): the billing month has no samples; "
            "check the period and the gap policy"
        )
    return max(1, math.ceil(_as_fraction(pct) * n / 100))


def free_intervals(n: int, pct: Percent = 95) -> int:
    """How many of the highest intervals are discarded (not billed): ``n - k``."""
    return n - nearest_rank_k(n, pct)


def nearest_rank(values: npt.ArrayLike, pct: Percent = 95) -> float:
    """The billed percentile of one series of interval rates (nearest rank, 1-based)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise EconomicsError(f"nearest_rank takes one series of rates, got an array of shape {arr.shape}")
    return float(nearest_rank_rows(arr[np.newaxis, :], pct)[0])


def nearest_rank_rows(matrix: npt.ArrayLike, pct: Percent = 95) -> FloatArray:
    """The billed percentile of every row of a (series x intervals) matrix."""
    arr = np.asarray(matrix, dtype=np.float64)
    if arr.ndim != 2:
        raise EconomicsError(f"nearest_rank_rows takes a 2-d array, got shape {arr.shape}")
    n = arr.shape[1]
    k = nearest_rank_k(n, pct)
    if np.isnan(arr).any():
        raise EconomicsError(
            "a rate series contains NaN (a missing interval): apply the contract's gap policy "
            "(exclude the interval or count it as zero) before taking the percentile"
        )
    if arr.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    return np.partition(arr, k - 1, axis=1)[:, k - 1].copy()


def billed_interval(values: npt.ArrayLike, pct: Percent = 95) -> int:
    """Index (into the unsorted series) of an interval whose rate is the billed sample."""
    arr = np.asarray(values, dtype=np.float64)
    k = nearest_rank_k(arr.shape[0], pct)
    return int(np.argpartition(arr, k - 1)[k - 1])
