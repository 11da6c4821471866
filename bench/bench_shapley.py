"""Benchmark: Shapley value of the 95th-percentile cost game for 500 members over a month.

Run from the repository root (one command; appends a line to bench/RESULTS.md):

    .venvs/core/bin/python bench/bench_shapley.py                  # 500 members x 8,640 intervals
    .venvs/core/bin/python bench/bench_shapley.py --workers 1      # one process
    .venvs/core/bin/python bench/bench_shapley.py --members 200 --skip-checks

Traffic is synthetic but shaped like a transit pool (``peerpool.economics.synthetic``):
log-normal member sizes, eyeball/business/content daily cycles with different peak hours,
weekend factors, autocorrelated noise larger for small members, a few bursts a month. The
run targets a 95% half-width of 0.5% of every member's estimate and reports time (wall and
CPU, with the machine's load) and the stated half-widths (max and median).

Two independent checks of the stated bound follow:

1. exact Shapley values by enumeration of all 2^16 coalitions for 16 members over the same
   month, against Monte Carlo runs with three seeds: how many 95% intervals hold the exact
   value, and the largest error in units of the stated half-width;
2. on 60 members, a long reference run (0.2% target, about 6 times the samples) against a
   normal run (0.5%, another seed): the share of members whose difference is within the
   combined half-width sqrt(hw^2 + hw_ref^2), and the largest relative difference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peerpool.economics.game import PercentileGame, shapley_exact  # noqa: E402
from peerpool.economics.shapley_mc import MonteCarloResult, shapley_monte_carlo  # noqa: E402
from peerpool.economics.synthetic import member_traffic  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
MID = 60  # members of the reference-run check
REF_REL = 0.002  # its reference target


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _game(members: int, intervals: int, seed: int) -> PercentileGame:
    traffic = member_traffic(members, intervals, seed=seed)
    return PercentileGame.build(traffic, [f"m{i:03d}" for i in range(members)])


def _run(
    game: PercentileGame, rel: float, seed: int, workers: int, budget: float
) -> tuple[MonteCarloResult, float]:
    cpu0 = _cpu()
    result = shapley_monte_carlo(game, rel, seed=seed, workers=workers, time_budget_s=budget)
    return result, _cpu() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rel", type=float, default=0.005, help="target relative 95%% half-width")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=1200.0, help="time budget of the main run, s")
    parser.add_argument("--skip-checks", action="store_true", help="only the main run")
    parser.add_argument("--no-append", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    intervals = args.days * 288

    t0 = time.perf_counter()
    game = _game(args.members, intervals, args.seed)
    gen_s = time.perf_counter() - t0
    pool = float(game.grand_percentile())
    print(
        f"synthetic traffic {args.members} x {intervals} in {gen_s:.1f} s; pool 95th {pool:,.0f} Mbps",
        flush=True,
    )
    load0 = os.getloadavg()[0]
    result, cpu = _run(game, args.rel, args.seed, args.workers, args.budget)
    rel = result.relative_half_width
    print(
        f"main: {result.elapsed_s:.1f} s wall, {cpu:.1f} CPU s, {result.chains} chains, "
        f"{result.targeted_samples:,} targeted samples; max rel half-width {rel.max():.3%}, "
        f"median {np.median(rel):.3%}; {result.stop_reason}",
        flush=True,
    )
    line = (
        f"- {dt.date.today().isoformat()} bench_shapley {args.members} members x {intervals} intervals "
        f"(synthetic, pool 95th {pool:,.0f} Mbps), target {args.rel:.2%} at 95%: "
        f"{result.elapsed_s:.1f} s wall, {cpu:.1f} CPU s with {args.workers} worker(s), "
        f"{result.chains} chains + {result.targeted_samples:,} targeted samples; "
        f"stated half-width max {rel.max():.3%}, median "
        f"{np.median(rel):.3%} ({'converged' if result.converged else result.stop_reason})"
    )
    if not args.skip_checks:
        # 1. exact values on 16 members of the same kind of month
        small = _game(16, intervals, args.seed + 100)
        t0 = time.perf_counter()
        exact = shapley_exact(small)
        exact_s = time.perf_counter() - t0
        covered = 0
        worst = 0.0
        for s in (11, 12, 13):
            r = shapley_monte_carlo(small, args.rel, seed=s, workers=1)
            err = np.abs(r.raw_estimate - exact)
            covered += int(np.sum(err <= r.half_width))
            worst = max(worst, float(np.max(err / r.half_width)))
        print(f"check 1: exact 16 members in {exact_s:.1f} s; {covered}/48 intervals hold the exact value; "
              f"worst error {worst:.2f} half-widths", flush=True)  # fmt: skip
        # 2. long reference on 60 members
        mid = _game(MID, intervals, args.seed + 200)
        ref, ref_cpu = _run(mid, REF_REL, 21, args.workers, 3 * args.budget)
        run, _ = _run(mid, args.rel, 22, args.workers, args.budget)
        diff = np.abs(run.raw_estimate - ref.raw_estimate)
        combined = np.sqrt(run.half_width**2 + ref.half_width**2)
        within = int(np.sum(diff <= combined))
        rel_diff = diff / ref.raw_estimate
        print(
            f"check 2: reference {MID} members ({ref.chains} chains, {ref_cpu:.0f} CPU s, max hw "
            f"{ref.relative_half_width.max():.3%}); {within}/{MID} within the combined half-width; "
            f"difference max {rel_diff.max():.3%}, median {np.median(rel_diff):.3%}",
            flush=True,
        )
        line += (
            f"; check vs exact (16 members, 2^16 coalitions): {covered}/48 intervals hold the exact value, "
            f"worst {worst:.2f} half-widths; check vs a {REF_REL:.1%} reference run ({MID} members): "
            f"{within}/{MID} within the combined half-width, difference max {rel_diff.max():.3%}, median "
            f"{np.median(rel_diff):.3%}"
        )
    line += f" (CPython {platform.python_version()}; load {load0:.1f} at start on {os.cpu_count()} CPUs)"
    print(line)
    if not args.no_append:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


if __name__ == "__main__":
    main()
