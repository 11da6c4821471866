"""The commit optimiser: how much to commit, with whom, at which expected cost and risk.

Input is the forecast's joint sample paths of future monthly 95ths of the pool (Mbps) and
the providers' offers. A commit ``C`` over months ``m = 1..H`` costs, on each path,

    sum_m index_m * ( C * price(C) + burst(C) * max(0, p95_m - C) + fixed fees ),

with ``index_m`` the CPI indexation multiplier in force in month ``m``. The expected cost is a
convex piecewise-linear function of ``C`` within a price tier, whose slope is
``sum_m index_m * (price - burst * P(p95_m > C))``: the optimum is the smallest sample value
where the index-weighted probability of exceeding it falls to ``price / burst`` (the
newsvendor quantile). Across tiers the optimiser compares each tier's optimum (held inside
the tier's range) and the tier minimums, rounded to the sellable commit step, and keeps the
cheapest by exact expected cost over the samples.

CPI indexation (Polish operator documents): prices may be indexed by CPI at most once per
calendar year; an index of 105.0 multiplies prices by 1.05. Here the offer's assumed annual
index applies in ``indexation_month`` of every calendar year after the one the term starts
in, to every charge of the month (usage and fees).

Scenarios: one to three providers, each carrying a fixed share of every interval (at least
``min_share`` each, for redundancy) and each committing separately; a provider's fees are
paid at every site it is connected at. Assumes a provider's 95th is its share of the pool's
95th (traffic engineering splits by share): a planning approximation, said in the report.

Expectations are estimates over simulated paths, so they are computed in float and shown in
``Decimal`` rounded to the grosz; nothing here ends on a bill.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import numpy.typing as npt

from peerpool.economics.errors import EconomicsError
from peerpool.economics.forecast import month_index
from peerpool.economics.pricing import CENT, PriceSchedule, PriceTier, float_decimal

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Offer:
    """One provider's tender offer."""

    provider: str
    schedule: PriceSchedule
    min_term_months: int = 12
    port_fee_monthly: Decimal = Decimal(0)  # per site
    cross_connect_fee_monthly: Decimal = Decimal(0)  # per site
    sites: tuple[str, ...] = ()
    port_mbps: Decimal | None = None  # port capacity at each site
    cpi_index: Decimal = Decimal(100)  # assumed annual index; 105.0 means x1.05
    indexation_month: int = 1  # month of the year when indexation applies
    commit_step_mbps: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not 1 <= self.indexation_month <= 12:
            raise EconomicsError(f"offer {self.provider}: indexation_month must be 1..12")
        if self.cpi_index <= 0:
            raise EconomicsError(f"offer {self.provider}: cpi_index must be positive (e.g. 105.0)")
        if self.commit_step_mbps <= 0:
            raise EconomicsError(f"offer {self.provider}: commit_step_mbps must be positive")
        if self.min_term_months < 1:
            raise EconomicsError(f"offer {self.provider}: min_term_months must be at least 1")

    @property
    def fixed_monthly(self) -> Decimal:
        sites = max(1, len(self.sites))
        return self.schedule.fixed_monthly + sites * (self.port_fee_monthly + self.cross_connect_fee_monthly)

    def buy_alone_schedule(self) -> PriceSchedule:
        """The offer's tiers with every fixed fee: what any buyer pays for a month on its own."""
        return PriceSchedule(self.schedule.tiers, self.fixed_monthly)


def index_path(start_month: str, months: int, cpi_index: Decimal, indexation_month: int) -> list[Decimal]:
    """Price multiplier for each month of a term starting in ``start_month``.

    Indexation happens in ``indexation_month`` of each calendar year after the start year,
    so at most once per calendar year and never in the year the prices were agreed.
    """
    start = month_index(start_month)
    factor = cpi_index / Decimal(100)
    path: list[Decimal] = []
    current = Decimal(1)
    for k in range(months):
        idx = start + k
        if k > 0 and idx % 12 == indexation_month - 1 and idx // 12 > start // 12:
            current *= factor
        path.append(current)
    return path


@dataclass(frozen=True)
class CommitEvaluation:
    """Expected cost and overage risk of one commit over the evaluation horizon."""

    provider: str
    commit_mbps: Decimal
    tier: PriceTier
    months: int
    expected_cost: Decimal  # over the horizon
    expected_overage_cost: Decimal
    overage_probability: float  # mean over months of P(95th > commit)
    worst_month_overage_probability: float
    expected_p95_mbps: float  # mean over months and paths of the carried 95th
    cost_p95: Decimal | None = None  # 95% quantile of the horizon's cost over paths

    @property
    def expected_monthly_cost(self) -> Decimal:
        return (self.expected_cost / self.months).quantize(CENT)

    @property
    def effective_pln_per_mbps(self) -> Decimal:
        """Expected monthly cost per Mbps of expected 95th actually carried."""
        if self.expected_p95_mbps <= 0:
            return Decimal(0)
        return (self.expected_cost / self.months / float_decimal(self.expected_p95_mbps)).quantize(
            Decimal("0.0001")
        )


class _Paths:
    """Samples of monthly 95ths (paths x months) prepared for fast expected-overage queries."""

    def __init__(self, samples: FloatArray, index: Sequence[Decimal]) -> None:
        arr = np.asarray(samples, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise EconomicsError(f"forecast samples must be (paths x months), got shape {arr.shape}")
        if arr.shape[1] != len(index):
            raise EconomicsError(f"{arr.shape[1]} forecast months but {len(index)} index factors")
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise EconomicsError("forecast samples must be finite and non-negative")
        self.samples = arr
        self.index = np.array([float(i) for i in index])
        self.months = arr.shape[1]
        weights = np.broadcast_to(self.index / arr.shape[0], arr.shape).ravel()
        order = np.argsort(arr.ravel(), kind="stable")
        self.values = arr.ravel()[order]
        self.weights = weights[order]  # index_m / paths: sums to sum(index)
        self.cum_w = np.concatenate([[0.0], np.cumsum(self.weights)])
        self.cum_wv = np.concatenate([[0.0], np.cumsum(self.weights * self.values)])
        self.index_sum = float(self.index.sum())

    def weighted_overage(self, scale: float, commit: float) -> float:
        """sum_m index_m * E[max(0, scale * p95_m - commit)]."""
        if scale <= 0:
            return 0.0
        j = int(np.searchsorted(self.values, commit / scale, side="right"))
        tail_w = self.cum_w[-1] - self.cum_w[j]
        tail_wv = self.cum_wv[-1] - self.cum_wv[j]
        return float(scale * tail_wv - commit * tail_w)

    def newsvendor(self, scale: float, ratio: float) -> float:
        """Smallest sample value (scaled) where the weighted exceedance share is <= ratio."""
        if ratio >= 1.0:
            return 0.0
        tail = (self.cum_w[-1] - self.cum_w[1:]) / self.index_sum  # share strictly above value j
        j = int(np.argmax(tail <= ratio + 1e-15))
        return float(scale * self.values[j])


def _evaluate(
    offer: Offer, paths: _Paths, scale: float, commit: Decimal, with_quantile: bool
) -> CommitEvaluation:
    tier = offer.schedule.tier_for(commit)
    c = float(commit)
    overage = paths.weighted_overage(scale, c)
    fixed = float(offer.fixed_monthly)
    usage = c * float(tier.price_per_mbps)
    expected = paths.index_sum * (usage + fixed) + float(tier.burst_price_per_mbps) * overage
    carried = paths.samples * scale
    exceed = (carried > c).mean(axis=0)
    cost_q: Decimal | None = None
    if with_quantile:
        monthly = usage + fixed + float(tier.burst_price_per_mbps) * np.maximum(0.0, carried - c)
        totals = monthly @ paths.index
        cost_q = float_decimal(float(np.quantile(totals, 0.95))).quantize(CENT)
    return CommitEvaluation(
        provider=offer.provider,
        commit_mbps=commit,
        tier=tier,
        months=paths.months,
        expected_cost=float_decimal(expected).quantize(CENT),
        expected_overage_cost=float_decimal(float(tier.burst_price_per_mbps) * overage).quantize(CENT),
        overage_probability=float(exceed.mean()),
        worst_month_overage_probability=float(exceed.max()),
        expected_p95_mbps=float(carried.mean()),
        cost_p95=cost_q,
    )


def _round_step(value: float, step: Decimal, rounding: str) -> Decimal:
    return (float_decimal(value) / step).to_integral_value(rounding=rounding) * step


def _optimal(offer: Offer, paths: _Paths, scale: float, with_quantile: bool = True) -> CommitEvaluation:
    tiers = offer.schedule.tiers
    candidates: set[Decimal] = set()
    for i, tier in enumerate(tiers):
        upper = tiers[i + 1].min_commit_mbps if i + 1 < len(tiers) else None
        burst = float(tier.burst_price_per_mbps)
        ratio = float(tier.price_per_mbps) / burst if burst > 0 else 2.0
        best = paths.newsvendor(scale, ratio)
        for rounding in (ROUND_FLOOR, ROUND_CEILING):
            c = max(_round_step(best, offer.commit_step_mbps, rounding), tier.min_commit_mbps)
            if upper is not None and c >= upper:
                c = _round_step(float(upper), offer.commit_step_mbps, ROUND_FLOOR)
                if c >= upper:
                    c -= offer.commit_step_mbps
                c = max(c, tier.min_commit_mbps)
            candidates.add(c)
        candidates.add(tier.min_commit_mbps)
    evaluations = [_evaluate(offer, paths, scale, c, False) for c in sorted(candidates)]
    best_eval = min(evaluations, key=lambda e: (e.expected_cost, e.commit_mbps))
    return _evaluate(offer, paths, scale, best_eval.commit_mbps, True) if with_quantile else best_eval


def optimal_commit(
    offer: Offer, samples: FloatArray, start_month: str, share: float = 1.0
) -> CommitEvaluation:
    """The commit with the lowest expected cost for ``share`` of the pool's forecast 95ths."""
    index = index_path(start_month, np.asarray(samples).shape[1], offer.cpi_index, offer.indexation_month)
    return _optimal(offer, _Paths(samples, index), share)


def evaluate_commit(
    offer: Offer, samples: FloatArray, start_month: str, commit_mbps: Decimal, share: float = 1.0
) -> CommitEvaluation:
    """Expected cost and overage risk of a given commit."""
    index = index_path(start_month, np.asarray(samples).shape[1], offer.cpi_index, offer.indexation_month)
    return _evaluate(offer, _Paths(samples, index), share, commit_mbps, True)


def commit_curve(
    offer: Offer, samples: FloatArray, start_month: str, commits: Sequence[Decimal], share: float = 1.0
) -> list[CommitEvaluation]:
    """Expected cost and overage risk over a range of commits (the report's commit curve)."""
    index = index_path(start_month, np.asarray(samples).shape[1], offer.cpi_index, offer.indexation_month)
    paths = _Paths(samples, index)
    return [_evaluate(offer, paths, share, c, False) for c in commits if c >= offer.schedule.min_commit_mbps]


@dataclass(frozen=True)
class SiteLoad:
    provider: str
    site: str
    expected_peak_mbps: float  # 97.5% quantile of the last month's carried 95th at the site
    port_mbps: Decimal | None

    @property
    def utilisation(self) -> float | None:
        return None if not self.port_mbps else self.expected_peak_mbps / float(self.port_mbps)


@dataclass(frozen=True)
class Scenario:
    """One way to buy: providers, their shares of the traffic, and their optimal commits."""

    providers: tuple[str, ...]
    shares: tuple[Decimal, ...]
    commits: tuple[CommitEvaluation, ...]
    expected_cost: Decimal
    cost_p95: Decimal
    expected_p95_mbps: float
    months: int
    site_loads: tuple[SiteLoad, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return " + ".join(f"{p} {int(s * 100)}%" for p, s in zip(self.providers, self.shares, strict=True))

    @property
    def expected_monthly_cost(self) -> Decimal:
        return (self.expected_cost / self.months).quantize(CENT)

    @property
    def effective_pln_per_mbps(self) -> Decimal:
        if self.expected_p95_mbps <= 0:
            return Decimal(0)
        return (self.expected_cost / self.months / float_decimal(self.expected_p95_mbps)).quantize(
            Decimal("0.0001")
        )


def _share_splits(count: int, min_share: Decimal, step: Decimal) -> list[tuple[Decimal, ...]]:
    if count == 1:
        return [(Decimal(1),)]
    units = int(Decimal(1) / step)
    low = int((min_share / step).to_integral_value(rounding=ROUND_CEILING))
    splits = []
    for parts in itertools.product(range(low, units + 1), repeat=count - 1):
        last = units - sum(parts)
        if last >= low:
            splits.append(tuple(Decimal(p) * step for p in (*parts, last)))
    return splits


def plan_scenarios(
    offers: Sequence[Offer],
    samples: FloatArray,
    start_month: str,
    *,
    max_providers: int = 3,
    min_share: Decimal = Decimal("0.2"),
    share_step: Decimal = Decimal("0.05"),
    site_shares: Mapping[str, Decimal] | None = None,
) -> list[Scenario]:
    """The best split for every combination of one to ``max_providers`` offers, cheapest first.

    Offers whose minimum term is longer than the forecast are left out (``optimal_commit``
    callers see the same rule); the tender plan lists them in its notes.
    """
    if not offers:
        raise EconomicsError("no offers to plan with: add [[offers]] to the tiers file")
    if not Decimal(0) < min_share <= Decimal(1) or not Decimal(0) < share_step <= Decimal(1):
        raise EconomicsError("min_share and share_step must be in (0, 1]")
    if len({o.provider for o in offers}) != len(offers):
        raise EconomicsError("each offer needs its own provider name")
    arr = np.asarray(samples, dtype=np.float64)
    horizon = arr.shape[1]
    prepared = {}
    for offer in offers:
        if offer.min_term_months > horizon:
            continue
        index = index_path(start_month, horizon, offer.cpi_index, offer.indexation_month)
        prepared[offer.provider] = (offer, _Paths(arr, index))
    scenarios: list[Scenario] = []
    names = sorted(prepared)
    for count in range(1, min(max_providers, len(names)) + 1):
        splits = _share_splits(count, min_share, share_step)
        if not splits:
            continue
        for combo in itertools.combinations(names, count):
            best: tuple[Decimal, tuple[Decimal, ...], list[CommitEvaluation]] | None = None
            for split in splits:
                evals = [
                    _optimal(prepared[p][0], prepared[p][1], float(s), False)
                    for p, s in zip(combo, split, strict=True)
                ]
                total = sum((e.expected_cost for e in evals), Decimal(0))
                if best is None or total < best[0]:
                    best = (total, split, evals)
            assert best is not None
            total, split, evals = best
            scenarios.append(_scenario(combo, split, evals, prepared, arr, site_shares))
    return sorted(scenarios, key=lambda s: (s.expected_cost, len(s.providers), s.providers))


def _scenario(
    combo: tuple[str, ...],
    split: tuple[Decimal, ...],
    evals: list[CommitEvaluation],
    prepared: Mapping[str, tuple[Offer, _Paths]],
    samples: FloatArray,
    site_shares: Mapping[str, Decimal] | None,
) -> Scenario:
    totals = np.zeros(samples.shape[0])
    loads: list[SiteLoad] = []
    notes: list[str] = []
    last_month_peak = float(np.quantile(samples[:, -1], 0.975))
    for provider, share, ev in zip(combo, split, evals, strict=True):
        offer, paths = prepared[provider]
        carried = samples * float(share)
        c = float(ev.commit_mbps)
        monthly = (
            c * float(ev.tier.price_per_mbps)
            + float(offer.fixed_monthly)
            + float(ev.tier.burst_price_per_mbps) * np.maximum(0.0, carried - c)
        )
        totals += monthly @ paths.index
        sites = offer.sites or ("(all)",)
        weights = [float(site_shares.get(s, 0)) if site_shares else 1.0 for s in sites]
        if sum(weights) <= 0:
            weights = [1.0] * len(sites)
            notes.append(f"{provider}: none of its sites has a traffic share; split evenly")
        for site, w in zip(sites, weights, strict=True):
            load = last_month_peak * float(share) * w / sum(weights)
            loads.append(SiteLoad(provider, site, load, offer.port_mbps))
            if offer.port_mbps and load > 0.8 * float(offer.port_mbps):
                notes.append(
                    f"{provider} at {site}: expected peak {load:,.0f} Mbps is above 80% of the "
                    f"{offer.port_mbps} Mbps port"
                )
    return Scenario(
        providers=combo,
        shares=split,
        commits=tuple(evals),
        expected_cost=sum((e.expected_cost for e in evals), Decimal(0)),
        cost_p95=float_decimal(float(np.quantile(totals, 0.95))).quantize(CENT),
        expected_p95_mbps=float(samples.mean()),
        months=samples.shape[1],
        site_loads=tuple(loads),
        notes=tuple(notes),
    )
