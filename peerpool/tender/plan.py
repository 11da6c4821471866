"""The tender plan: everything the report shows, computed from the marts and the tiers file.

Steps: pick the billing months with enough coverage; per month, the pool's 95th under the
contracts' direction rule and the pooling dividend; forecast the pool (and every member with
3 or more months); optimise the commit per offer and plan one- to three-provider scenarios
over the forecast; share the latest month's bill by every method, with each member's cost of
buying alone beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt

from peerpool.economics import allocation
from peerpool.economics.commit import (
    CommitEvaluation,
    Offer,
    Scenario,
    commit_curve,
    optimal_commit,
    plan_scenarios,
)
from peerpool.economics.forecast import Forecast, forecast_monthly, month_index, month_label
from peerpool.economics.game import PercentileGame, shapley_exact
from peerpool.economics.pooling import PoolingDividend, pooling_dividend
from peerpool.economics.pricing import CENT, float_decimal, to_decimal
from peerpool.economics.shapley_mc import MonteCarloResult, shapley_monte_carlo
from peerpool.errors import InputError
from peerpool.tender.source import MonthTraffic, TransitMarts
from peerpool.tender.tiers import TenderSettings

Echo = Callable[[str], None]
MIN_HISTORY = 3  # months a forecast needs
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MonthSummary:
    month: str
    direction_rule: str
    coverage: float
    bill: Decimal
    capacity_cost: Decimal
    dividend: PoolingDividend
    alone_cost: Decimal  # members buying alone at the reference offer
    pool_cost: Decimal  # the pool buying alone at the reference offer


@dataclass(frozen=True)
class MemberShare:
    member: str
    own_p95_mbps: float
    alone: Decimal
    proportional: Decimal
    capacity: Decimal
    peak: Decimal
    shapley: Decimal
    shapley_value: float  # v-units (currency) of the game
    shapley_half_width: float  # 95% half-width (0 when exact)


@dataclass
class TenderPlan:
    serving: str
    timezone: str
    currency: str
    reference_offer: str
    months: list[MonthSummary]
    skipped_months: list[str]
    start_month: str
    horizon: int
    pool_forecast: Forecast | None  # None with fewer than MIN_HISTORY months
    member_forecasts: dict[str, Forecast]
    member_forecast_notes: dict[str, str]
    best_commits: list[CommitEvaluation]
    curves: dict[str, list[CommitEvaluation]]
    scenarios: list[Scenario]
    share_month: str
    shares: list[MemberShare]
    shapley_method: str
    shapley_mc: MonteCarloResult | None
    notes: list[str] = field(default_factory=list)


def _rule(contract_rules: list[str], notes: list[str], month: str) -> str:
    rules = sorted(set(contract_rules))
    if len(rules) == 1:
        return rules[0]
    notes.append(f"{month}: contracts use different direction rules ({', '.join(rules)}); the pool uses max")
    return "max"


def build_plan(
    serving: Path,
    settings: TenderSettings,
    horizon: int,
    *,
    seed: int = 0,
    workers: int = 1,
    echo: Echo = lambda _: None,
) -> TenderPlan:
    """Compute the tender plan (no files written)."""
    notes: list[str] = []
    reference = settings.alone_offer()
    price = reference.buy_alone_schedule()
    with TransitMarts(serving) as marts:
        timezone = marts.timezone()
        months_available = marts.bill_months()
        if not months_available:
            raise InputError(
                f"{serving}: fct_transit_bill_monthly has no rows; there is nothing to plan from"
            )
        summaries: list[MonthSummary] = []
        skipped: list[str] = []
        latest: tuple[MonthTraffic, str] | None = None  # only the last month's samples are kept
        for month in months_available:
            contracts = marts.contracts(month)
            coverage = min(
                (c.intervals_used / c.intervals_in_month for c in contracts if c.intervals_in_month),
                default=0.0,
            )
            if float_decimal(coverage) < settings.min_month_coverage:
                skipped.append(f"{month} ({coverage:.0%} of the month's intervals)")
                continue
            echo(f"reading {month}")
            traffic = marts.month_traffic(month, timezone)
            rule = _rule([c.direction_rule for c in contracts], notes, month)
            directions = traffic.billed_directions(rule)
            div = pooling_dividend(directions, traffic.members)
            alone = sum((price.alone_cost(to_decimal(p)) for p in div.member_p95_mbps), Decimal(0))
            bill = sum((c.total_cost for c in contracts), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
            capacity = sum((c.commit_cost for c in contracts), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
            summaries.append(
                MonthSummary(
                    month,
                    rule,
                    coverage,
                    bill,
                    min(capacity, bill),
                    div,
                    alone,
                    price.alone_cost(to_decimal(div.pool_p95_mbps)),
                )
            )
            latest = (traffic, rule)
        if not summaries:
            raise InputError(
                f"{serving}: no billing month has {settings.min_month_coverage:.0%} of its intervals "
                f"(skipped: {', '.join(skipped)}); "
                "lower tender.min_month_coverage to plan from partial months"
            )
        member_history = marts.member_monthly_p95()
    if skipped:
        notes.append("months left out for low coverage: " + ", ".join(skipped))
    last = summaries[-1].month
    start = settings.start_month or month_label(month_index(last) + 1)
    lead = month_index(start) - month_index(last) - 1
    if lead < 0:
        raise InputError(f"tender.start_month {start} is not after the last month of data ({last})")
    total_horizon = lead + horizon
    pool_fc: Forecast | None = None
    member_fc: dict[str, Forecast] = {}
    member_notes: dict[str, str] = {}
    best: list[CommitEvaluation] = []
    curves: dict[str, list[CommitEvaluation]] = {}
    scenarios: list[Scenario] = []
    if len(summaries) < MIN_HISTORY:
        notes.append(
            f"only {len(summaries)} month(s) of history: no forecast, commit or scenarios (they need "
            f"{MIN_HISTORY} months); the pooling dividend and the cost sharing are complete"
        )
    else:
        echo(f"forecasting {total_horizon} months from {len(summaries)} month(s) of history")
        pool_fc = forecast_monthly(
            [s.month for s in summaries],
            [s.dividend.pool_p95_mbps for s in summaries],
            total_horizon,
            seed=seed,
            series="pool",
        )
        member_fc, member_notes = _member_forecasts(
            member_history, {s.month for s in summaries}, total_horizon, seed
        )
        echo("optimising commits and scenarios")
        samples = pool_fc.costing_samples()[:, lead:]
        fitting = [o for o in settings.offers if o.min_term_months <= horizon]
        best = [optimal_commit(o, samples, start) for o in fitting]
        curves = {o.provider: commit_curve(o, samples, start, _grid(o, samples)) for o in fitting}
        scenarios = plan_scenarios(
            settings.offers,
            samples,
            start,
            max_providers=settings.max_providers,
            min_share=settings.min_share,
            share_step=settings.share_step,
            site_shares=settings.site_shares or None,
        )
    for o in settings.offers:
        if o.min_term_months > horizon:
            notes.append(
                f"{o.provider}: minimum term {o.min_term_months} months exceeds the {horizon}-month plan; "
                "not priced (run with a longer --months)"
            )
    share_summary = summaries[-1]
    assert latest is not None and latest[0].month == share_summary.month
    traffic, rule = latest
    echo(f"sharing the {share_summary.month} bill among {len(traffic.members)} members")
    shares, method, mc = _shares(share_summary, traffic, rule, settings, seed, workers)
    if mc is not None and not mc.converged:
        notes.append(f"Shapley Monte Carlo: {mc.stop_reason}; half-widths are in the table")
    return TenderPlan(
        serving=str(serving),
        timezone=timezone,
        currency=settings.currency,
        reference_offer=reference.provider,
        months=summaries,
        skipped_months=skipped,
        start_month=start,
        horizon=horizon,
        pool_forecast=pool_fc,
        member_forecasts=member_fc,
        member_forecast_notes=member_notes,
        best_commits=best,
        curves=curves,
        scenarios=scenarios,
        share_month=share_summary.month,
        shares=shares,
        shapley_method=method,
        shapley_mc=mc,
        notes=notes,
    )


def _member_forecasts(
    history: dict[str, list[tuple[str, float, int]]], usable: set[str], horizon: int, seed: int
) -> tuple[dict[str, Forecast], dict[str, str]]:
    """Forecast every member with 3 or more usable months with traffic; note the others."""
    forecasts: dict[str, Forecast] = {}
    notes: dict[str, str] = {}
    for member, rows in sorted(history.items()):
        kept = [(m, p) for m, p, _ in rows if m in usable]
        with_traffic = sum(1 for _, p in kept if p > 0)
        if with_traffic < MIN_HISTORY:
            notes[member] = f"{with_traffic} month(s) with traffic: no forecast"
            continue
        forecasts[member] = forecast_monthly(
            [m for m, _ in kept], [p for _, p in kept], horizon, seed=seed, series=member, draws=1000
        )
    return forecasts, notes


def _grid(offer: Offer, samples: FloatArray, points: int = 41) -> list[Decimal]:
    """Commits from below the lowest likely month to above the highest, on the offer's step."""
    lo = float(np.quantile(samples.min(axis=1), 0.05)) * 0.8
    hi = float(np.quantile(samples.max(axis=1), 0.99)) * 1.1
    step = offer.commit_step_mbps
    values = sorted(
        {
            max(offer.schedule.min_commit_mbps, (float_decimal(v) / step).to_integral_value() * step)
            for v in np.linspace(lo, hi, points)
        }
    )
    return values


def _shares(
    summary: MonthSummary,
    traffic: MonthTraffic,
    rule: str,
    settings: TenderSettings,
    seed: int,
    workers: int,
) -> tuple[list[MemberShare], str, MonteCarloResult | None]:
    members = list(traffic.members)
    directions = traffic.billed_directions(rule)
    price = settings.alone_offer().buy_alone_schedule()
    full = PercentileGame.build(directions, members, cost=price.alone_cost_array)
    own = dict(zip(members, full.standalone_percentiles().tolist(), strict=True))
    # a member without any transit traffic this month buys nothing: it is left out of the game
    # (with fixed fees in v, it would otherwise be charged its share of them)
    used = np.flatnonzero(directions.max(axis=(0, 2)) > 0)
    game = PercentileGame.build(
        directions[:, used, :], [members[i] for i in used], cost=price.alone_cost_array
    )
    mc: MonteCarloResult | None = None
    started = time.perf_counter()
    phi_used: FloatArray
    if game.n <= settings.shapley_exact_max:
        phi_used = shapley_exact(game) if game.n else np.zeros(0)
        half_used = np.zeros(game.n)
        method = f"exact over all {2**game.n} coalitions ({time.perf_counter() - started:.1f} s)"
    else:
        mc = shapley_monte_carlo(
            game,
            settings.shapley_rel_target,
            seed=seed,
            workers=workers,
            time_budget_s=settings.shapley_time_budget_s,
        )
        phi_used, half_used = mc.estimate, mc.half_width
        method = (
            f"Monte Carlo over {mc.chains} random orders and {mc.targeted_samples:,} targeted samples "
            f"({mc.elapsed_s:.1f} s): {mc.stop_reason}; max relative 95% half-width "
            f"{float(mc.relative_half_width.max()):.2%}"
        )
    if len(used) < len(members):
        method += f"; {len(members) - len(used)} member(s) without transit traffic left out of the game"
    phi = np.zeros(len(members))
    half = np.zeros(len(members))
    phi[used], half[used] = phi_used, half_used
    bill = summary.bill
    # the peak method looks at the billed direction that sets the pool's bill
    pools = directions.sum(axis=1)
    k = int(np.argmax([np.sort(p)[full.kth] for p in pools]))
    by = {
        "proportional": allocation.proportional_p95(bill, own),
        "capacity": allocation.capacity_share(
            bill,
            summary.capacity_cost,
            own,
            {m: v for m, v in settings.reserved_mbps.items() if m in own},
        ),
        "peak": allocation.peak_contribution(bill, directions[k], members),
        "shapley": allocation.shapley_shares(bill, dict(zip(members, phi.tolist(), strict=True))),
    }
    used_set = set(used.tolist())
    rows = [
        MemberShare(
            member=m,
            own_p95_mbps=own[m],
            alone=price.alone_cost(to_decimal(own[m])) if i in used_set else Decimal("0.00"),
            proportional=by["proportional"][m],
            capacity=by["capacity"][m],
            peak=by["peak"][m],
            shapley=by["shapley"][m],
            shapley_value=float(phi[i]),
            shapley_half_width=float(half[i]),
        )
        for i, m in enumerate(members)
    ]
    return rows, method, mc
