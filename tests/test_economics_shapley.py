"""Shapley value of the 95th-percentile cost game: hand cases, brute force over orderings, axioms,
and the Monte Carlo estimate against exact values with its stated error bound."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from peerpool.economics.errors import EconomicsError
from peerpool.economics.game import PercentileGame, shapley_exact, shapley_from_values
from peerpool.economics.pricing import PriceSchedule, PriceTier
from peerpool.economics.shapley_mc import _Kernel, shapley_monte_carlo
from peerpool.economics.synthetic import member_traffic


def _series(length: int, **points: float) -> list[float]:
    """A series of zeros with the given ``t<index>=value`` points."""
    out = [0.0] * length
    for key, value in points.items():
        out[int(key[1:])] = value
    return out


def _brute_force(traffic: np.ndarray, cost=lambda p: p, pct: int = 95) -> np.ndarray:
    """Shapley by definition: average marginal cost over all n! orderings, with the percentile
    taken by sorting (rank ceil(pct/100 * T), written independently of the library)."""
    traffic = np.asarray(traffic, dtype=float)
    if traffic.ndim == 2:
        traffic = traffic[None]
    _, n, t = traffic.shape
    k = -(-pct * t // 100)  # ceil for integers

    def v(members: tuple[int, ...]) -> float:
        if not members:
            return 0.0
        sums = traffic[:, list(members), :].sum(axis=1)
        return float(cost(max(float(np.sort(s)[k - 1]) for s in sums)))

    total = np.zeros(n)
    count = 0
    for order in itertools.permutations(range(n)):
        for pos, member in enumerate(order):
            total[member] += v(tuple(sorted(order[: pos + 1]))) - v(tuple(sorted(order[:pos])))
        count += 1
    return total / count


def test_two_members_by_hand() -> None:
    # 20 intervals, pct 95: k = ceil(19) = 19, i.e. the second highest value is billed.
    # A: 10 at t0, 8 at t1, 1 elsewhere   -> q(A) = 8
    # B: 9 at t2, 7 at t3, 1 elsewhere    -> q(B) = 7
    # A+B: 10 (t0), 8 (t1), 10 (t2), 8 (t3), 2 elsewhere -> sorted desc 10, 10, 8, ... -> q = 10
    # phi_A = 1/2 [v(A) + v(AB) - v(B)] = 1/2 [8 + 3] = 5.5 ; phi_B = 1/2 [7 + 2] = 4.5
    a = [10.0, 8.0] + [1.0] * 18
    b = [1.0, 1.0, 9.0, 7.0] + [1.0] * 16
    game = PercentileGame.build([a, b], ["A", "B"])
    assert game.coalition_percentile([0]) == 8.0
    assert game.coalition_percentile([1]) == 7.0
    assert game.grand_percentile() == 10.0
    assert shapley_exact(game) == pytest.approx([5.5, 4.5], abs=1e-12)


def test_three_members_by_hand() -> None:
    # 20 intervals, second highest billed.
    # A: 6 at t0, t1 -> q=6 ; B: 4 at t1, t2 -> q=4 ; C: 5 at t2, t3 -> q=5
    # AB: t0=6 t1=10 t2=4 -> 6 ; AC: 6 6 5 5 -> 6 ; BC: t1=4 t2=9 t3=5 -> 5 ; ABC: 6 10 9 5 -> 9
    # phi_A = 6/3 + (6-4)/6 + (6-5)/6 + (9-5)/3 = 23/6
    # phi_B = 4/3 + (6-6)/6 + (5-5)/6 + (9-6)/3 = 14/6
    # phi_C = 5/3 + (6-6)/6 + (5-4)/6 + (9-6)/3 = 17/6      sum = 54/6 = 9 = v(ABC)
    a = _series(20, t0=6, t1=6)
    b = _series(20, t1=4, t2=4)
    c = _series(20, t2=5, t3=5)
    game = PercentileGame.build([a, b, c], ["A", "B", "C"])
    phi = shapley_exact(game)
    assert phi == pytest.approx([23 / 6, 14 / 6, 17 / 6], abs=1e-12)
    assert phi.sum() == pytest.approx(9.0)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_exact_equals_brute_force_over_orderings(n: int) -> None:
    rng = np.random.default_rng(n)
    traffic = rng.lognormal(3, 1, (n, 40)) * rng.lognormal(0, 1, (n, 1))
    game = PercentileGame.build(traffic, [f"m{i}" for i in range(n)])
    assert shapley_exact(game) == pytest.approx(_brute_force(traffic), rel=1e-12, abs=1e-9)


def test_exact_with_tiered_price_and_two_directions_equals_brute_force() -> None:
    """Cost = buy-alone price with volume tiers (concave); bill = max(in95, out95)."""
    rng = np.random.default_rng(11)
    traffic = rng.lognormal(4, 0.8, (2, 5, 30))
    schedule = PriceSchedule(
        (
            PriceTier(Decimal(0), Decimal(3), Decimal(4)),
            PriceTier(Decimal(150), Decimal(2), Decimal(3)),
            PriceTier(Decimal(400), Decimal(1), Decimal(2)),
        ),
        fixed_monthly=Decimal(50),
    )

    def by_hand(p: float) -> float:  # min over tiers of price * max(p, tier minimum), plus fees
        return 50 + min(3 * max(p, 0), 2 * max(p, 150), 1 * max(p, 400))

    game = PercentileGame.build(traffic, [f"m{i}" for i in range(5)], cost=schedule.alone_cost_array)
    expected = _brute_force(traffic, cost=by_hand)
    assert shapley_exact(game) == pytest.approx(expected, rel=1e-12)


def test_axioms_efficiency_symmetry_null_player() -> None:
    rng = np.random.default_rng(3)
    traffic = rng.lognormal(2, 1, (7, 60))
    traffic[3] = traffic[1]  # members 1 and 3 are interchangeable
    traffic[5] = 0.0  # member 5 never sends anything
    game = PercentileGame.build(traffic, [f"m{i}" for i in range(7)])
    phi = shapley_exact(game)
    assert phi.sum() == pytest.approx(game.grand_percentile(), rel=1e-12)  # efficiency
    assert phi[1] == pytest.approx(phi[3], rel=1e-12)  # symmetry
    assert phi[5] == 0.0  # null player


def test_additivity() -> None:
    """phi(v + w) = phi(v) + phi(w) for two games on the same players (e.g. two providers' bills)."""
    rng = np.random.default_rng(5)
    n = 6
    t1 = rng.lognormal(2, 1, (n, 50))
    t2 = rng.lognormal(1, 1.5, (n, 50))
    masks = range(1 << n)

    def values(traffic: np.ndarray, scale: float) -> np.ndarray:
        k = math.ceil(0.95 * 50)
        out = np.zeros(1 << n)
        for m in masks:
            members = [i for i in range(n) if m >> i & 1]
            if members:
                out[m] = scale * np.sort(traffic[members].sum(axis=0))[k - 1]
        return out

    v, w = values(t1, 0.8), values(t2, 1.3)
    assert shapley_from_values(v + w, n) == pytest.approx(
        shapley_from_values(v, n) + shapley_from_values(w, n), rel=1e-12
    )
    g1 = PercentileGame.build(t1, [f"m{i}" for i in range(n)], cost=lambda p: 0.8 * p)
    assert shapley_exact(g1) == pytest.approx(shapley_from_values(v, n), rel=1e-12)


def test_exact_shapley_is_exact_in_rationals_for_integer_traffic() -> None:
    """With integer rates the Shapley value is a rational number; compare with Fractions."""
    rng = np.random.default_rng(8)
    n = 4
    traffic = rng.integers(0, 50, (n, 20)).astype(float)
    k = 19
    weight = {s: Fraction(math.factorial(s) * math.factorial(n - s - 1), math.factorial(n)) for s in range(n)}

    def v(members: tuple[int, ...]) -> Fraction:
        if not members:
            return Fraction(0)
        return Fraction(int(np.sort(traffic[list(members)].sum(axis=0))[k - 1]))

    expected = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        total = Fraction(0)
        for size in range(n):
            for coalition in itertools.combinations(others, size):
                total += weight[size] * (v(tuple(sorted((*coalition, i)))) - v(coalition))
        expected.append(float(total))
    game = PercentileGame.build(traffic, [f"m{i}" for i in range(n)])
    assert shapley_exact(game) == pytest.approx(expected, rel=1e-12)


def test_game_rejects_bad_traffic() -> None:
    with pytest.raises(EconomicsError, match="gap policy"):
        PercentileGame.build([[1.0, float("nan")]], ["A"])
    with pytest.raises(EconomicsError, match="negative"):
        PercentileGame.build([[1.0, -1.0]], ["A"])
    with pytest.raises(EconomicsError, match="2 member rows but 1"):
        PercentileGame.build([[1.0], [2.0]], ["A"])
    big = PercentileGame.build(np.ones((21, 3)), [f"m{i}" for i in range(21)])
    with pytest.raises(EconomicsError, match="Monte Carlo"):
        shapley_exact(big)


# --- Monte Carlo -------------------------------------------------------------------------


def _traffic_kind(kind: str, directions: int, n: int, t: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "lognormal":
        return rng.lognormal(0, 1, (directions, n, t)) * rng.lognormal(0, 1.5, (1, n, 1))
    if kind == "exchange":
        base = member_traffic(n, t, seed=int(rng.integers(1000)))
        return np.stack([base * (1 + 0.3 * d) for d in range(directions)])
    if kind == "ties":  # small integers: many equal sums around the billed sample
        return rng.integers(0, 5, (directions, n, t)).astype(float)
    bursty = rng.lognormal(0, 0.3, (directions, n, t))  # bursts of x50 in 5 random intervals each
    for i in range(n):
        bursty[:, i, rng.integers(0, t, 5)] *= 50
    return bursty


@pytest.mark.parametrize(
    ("kind", "directions", "n", "t", "chunk"),
    [
        ("lognormal", 1, 23, 300, 4),
        ("lognormal", 2, 23, 300, 4),
        ("exchange", 1, 29, 600, 8),
        ("exchange", 2, 17, 200, 3),
        ("ties", 1, 19, 40, 5),
        ("ties", 2, 12, 40, 1),
        ("bursty", 1, 27, 200, 6),
        ("bursty", 2, 28, 200, 8),
    ],
)
def test_chain_marginals_equal_direct_computation(
    kind: str, directions: int, n: int, t: int, chunk: int
) -> None:
    """One chain's permutation and targeted marginals, recomputed coalition by coalition.

    The kernel finds percentiles among candidate intervals and narrow bands; recomputing each
    coalition's percentile over all intervals with ``PercentileGame.value`` must agree.
    """
    rng = np.random.default_rng([n, t, directions, len(kind)])
    traffic = _traffic_kind(kind, directions, n, t, rng)
    game = PercentileGame.build(traffic, [f"m{i}" for i in range(n)])
    kernel = _Kernel(game, chunk=chunk)
    perm = rng.permutation(n)
    strata = 8
    step = rng.choice([0, 1, 2, 4, 8], n)
    y, count = kernel.chain(perm, strata, step, np.random.default_rng(1))
    y_perm_only, _ = kernel.chain(perm, strata, np.zeros(n, dtype=np.int64), np.random.default_rng(1))
    # permutation marginals, directly
    values = [game.value(list(perm[:j])) for j in range(n + 1)]
    direct = np.empty(n)
    direct[perm] = np.diff(values)
    assert y_perm_only == pytest.approx(direct, rel=1e-12, abs=1e-9)
    # targeted samples: redraw the same sizes and offsets, then take "the first z of the order
    # without the member" as the coalition
    r2 = np.random.default_rng(1)
    active = np.flatnonzero(step > 0)
    lo = (np.arange(strata) * n) // strata
    hi = ((np.arange(strata) + 1) * n) // strata
    sizes = lo + (r2.random(strata) * (hi - lo)).astype(int)
    offsets = (r2.random(active.size) * step[active]).astype(int)
    targeted = np.zeros(n)
    expected_count = 0
    for member, offset in zip(active, offsets, strict=True):
        for k in range(strata):
            if (k - offset) % step[member]:
                continue
            others = [m for m in perm if m != member][: sizes[k]]
            targeted[member] += (
                strata * (hi[k] - lo[k]) / n * (game.value([*others, member]) - game.value(others))
            )
            expected_count += 1
    assert count == expected_count
    assert y - y_perm_only == pytest.approx(targeted, rel=1e-12, abs=1e-9)


def _realistic_game(n: int, seed: int) -> PercentileGame:
    # two days of 5-minute intervals from the synthetic exchange: daily cycles, log-normal sizes
    traffic = member_traffic(n, 576, seed=seed)
    return PercentileGame.build(traffic, [f"m{i:02d}" for i in range(n)])


def test_monte_carlo_covers_exact_values_within_stated_bound() -> None:
    """95% intervals of the estimate contain the exact Shapley value ~95% of the time.

    Three games of 11 members (2^11 coalitions, exact by enumeration), two seeds each: 66
    member intervals. With true coverage 95% the count of misses is Binomial(66, 0.05) (mean
    3.3); at least 58 of 66 covered fails with probability < 1%.
    """
    covered = 0
    total = 0
    for game_seed in (1, 2, 3):
        game = _realistic_game(11, game_seed)
        exact = shapley_exact(game)
        for seed in (10, 20):
            result = shapley_monte_carlo(game, 0.02, seed=seed, pilot_chains=16, batch_chains=8, strata=16)
            assert result.converged, result.stop_reason
            assert (result.relative_half_width <= 0.02 + 1e-12).all()
            covered += int(np.sum(np.abs(result.raw_estimate - exact) <= result.half_width))
            total += game.n
            # efficiency: the reported estimate adds up to v(N) exactly (up to float rounding)
            assert result.estimate.sum() == pytest.approx(result.grand_value, rel=1e-12)
            # and the efficiency correction stays well inside the stated bound
            assert np.all(np.abs(result.estimate - result.raw_estimate) <= result.half_width)
    assert covered >= 58, f"{covered}/{total} intervals covered the exact value"


def test_plain_permutation_sampling_also_converges_to_exact() -> None:
    game = _realistic_game(8, 4)
    exact = shapley_exact(game)
    result = shapley_monte_carlo(game, 0.05, seed=3, targeted=False, max_chains=5000)
    assert result.targeted_samples == 0
    assert result.converged
    assert np.max(np.abs(result.raw_estimate - exact) / exact) < 0.1


def test_monte_carlo_is_reproducible_and_reports_limits() -> None:
    game = _realistic_game(9, 5)
    kwargs = {"seed": 7, "max_chains": 40, "pilot_chains": 8, "batch_chains": 8, "strata": 16}
    a = shapley_monte_carlo(game, 0.001, **kwargs)
    b = shapley_monte_carlo(game, 0.001, **kwargs)
    assert np.array_equal(a.raw_estimate, b.raw_estimate)
    assert not a.converged
    assert "limit of 40 chains" in a.stop_reason


def test_monte_carlo_with_two_workers_matches_exact() -> None:
    game = _realistic_game(10, 6)
    exact = shapley_exact(game)
    result = shapley_monte_carlo(game, 0.03, seed=1, workers=2, pilot_chains=8, batch_chains=8, strata=16)
    assert result.converged
    assert np.all(np.abs(result.raw_estimate - exact) <= 2 * result.half_width)
