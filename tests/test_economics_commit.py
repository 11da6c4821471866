"""Commit optimiser and scenarios: cases solved on paper, and a brute-force grid."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from peerpool.economics.commit import (
    Offer,
    commit_curve,
    evaluate_commit,
    index_path,
    optimal_commit,
    plan_scenarios,
)
from peerpool.economics.errors import EconomicsError
from peerpool.economics.pricing import PriceSchedule, PriceTier

D = Decimal


def _offer(*tiers: tuple[str, str, str], provider: str = "X", **kwargs: object) -> Offer:
    schedule = PriceSchedule(tuple(PriceTier(D(a), D(b), D(c)) for a, b, c in tiers))
    return Offer(provider=provider, schedule=schedule, **kwargs)  # type: ignore[arg-type]


# One month, ten equally likely paths: 95th = 100 (5 paths), 200 (3 paths), 300 (2 paths).
THREE_POINT = np.array([[100.0]] * 5 + [[200.0]] * 3 + [[300.0]] * 2)


def test_single_tier_optimum_by_hand() -> None:
    # price 1, burst 2.5 per Mbps. Expected cost E(C) = C + 2.5 * E[max(0, p - C)]:
    #   C = 100: 100 + 2.5 * (0.3 * 100 + 0.2 * 200) = 100 + 175 = 275
    #   C = 200: 200 + 2.5 * (0.2 * 100)             = 200 +  50 = 250   <- minimum
    #   C = 300: 300                                                = 300
    # (newsvendor: commit where P(p > C) <= price / burst = 0.4: P(p > 200) = 0.2)
    offer = _offer(("0", "1", "2.5"))
    best = optimal_commit(offer, THREE_POINT, "2026-01")
    assert best.commit_mbps == D(200)
    assert best.expected_cost == D("250.00")
    assert best.expected_overage_cost == D("50.00")
    assert best.overage_probability == pytest.approx(0.2)
    assert evaluate_commit(offer, THREE_POINT, "2026-01", D(100)).expected_cost == D("275.00")
    assert evaluate_commit(offer, THREE_POINT, "2026-01", D(300)).expected_cost == D("300.00")


def test_volume_tier_moves_the_optimum_by_hand() -> None:
    # add a tier from 250 Mbps at price 0.8, burst 2: its own newsvendor point (P(p > C) <= 0.4)
    # is 200, below the tier, so within the tier the best is its minimum, 250:
    #   E(250) = 0.8 * 250 + 2 * (0.2 * 50) = 200 + 20 = 220  < 250 (best of the first tier)
    offer = _offer(("0", "1", "2.5"), ("250", "0.8", "2"))
    best = optimal_commit(offer, THREE_POINT, "2026-01")
    assert best.commit_mbps == D(250)
    assert best.tier.price_per_mbps == D("0.8")
    assert best.expected_cost == D("220.00")
    assert best.overage_probability == pytest.approx(0.2)


def test_cpi_index_path_by_hand() -> None:
    # start November 2025, index 105.0 in January: Nov 1, Dec 1, Jan 1.05, ..., Jan 2027 1.1025
    path = index_path("2025-11", 15, D("105.0"), 1)
    assert path[:3] == [D(1), D(1), D("1.05")]
    assert path[13] == D("1.05")  # December 2026
    assert path[14] == D("1.1025")  # January 2027: once per calendar year
    # a contract starting in January is not indexed in its first month, only a year later
    jan = index_path("2026-01", 13, D("104"), 1)
    assert jan[0] == D(1) and jan[11] == D(1) and jan[12] == D("1.04")


def test_expected_cost_with_cpi_and_fees_by_hand() -> None:
    # December and January, 100 Mbps every path, commit 100 at 1 PLN, fees 2 sites x (5 + 5):
    # December 100 + 20 = 120; January (100 + 20) * 1.05 = 126; total 246
    offer = _offer(
        ("0", "1", "2"),
        port_fee_monthly=D(5),
        cross_connect_fee_monthly=D(5),
        sites=("KTW", "WAW"),
        cpi_index=D("105.0"),
    )
    samples = np.full((4, 2), 100.0)
    result = evaluate_commit(offer, samples, "2025-12", D(100))
    assert result.expected_cost == D("246.00")
    assert result.expected_monthly_cost == D("123.00")
    assert result.effective_pln_per_mbps == D("1.2300")


def test_optimum_beats_every_commit_on_a_dense_grid() -> None:
    """Log-normal paths over 12 months, three tiers, CPI: brute force over commits 0..3000."""
    rng = np.random.default_rng(4)
    samples = 1000 * np.exp(rng.normal(0, 0.25, (500, 12)) + np.linspace(0, 0.3, 12))
    offer = _offer(("0", "1.2", "1.8"), ("900", "1.0", "1.5"), ("1600", "0.85", "1.3"), cpi_index=D("103"))
    index = np.array([float(i) for i in index_path("2026-06", 12, D("103"), 1)])

    def expected(commit: float) -> float:  # the formula, written out independently
        tier = offer.schedule.tier_for(D(commit))
        price, burst = float(tier.price_per_mbps), float(tier.burst_price_per_mbps)
        monthly = commit * price + burst * np.maximum(0.0, samples - commit)
        return float((monthly.mean(axis=0) * index).sum())

    best = optimal_commit(offer, samples, "2026-06")
    grid = min(expected(c) for c in range(0, 3001))
    assert float(best.expected_cost) <= grid + 0.01
    assert float(best.expected_cost) == pytest.approx(expected(float(best.commit_mbps)), abs=0.01)
    curve = commit_curve(offer, samples, "2026-06", [D(c) for c in (500, 1000, 2000)])
    for point, c in zip(curve, (500, 1000, 2000), strict=True):
        assert float(point.expected_cost) == pytest.approx(expected(c), abs=0.01)
        assert point.overage_probability == pytest.approx(float((samples > c).mean()))


def test_commit_step_rounds_to_sellable_commits() -> None:
    rng = np.random.default_rng(1)
    samples = 12_345 * np.exp(rng.normal(0, 0.1, (300, 6)))
    best = optimal_commit(_offer(("0", "1", "1.5"), commit_step_mbps=D(1000)), samples, "2026-01")
    assert best.commit_mbps % 1000 == 0


def test_scenarios_by_hand() -> None:
    # Every path: 1000 Mbps each month, no indexation. With burst above price the best commit is the carried
    # traffic itself, so each provider costs share * 1000 * tier price + its fees.
    #   A: 1.00 PLN/Mbps, fee 100 at one site            -> alone 1000 + 100 = 1100
    #   B: 0.90 below 600 Mbps, 0.70 from 600, fee 300   -> alone  700 + 300 = 1000
    #   A 30% + B 70% (min share 30%): 300 + 100 + 0.70 * 700 + 300 = 1190
    #   (A 40% + B 60%: 400 + 100 + 0.7 * 600 + 300 = 1220; B below 60% pays 0.90: worse)
    a = _offer(("0", "1.00", "1.50"), provider="A", port_fee_monthly=D(100), sites=("KTW",))
    b = _offer(("0", "0.90", "1.50"), ("600", "0.70", "1.20"), provider="B", port_fee_monthly=D(300))
    samples = np.full((10, 12), 1000.0)  # a 12-month plan: both minimum terms fit
    scenarios = plan_scenarios(
        [a, b], samples, "2026-03", max_providers=2, min_share=D("0.3"), share_step=D("0.1")
    )
    by_name = {s.name: s for s in scenarios}
    assert [s.name for s in scenarios] == ["B 100%", "A 100%", "A 30% + B 70%"]
    assert by_name["B 100%"].expected_monthly_cost == D("1000.00")
    assert by_name["A 100%"].expected_monthly_cost == D("1100.00")
    assert by_name["A 30% + B 70%"].expected_monthly_cost == D("1190.00")
    assert by_name["B 100%"].effective_pln_per_mbps == D("1.0000")
    assert [e.commit_mbps for e in by_name["A 30% + B 70%"].commits] == [D(300), D(700)]


def test_scenario_port_warning_and_terms() -> None:
    a = _offer(("0", "1", "2"), provider="A", sites=("KTW", "WAW"), port_mbps=D(1000))
    long = _offer(("0", "0.1", "0.2"), provider="L", min_term_months=36)
    samples = np.full((10, 12), 1500.0)
    scenarios = plan_scenarios([a, long], samples, "2026-01", site_shares={"KTW": D("0.9"), "WAW": D("0.1")})
    assert [s.name for s in scenarios] == ["A 100%"]  # L's 36-month term does not fit 12 months
    loads = {sl.site: sl.expected_peak_mbps for sl in scenarios[0].site_loads}
    assert loads == {"KTW": pytest.approx(1350.0), "WAW": pytest.approx(150.0)}
    assert any("KTW" in note and "80%" in note for note in scenarios[0].notes)
    with pytest.raises(EconomicsError, match="no offers"):
        plan_scenarios([], samples, "2026-01")
