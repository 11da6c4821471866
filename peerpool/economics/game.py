"""The 95th-percentile cost game and its exact Shapley value.

Players are the members of the pool. A coalition ``S`` buying transit alone is billed on the
95th percentile (nearest rank) of the per-interval sum of its members' traffic, so

    v(S) = cost(q(S)),   q(S) = max over billed directions d of P95( sum_{i in S} x_{d,i}(t) ),

with ``cost`` the tender's price function (``PriceSchedule.alone_cost_array``) and
``v(empty) = 0``. With one billed direction (the usual case once the contract's direction rule
has picked inbound, outbound or in+out) ``d`` has a single value; the contract rule
``max(in95, out95)`` is the game with two directions.

The Shapley value (Shapley 1953) is each member's marginal cost averaged over all orders in
which the pool could have been formed:

    phi_i = sum_{S not containing i} |S|! (n-|S|-1)! / n!  * (v(S + i) - v(S)).

Exact computation needs ``v`` of all ``2^n`` coalitions (Stanojevic, Laoutaris, Rodriguez,
IMC 2010): fine up to ~15 members. The per-coalition sums are built incrementally: members
are split into a "low" group whose ``2^L`` subset sums are built once (each from a smaller
subset plus one member) and a "high" group; every coalition is one low sum plus one high sum,
so no sum is recomputed from scratch. Larger pools use ``peerpool.economics.shapley_mc``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError
from peerpool.economics.percentile import Percent, nearest_rank_k

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CostFunction = Callable[[FloatArray], FloatArray]

EXACT_MAX_MEMBERS = 20  # 2^20 coalitions: minutes, and the practical ceiling of enumeration


def _identity_cost(p: FloatArray) -> FloatArray:
    return p


@dataclass(frozen=True)
class PercentileGame:
    """Traffic of the members (directions x members x intervals, Mbps) and the cost function."""

    traffic: FloatArray
    members: tuple[str, ...]
    pct: Percent = 95
    cost: CostFunction = field(default=_identity_cost)

    @staticmethod
    def build(
        traffic: npt.ArrayLike,
        members: Sequence[str],
        pct: Percent = 95,
        cost: CostFunction | None = None,
    ) -> PercentileGame:
        """Validate and normalise: a (members x intervals) matrix becomes one direction."""
        arr = np.ascontiguousarray(np.asarray(traffic, dtype=np.float64))
        if arr.ndim == 2:
            arr = arr[np.newaxis, :, :]
        if arr.ndim != 3:
            raise EconomicsError(
                "traffic must be (members x intervals) or (directions x members x intervals); "
                f"got {arr.shape}"
            )
        if arr.shape[1] != len(members):
            raise EconomicsError(f"traffic has {arr.shape[1]} member rows but {len(members)} member ids")
        if len(set(members)) != len(members):
            raise EconomicsError("member ids must be unique")
        if arr.shape[2] == 0:
            raise EconomicsError("traffic has no intervals: nothing to bill")
        if not np.isfinite(arr).all():
            raise EconomicsError(
                "traffic contains NaN or infinite rates: apply the gap policy before building the game"
            )
        if (arr < 0).any():
            raise EconomicsError("traffic contains negative rates: rates are >= 0 (check counter deltas)")
        nearest_rank_k(arr.shape[2], pct)  # validates pct
        return PercentileGame(arr, tuple(members), pct, cost or _identity_cost)

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def intervals(self) -> int:
        return int(self.traffic.shape[2])

    @property
    def kth(self) -> int:
        """0-based index of the billed sample in ascending order."""
        return nearest_rank_k(self.intervals, self.pct) - 1

    def percentile_of_sums(self, sums: FloatArray) -> FloatArray:
        """Billed percentile of each summed series; ``sums`` is (directions x series x intervals)."""
        q = np.partition(sums, self.kth, axis=-1)[..., self.kth]
        result: FloatArray = q.max(axis=0)
        return result

    def coalition_percentile(self, coalition: Sequence[int]) -> float:
        """q(S) for one coalition given by member indices (0 for the empty coalition)."""
        idx = list(coalition)
        if not idx:
            return 0.0
        sums = self.traffic[:, idx, :].sum(axis=1)[:, np.newaxis, :]
        return float(self.percentile_of_sums(sums)[0])

    def value(self, coalition: Sequence[int]) -> float:
        """v(S) = cost(q(S)), with v(empty) = 0."""
        if not list(coalition):
            return 0.0
        return float(self.cost(np.array([self.coalition_percentile(coalition)]))[0])

    def standalone_percentiles(self) -> FloatArray:
        """Each member's own billed percentile (max over directions)."""
        return self.percentile_of_sums(self.traffic)

    def grand_percentile(self) -> float:
        return self.coalition_percentile(range(self.n))


def all_coalition_percentiles(game: PercentileGame, low_bits: int = 10) -> FloatArray:
    """q(S) for every coalition, indexed by bit mask (bit i = member i); q(empty) = 0."""
    n = game.n
    if n > EXACT_MAX_MEMBERS:
        raise EconomicsError(
            f"exact Shapley over {n} members needs 2^{n} coalitions; use the Monte Carlo estimate "
            f"(shapley_monte_carlo) above {EXACT_MAX_MEMBERS} members"
        )
    d, _, t = game.traffic.shape
    low = min(n, low_bits)
    high = n - low
    # subset sums of the low group, each built from a smaller subset plus one member
    low_sums = np.zeros((d, 1 << low, t))
    for mask in range(1, 1 << low):
        top = mask.bit_length() - 1
        low_sums[:, mask, :] = low_sums[:, mask ^ (1 << top), :] + game.traffic[:, top, :]
    q = np.empty(1 << n)
    high_sum = np.zeros((d, t))
    high_sums = [high_sum]
    for hmask in range(1, 1 << high):
        top = hmask.bit_length() - 1
        high_sums.append(high_sums[hmask ^ (1 << top)] + game.traffic[:, low + top, :])
    for hmask in range(1 << high):
        sums = low_sums + high_sums[hmask][:, np.newaxis, :]
        q[hmask << low : (hmask + 1) << low] = game.percentile_of_sums(sums)
    q[0] = 0.0
    return q


def coalition_values(game: PercentileGame, q: FloatArray) -> FloatArray:
    """v(S) for every mask from the coalition percentiles (v(empty) = 0)."""
    v: FloatArray = np.asarray(game.cost(q), dtype=np.float64).copy()
    v[0] = 0.0
    return v


def _popcounts(n: int) -> IntArray:
    counts = np.zeros(1 << n, dtype=np.int64)
    for bit in range(n):
        counts += (np.arange(1 << n) >> bit) & 1
    return counts


def shapley_from_values(v: FloatArray, n: int) -> FloatArray:
    """Exact Shapley value of a game given as v over all 2^n bit masks."""
    if v.shape != (1 << n,):
        raise EconomicsError(f"a game over {n} players has {1 << n} coalition values, got {v.shape}")
    sizes = _popcounts(n)
    weights = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])
    masks = np.arange(1 << n)
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = float(np.sum(weights[sizes[without]] * (v[without | (1 << i)] - v[without])))
    return phi


def shapley_exact(game: PercentileGame) -> FloatArray:
    """Exact Shapley value of the 95th-percentile cost game (enumerates all coalitions)."""
    q = all_coalition_percentiles(game)
    return shapley_from_values(coalition_values(game, q), game.n)
