"""Forecast of monthly 95th percentiles, with uncertainty bands from simulation.

Model: **log-linear trend regression with seasonal terms, and the Bayesian predictive
distribution under the standard non-informative prior** (equivalently, the classical
prediction interval of a linear regression, drawn as joint sample paths):

    log p95(month t) = a + b t + season(month of year) + e_t,   e_t ~ N(0, s^2) independent.

Why this and not Holt-Winters: a purchasing group has a short history (3 to 36 months).
Exponential smoothing needs its smoothing constants estimated, and on a dozen points they are
not identified; a regression on log traffic has two parameters for the trend (a constant
monthly growth rate, which is how transit traffic grows) and makes its parameter uncertainty
explicit. On short histories that uncertainty dominates, and the predictive simulation puts
it in the bands: s^2 is drawn from its scaled inverse chi-square posterior, the coefficients
from their normal posterior given s^2, then each future month adds its own noise. Each draw
is a whole path (one trend for all future months), which is what a commit over a term needs.

How much seasonality the history can carry:

* fewer than 3 months: refused (a trend with noise needs at least 3 points);
* 3 to 14 months: trend only, said in ``notes``; with 3 to 5 months the bands are very wide
  (1 to 3 degrees of freedom) and the notes say so;
* 15 to 23 months: trend plus one annual harmonic (a sine and a cosine);
* 24 months or more: trend plus a factor for each calendar month (each seen twice or more).

Expected costs use ``costing_samples``: the paths winsorised at each month's 99th percentile,
because the mean of a log-Student-t distribution does not exist (see that method).

Not modelled: autocorrelated residuals, level shifts (a big member joining or leaving: model
it as its own series), traffic saturating a port.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError
from peerpool.economics.stats import student_t_quantile

FloatArray = npt.NDArray[np.float64]
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MODEL_NAME = "log-linear trend regression with seasonal terms, Bayesian predictive simulation"


def month_index(month: str) -> int:
    """'YYYY-MM' as a month count (year * 12 + month - 1)."""
    match = MONTH.match(month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise EconomicsError(f"month {month!r} is not YYYY-MM (e.g. 2025-03)")
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def add_months(month: str, count: int) -> str:
    return month_label(month_index(month) + count)


@dataclass(frozen=True)
class Forecast:
    """Joint sample paths of future monthly 95ths (Mbps) and their summary."""

    series: str
    history_months: tuple[str, ...]
    history_mbps: tuple[float, ...]
    months: tuple[str, ...]
    samples: FloatArray  # (draws x future months), Mbps
    seasonality: str  # "none", "annual harmonic", "monthly factors"
    monthly_growth: float  # point estimate of exp(b) - 1
    monthly_growth_interval: tuple[float, float]  # 95% interval
    residual_sd_log: float
    degrees_of_freedom: int
    notes: tuple[str, ...] = field(default=())
    model: str = MODEL_NAME

    def quantile(self, q: float) -> FloatArray:
        result: FloatArray = np.quantile(self.samples, q, axis=0)
        return result

    def costing_samples(self, tail: float = 0.99) -> FloatArray:
        """Paths for expected costs: each month winsorised at its ``tail`` quantile.

        The predictive distribution of a log-linear model is log-Student-t, whose mean does not
        exist: a handful of extreme paths would decide any expected cost. Clipping each month at
        its 99th percentile keeps expectations finite and stable; quantiles below it (the bands,
        overage probabilities at sensible commits) are unchanged.
        """
        if not 0.5 < tail <= 1.0:
            raise EconomicsError(f"tail quantile {tail} must be in (0.5, 1]")
        cap = np.quantile(self.samples, tail, axis=0)
        result: FloatArray = np.minimum(self.samples, cap[np.newaxis, :])
        return result

    @property
    def median(self) -> FloatArray:
        return self.quantile(0.5)

    @property
    def annual_growth(self) -> float:
        return (1.0 + self.monthly_growth) ** 12 - 1.0


def _design(t: FloatArray, months_of_year: npt.NDArray[np.int64], seasonality: str) -> FloatArray:
    cols = [np.ones_like(t), t]
    if seasonality == "annual harmonic":
        angle = 2 * np.pi * months_of_year / 12.0
        cols += [np.sin(angle), np.cos(angle)]
    elif seasonality == "monthly factors":
        for m in range(1, 12):
            cols.append((months_of_year == m).astype(np.float64))
    return np.column_stack(cols)


def _choose_seasonality(n: int) -> tuple[str, list[str]]:
    if n >= 24:
        return "monthly factors", []
    if n >= 15:
        return "annual harmonic", [
            f"{n} months of history: seasonality as one annual harmonic, not monthly factors"
        ]
    notes = [f"{n} months of history: trend only, seasonality not estimated (needs 15 months or more)"]
    if n < 6:
        notes.append(
            f"only {n} months: {n - 2} degree(s) of freedom, so the bands are very wide; "
            "treat the forecast as a rough guide"
        )
    return "none", notes


def forecast_monthly(
    months: Sequence[str],
    p95_mbps: Sequence[float],
    horizon: int,
    *,
    draws: int = 4000,
    seed: int = 0,
    series: str = "pool",
) -> Forecast:
    """Forecast ``horizon`` months after the last history month from monthly 95ths (Mbps)."""
    if horizon < 1:
        raise EconomicsError(f"forecast horizon {horizon} must be at least one month")
    if len(months) != len(p95_mbps):
        raise EconomicsError(f"{series}: {len(months)} months but {len(p95_mbps)} values")
    pairs = sorted((month_index(m), float(v)) for m, v in zip(months, p95_mbps, strict=True))
    idx = np.array([p[0] for p in pairs], dtype=np.int64)
    if len(set(idx.tolist())) != idx.size:
        raise EconomicsError(f"{series}: a month appears twice in the history")
    values = np.array([p[1] for p in pairs])
    positive = values > 0
    notes: list[str] = []
    if not positive.all():
        notes.append(f"{int((~positive).sum())} month(s) with no traffic left out of the fit")
        idx, values = idx[positive], values[positive]
    n = int(idx.size)
    if n < 3:
        raise EconomicsError(
            f"{series}: {n} month(s) with traffic; a forecast needs at least 3 months of monthly 95ths"
        )
    seasonality, more = _choose_seasonality(n)
    notes += more
    t = (idx - idx[0]).astype(np.float64)
    x = _design(t, idx % 12, seasonality)
    y = np.log(values)
    p = x.shape[1]
    df = n - p
    if df < 1:
        raise EconomicsError(f"{series}: {n} months cannot fit {p} parameters")
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    s2 = float(resid @ resid) / df
    if s2 <= 0:
        s2 = 1e-12  # a perfect fit: keep the bands from collapsing to a point
        notes.append("the history fits the trend exactly; bands reflect almost no noise")
    rng = np.random.default_rng(seed)
    sigma2 = df * s2 / rng.chisquare(df, size=draws)
    chol = np.linalg.cholesky(xtx_inv)
    z = rng.standard_normal((draws, p))
    betas = beta + np.sqrt(sigma2)[:, None] * (z @ chol.T)
    future_idx = idx[-1] + np.arange(1, horizon + 1)
    xf = _design((future_idx - idx[0]).astype(np.float64), future_idx % 12, seasonality)
    noise = rng.standard_normal((draws, horizon)) * np.sqrt(sigma2)[:, None]
    samples = np.exp(betas @ xf.T + noise)
    b_se = math.sqrt(s2 * xtx_inv[1, 1])
    t975 = student_t_quantile(0.975, df)
    return Forecast(
        series=series,
        history_months=tuple(month_label(int(i)) for i in idx),
        history_mbps=tuple(float(v) for v in values),
        months=tuple(month_label(int(i)) for i in future_idx),
        samples=samples,
        seasonality=seasonality,
        monthly_growth=math.exp(beta[1]) - 1.0,
        monthly_growth_interval=(
            math.exp(beta[1] - t975 * b_se) - 1.0,
            math.exp(beta[1] + t975 * b_se) - 1.0,
        ),
        residual_sd_log=math.sqrt(s2),
        degrees_of_freedom=df,
        notes=tuple(notes),
    )
