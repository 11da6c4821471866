"""Nearest-rank percentiles with every sample's rank, for bills a person can check by hand.

The billed sample of ``n`` interval values is the one of 1-based rank ``k = ceil(pct/100 x n)``
in ascending order (``peerpool.economics.percentile.nearest_rank_k``, exact rational
arithmetic). Here each included sample also gets its rank, so the evidence can list the
discarded top ``n - k`` samples and mark the billed one. Equal values are ranked by interval
start; the billed value does not depend on that order, only which of equal samples is marked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from peerpool.economics.percentile import Percent, nearest_rank_k

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Ranked:
    """One series of interval values ranked for the billing percentile."""

    values: npt.NDArray[np.float64] | IntArray
    ranks: IntArray  # 1-based ascending rank of each row; 0 where the row is not counted
    n: int
    k: int  # 0 when n == 0

    @property
    def billed_row(self) -> int:
        """Row index of the billed sample, -1 when nothing is counted."""
        if self.n == 0:
            return -1
        return int(np.flatnonzero(self.ranks == self.k)[0])

    @property
    def discarded(self) -> int:
        return self.n - self.k

    def classes(self) -> list[str]:
        """``billed``, ``discarded`` (above the billed rank), ``kept`` or ``excluded`` per row."""
        out: list[str] = []
        k = self.k
        for rank in self.ranks.tolist():
            if rank == 0:
                out.append("excluded")
            elif rank == k:
                out.append("billed")
            elif rank > k:
                out.append("discarded")
            else:
                out.append("kept")
        return out

    def top_rows(self) -> list[int]:
        """Rows of ranks ``n`` down to ``k``: the discarded samples, then the billed one."""
        if self.n == 0:
            return []
        by_rank = np.argsort(self.ranks, kind="stable")
        counted = by_rank[self.ranks[by_rank] > 0]
        return [int(i) for i in counted[self.k - 1 :][::-1]]


def rank(
    values: npt.NDArray[np.float64] | IntArray,
    interval_s: IntArray,
    included: npt.NDArray[np.bool_],
    pct: Percent = 95,
) -> Ranked:
    """Rank the included rows by (value, interval start) and find the billed rank ``k``."""
    rows = np.flatnonzero(included)
    order = rows[np.lexsort((interval_s[rows], values[rows]))]
    ranks = np.zeros(len(values), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1, dtype=np.int64)
    n = len(order)
    return Ranked(values, ranks, n, nearest_rank_k(n, pct) if n else 0)
