"""Cost-sharing methods: exact to the grosz, hand-checked, and the pooling dividend."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.economics.allocation import (
    apportion,
    apportion_quotas,
    capacity_share,
    peak_contribution,
    peak_intervals,
    proportional_p95,
    shapley_shares,
)
from peerpool.economics.errors import EconomicsError
from peerpool.economics.game import PercentileGame, shapley_exact
from peerpool.economics.pooling import pooling_dividend, pooling_dividends
from peerpool.economics.pricing import PriceSchedule, PriceTier

D = Decimal


def test_largest_remainder_ties_go_to_the_smaller_member_id() -> None:
    # 100.00 / 3 = 33.333...: each gets 33.33, the one grosz left goes to the smallest id
    assert apportion(D("100.00"), {"c": 1, "a": 1, "b": 1}) == {
        "a": D("33.34"),
        "b": D("33.33"),
        "c": D("33.33"),
    }
    # 0.05 split 1:1:1:1 -> 1.25 grosz each: floors 1 each, one grosz left, to "w"
    assert apportion(D("0.05"), {"x": 2, "w": 2, "z": 2, "y": 2})["w"] == D("0.02")
    # remainders decide before ids: 0.10 at 2:1 -> quotas 6.67 and 3.33 grosze -> 7 and 3
    assert apportion(D("0.10"), {"a": 1, "b": 2}) == {"a": D("0.03"), "b": D("0.07")}


def test_zero_weights_split_equally_and_bad_input_is_refused() -> None:
    assert apportion(D("1.00"), {"a": 0, "b": 0}) == {"a": D("0.50"), "b": D("0.50")}
    with pytest.raises(EconomicsError, match="negative"):
        apportion(D("1.00"), {"a": -1, "b": 2})
    with pytest.raises(EconomicsError, match="fractions of a grosz"):
        apportion(D("1.005"), {"a": 1})
    with pytest.raises(EconomicsError, match="not to the bill"):
        apportion_quotas(D("1.00"), {"a": Fraction(1, 2)})


@settings(max_examples=200, deadline=None)
@given(
    cents=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=40),
)
def test_apportion_adds_up_exactly_and_stays_within_a_grosz(cents: int, weights: list[float]) -> None:
    bill = D(cents) / 100
    named = {f"m{i:03d}": w for i, w in enumerate(weights)}
    shares = apportion(bill, named)
    assert sum(shares.values()) == bill
    total = sum(Fraction(w) for w in weights)
    for member, w in named.items():
        quota = Fraction(bill) * (Fraction(w) / total if total else Fraction(1, len(weights)))
        assert abs(Fraction(shares[member]) - quota) < Fraction(1, 100)


def test_proportional_by_hand() -> None:
    # 1,000.00 PLN at 95ths 100, 300, 600 Mbps -> 100, 300, 600 PLN
    assert proportional_p95(D("1000.00"), {"A": 100.0, "B": 300.0, "C": 600.0}) == {
        "A": D("100.00"),
        "B": D("300.00"),
        "C": D("600.00"),
    }


def test_capacity_share_by_hand() -> None:
    # bill 1,000.00 = capacity part 800.00 (commit + fees) + burst part 200.00
    # own 95ths A 100, B 200, C 300; reserved A 150, B 150 (C requires its own 300)
    # capacity: required 150 : 150 : 300 of 600 -> 200, 200, 400
    # burst: only B used more than it reserved (200 - 150 = 50) -> B pays all 200
    shares = capacity_share(D("1000.00"), D("800.00"), {"A": 100, "B": 200, "C": 300}, {"A": 150, "B": 150})
    assert shares == {"A": D("200.00"), "B": D("400.00"), "C": D("400.00")}
    # default required capacity = own 95th: same as proportional whatever the split of the bill
    default = capacity_share(D("999.99"), D("700.00"), {"A": 1, "B": 2, "C": 4})
    assert default == proportional_p95(D("999.99"), {"A": 1, "B": 2, "C": 4})
    with pytest.raises(EconomicsError, match="not in the pool"):
        capacity_share(D("10.00"), D("5.00"), {"A": 1}, {"Z": 3})
    with pytest.raises(EconomicsError, match="between 0 and the bill"):
        capacity_share(D("10.00"), D("11.00"), {"A": 1})


def _two_member_traffic() -> np.ndarray:
    # 20 intervals, second highest billed (k = 19)
    # A: 10 at t0, 8 at t1, 1 elsewhere; B: 9 at t2, 7 at t3, 1 elsewhere
    a = [10.0, 8.0] + [1.0] * 18
    b = [1.0, 1.0, 9.0, 7.0] + [1.0] * 16
    return np.array([a, b])


def test_peak_contribution_by_hand() -> None:
    traffic = _two_member_traffic()
    # pool: 11, 9, 10, 8, 2...: billed sample (2nd highest) = 10 -> peak intervals t0 (11), t2 (10)
    assert np.flatnonzero(peak_intervals(traffic.sum(axis=0))).tolist() == [0, 2]
    # A sends 10 + 1 = 11, B 1 + 9 = 10 in those intervals: 110.00 PLN -> 57.62 / 52.38
    # (110 * 11/21 = 57.619..., 110 * 10/21 = 52.380...)
    assert peak_contribution(D("110.00"), traffic, ["A", "B"]) == {"A": D("57.62"), "B": D("52.38")}


def test_shapley_shares_and_pooling_dividend_by_hand() -> None:
    traffic = _two_member_traffic()
    # pool: 11 9 10 8 2 ... -> q = 10; own: A 8, B 7 -> dividend 15 - 10 = 5 (1/3 of 15)
    div = pooling_dividend(traffic, ["A", "B"])
    assert div.member_p95_mbps == (8.0, 7.0)
    assert div.pool_p95_mbps == 10.0
    assert div.dividend_mbps == 5.0
    assert div.dividend_share == pytest.approx(1 / 3)
    # Shapley: phi_A = 1/2 [8 + (10 - 7)] = 5.5, phi_B = 1/2 [7 + (10 - 8)] = 4.5 -> 55% / 45%
    phi = shapley_exact(PercentileGame.build(traffic, ["A", "B"]))
    assert shapley_shares(D("100.00"), {"A": phi[0], "B": phi[1]}) == {"A": D("55.00"), "B": D("45.00")}
    # priced at 2 PLN/Mbps alone: members alone 2*8 + 2*7 = 30, pool 20, saving 10
    flat = PriceSchedule((PriceTier(D(0), D(2), D(3)),))
    assert div.priced(flat) == (D("30.00"), D("20.00"), D("10.00"))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    members=st.integers(2, 7),
    cents=st.integers(0, 10**8),
    capacity_fraction=st.fractions(min_value=0, max_value=1),
)
def test_every_method_adds_up_to_the_bill(
    seed: int, members: int, cents: int, capacity_fraction: Fraction
) -> None:
    rng = np.random.default_rng(seed)
    traffic = rng.lognormal(2, 1.5, (members, 40)) * (rng.random((members, 1)) > 0.2)
    ids = [f"AS{64500 + i}" for i in range(members)]
    bill = D(cents) / 100
    capacity = (bill * D(capacity_fraction.numerator) / D(capacity_fraction.denominator)).quantize(D("0.01"))
    capacity = min(capacity, bill)
    own = {m: float(np.sort(row)[37]) for m, row in zip(ids, traffic, strict=True)}  # k = ceil(38) = 38
    phi = shapley_exact(PercentileGame.build(traffic, ids))
    results = [
        proportional_p95(bill, own),
        capacity_share(bill, capacity, own, {ids[0]: 5.0}),
        peak_contribution(bill, traffic, ids),
        shapley_shares(bill, dict(zip(ids, phi, strict=True))),
    ]
    for shares in results:
        assert sum(shares.values()) == bill
        assert set(shares) == set(ids)
        assert all(v >= 0 for v in shares.values())


def test_pooling_dividends_per_month_and_provider() -> None:
    traffic = _two_member_traffic()
    periods = {
        ("2026-02", "cogent"): (["A", "B"], traffic * 2),
        ("2026-01", "arelion"): (["A", "B"], traffic),
        ("2026-01", "cogent"): (["A"], traffic[:1]),
    }
    result = pooling_dividends(periods)
    assert list(result) == [("2026-01", "arelion"), ("2026-01", "cogent"), ("2026-02", "cogent")]
    assert result[("2026-01", "arelion")].dividend_mbps == 5.0  # 8 + 7 - 10, as above
    assert result[("2026-02", "cogent")].dividend_mbps == 10.0  # everything doubled
    assert result[("2026-01", "cogent")].dividend_mbps == 0.0  # one member alone: nothing to pool
    # the rule max(in95, out95): member A's outbound is its inbound x 3, so A bills on outbound
    both = np.stack([traffic, traffic * np.array([[3.0], [0.5]])])
    div = pooling_dividend(both, ["A", "B"])
    # A: max(8, 24) = 24; B: max(7, 4.5) = 7; pool in: 10; pool out: 3A + 0.5B per interval:
    # t0 30.5, t1 24.5, t2 7.5, t3 6.5, else 3.5 -> second highest 24.5 -> pool = max(10, 24.5)
    assert div.member_p95_mbps == (24.0, 7.0)
    assert div.pool_p95_mbps == 24.5
