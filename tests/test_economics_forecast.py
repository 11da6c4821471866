"""Forecast: recovers known trend and seasonality within its bands; says what it cannot do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from peerpool.economics.errors import EconomicsError
from peerpool.economics.forecast import add_months, forecast_monthly, month_index
from peerpool.economics.stats import student_t_quantile


def _months(start: str, count: int) -> list[str]:
    return [add_months(start, i) for i in range(count)]


def _truth(t: np.ndarray, growth: float, amplitude: float, start_month0: int) -> np.ndarray:
    """1000 Mbps growing ``growth`` a month, times a seasonal factor peaking in December."""
    month_of_year = (start_month0 + t) % 12
    season = np.exp(amplitude * np.cos(2 * np.pi * (month_of_year - 11) / 12))
    return 1000.0 * (1 + growth) ** t * season


def test_student_t_quantiles_match_the_printed_table() -> None:
    # two-sided 95% critical values from any statistics table
    table = {1: 12.706, 2: 4.303, 3: 3.182, 5: 2.571, 10: 2.228, 30: 2.042}
    for df, value in table.items():
        assert student_t_quantile(0.975, df) == pytest.approx(value, abs=5e-4)


def test_month_arithmetic() -> None:
    assert add_months("2024-11", 3) == "2025-02"
    assert month_index("2025-01") - month_index("2024-12") == 1
    with pytest.raises(EconomicsError, match="YYYY-MM"):
        month_index("2025-13")


def test_recovers_trend_and_seasonality_from_three_years() -> None:
    """36 months with 2% monthly growth, a +-15% seasonal swing and 3% noise."""
    growth, amplitude = 0.02, 0.15
    hits = 0
    checks = 0
    growth_covered = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = np.arange(48)
        truth = _truth(t, growth, amplitude, start_month0=0)  # history starts in January
        observed = truth * np.exp(rng.normal(0, 0.03, t.size))
        fc = forecast_monthly(_months("2021-01", 36), observed[:36], horizon=12, seed=seed)
        assert fc.seasonality == "monthly factors"
        assert fc.months[0] == "2024-01"
        lo, hi = fc.monthly_growth_interval
        growth_covered += lo <= growth <= hi
        low, high = fc.quantile(0.025), fc.quantile(0.975)
        hits += int(np.sum((observed[36:] >= low) & (observed[36:] <= high)))
        checks += 12
        # the median path follows the noise-free truth (trend and seasonality recovered): each
        # month's factor is estimated from 3 noisy values (SE ~ 0.03 * sqrt(1/3 + 1/3) ~ 2.5%
        # against the trend), so the mean error over the year stays under ~3.5%
        assert np.mean(np.abs(fc.median / truth[36:] - 1)) < 0.035
    # 95% bands: out of 240 future noisy points about 228 inside; below 216 would be very unlikely
    assert hits >= 216, f"{hits}/{checks}"
    assert growth_covered >= 17  # the 95% interval of the growth rate covers 2% in ~19 of 20 runs


def test_eighteen_months_uses_an_annual_harmonic() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(18)
    observed = _truth(t, 0.01, 0.1, 0) * np.exp(rng.normal(0, 0.02, 18))
    fc = forecast_monthly(_months("2023-01", 18), observed, horizon=6)
    assert fc.seasonality == "annual harmonic"
    assert any("harmonic" in note for note in fc.notes)
    assert fc.monthly_growth_interval[0] < 0.01 < fc.monthly_growth_interval[1]


def test_three_months_falls_back_to_trend_with_wide_bands() -> None:
    # exact growth of 5% a month plus small noise
    observed = [100.0, 105.5, 110.0]
    fc = forecast_monthly(["2025-01", "2025-02", "2025-03"], observed, horizon=12)
    assert fc.seasonality == "none"
    assert fc.degrees_of_freedom == 1
    assert any("trend only" in note for note in fc.notes)
    assert any("very wide" in note for note in fc.notes)
    # growth estimate from the log-linear fit by hand: slope of log(values) on 0, 1, 2
    slope = (math.log(110.0) - math.log(100.0)) / 2
    assert fc.monthly_growth == pytest.approx(math.exp(slope) - 1, rel=1e-9)
    # with 1 degree of freedom the 95% band in a year is far wider than with 12 months of the same
    # kind of data
    long_t = np.arange(12)
    long = 100 * 1.05**long_t * np.exp(np.random.default_rng(2).normal(0, 0.01, 12))
    fc_long = forecast_monthly(_months("2024-04", 12), long, horizon=12)
    width_short = math.log(fc.quantile(0.975)[-1] / fc.quantile(0.025)[-1])
    width_long = math.log(fc_long.quantile(0.975)[-1] / fc_long.quantile(0.025)[-1])
    assert width_short > 5 * width_long


def test_forecast_refuses_too_little_history() -> None:
    with pytest.raises(EconomicsError, match="at least 3 months"):
        forecast_monthly(["2025-01", "2025-02"], [1.0, 2.0], horizon=3)
    with pytest.raises(EconomicsError, match="at least 3 months"):
        forecast_monthly(["2025-01", "2025-02", "2025-03"], [0.0, 2.0, 3.0], horizon=3)
    with pytest.raises(EconomicsError, match="twice"):
        forecast_monthly(["2025-01", "2025-01", "2025-03"], [1.0, 2.0, 3.0], horizon=3)


def test_costing_samples_are_winsorised_at_the_99th_percentile() -> None:
    # 4 months with 1 degree of freedom: a log-Student-t predictive with a very heavy tail
    fc = forecast_monthly(
        ["2025-01", "2025-02", "2025-03", "2025-04"], [100.0, 130.0, 115.0, 160.0], horizon=6
    )
    capped = fc.costing_samples()
    top = np.quantile(fc.samples, 0.99, axis=0)
    assert np.all(capped <= top + 1e-9)
    assert np.all(capped.max(axis=0) == pytest.approx(top))
    # below the cap nothing moves: medians and 95% quantiles are the same
    assert np.quantile(capped, 0.5, axis=0) == pytest.approx(np.quantile(fc.samples, 0.5, axis=0))
    assert np.quantile(capped, 0.95, axis=0) == pytest.approx(np.quantile(fc.samples, 0.95, axis=0))
    # the raw sample mean is dominated by a few paths; the capped one is not
    assert capped.mean() < fc.samples.mean()
