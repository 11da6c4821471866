"""Synthetic member traffic with the shape of a real exchange's transit pool.

Used by the benchmark, the tests of the Monte Carlo bound and the demo; never by a bill.
Each member gets a size (log-normal: a few big networks, a long tail of small ones), a kind
that sets its daily peak (eyeball networks in the evening, business and hosting networks in
office hours, content nearly flat), a weekend factor, multiplicative noise that is
autocorrelated from one 5-minute interval to the next and larger for small members (fewer
users make a noisier aggregate), and a few short bursts a month (backups, attacks, updates).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

KINDS = ("eyeball", "business", "content")
KIND_WEIGHTS = (0.7, 0.2, 0.1)


def member_traffic(
    members: int,
    intervals: int = 8640,
    *,
    seed: int = 0,
    median_mbps: float = 150.0,
    size_sigma: float = 1.2,
    interval_minutes: int = 5,
) -> FloatArray:
    """A (members x intervals) matrix of rates in Mbps."""
    rng = np.random.default_rng(seed)
    per_day = 24 * 60 // interval_minutes
    hours = (np.arange(intervals) % per_day) * interval_minutes / 60.0
    weekday = (np.arange(intervals) // per_day) % 7  # 0 = Monday
    weekend = weekday >= 5
    size = rng.lognormal(np.log(median_mbps), size_sigma, members)
    kind = rng.choice(len(KINDS), size=members, p=KIND_WEIGHTS)
    peak_hour = np.select(
        [kind == 0, kind == 1],
        [rng.normal(21.0, 1.0, members), rng.normal(13.0, 1.5, members)],
        rng.uniform(0, 24, members),
    )
    sharpness = np.select([kind == 0, kind == 1], [rng.uniform(1.5, 3.0, members), 2.0], 0.4)
    weekend_factor = np.select([kind == 0, kind == 1], [1.08, 0.65], 1.0)
    sigma = np.minimum(0.5, 0.05 + 0.4 / np.sqrt(size / 10.0))
    rho = 0.7
    out = np.empty((members, intervals))
    for i in range(members):
        angle = 2 * np.pi * (hours - peak_hour[i]) / 24.0
        shape = np.exp(sharpness[i] * (np.cos(angle) - 1.0))  # 1 at the peak
        daily = 0.25 + 0.75 * shape
        daily = np.where(weekend, daily * weekend_factor[i], daily)
        eps = rng.normal(0.0, 1.0, intervals)
        noise = np.empty(intervals)
        noise[0] = eps[0]
        scale = np.sqrt(1 - rho * rho)
        for t in range(1, intervals):
            noise[t] = rho * noise[t - 1] + scale * eps[t]
        series = size[i] * daily * np.exp(sigma[i] * noise - sigma[i] ** 2 / 2)
        for _ in range(rng.poisson(2.0)):
            start = int(rng.integers(0, intervals))
            length = int(rng.integers(1, 7))
            series[start : start + length] *= rng.uniform(2.0, 5.0)
        out[i] = series
    return out
