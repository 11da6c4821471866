"""Benchmark ``peerpool simulate`` at a few sizes; appends one line per run to bench/RESULTS.md.

    .venvs/core/bin/python bench/bench_simulate.py              # 5x1, 30x7, 30x31, 500x1 (no flows)
    .venvs/core/bin/python bench/bench_simulate.py --full       # also 500 members x 30 days, no flows
    .venvs/core/bin/python bench/bench_simulate.py --sizes 30x31 500x30:no-flows

Each run is its own process, so its CPU time and peak resident set come from ``wait4`` on that
process alone. CPU seconds are the figure to compare on a shared machine; wall time is reported
with the load average. Goals: the 5x1 smoke run in seconds, the 30x31 demo in at most ~2-3
minutes and a few hundred MB, 500x30 feasible without flows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
DEFAULT = ["5x1", "30x7", "30x31", "500x1:no-flows"]
FULL = [*DEFAULT, "500x30:no-flows"]


def parse_size(text: str) -> tuple[int, int, bool]:
    size, _, flag = text.partition(":")
    members, days = (int(v) for v in size.split("x"))
    return members, days, flag != "no-flows"


def directory_sizes(out: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for f in out.rglob("*"):
        if f.is_file():
            top = f.relative_to(out).parts[0]
            sizes[top] = sizes.get(top, 0) + f.stat().st_size
    return sizes


def run(members: int, days: int, flows: bool, workdir: Path, seed: int) -> dict[str, object]:
    out = workdir / f"sim-{members}x{days}{'' if flows else '-noflows'}"
    if out.exists():
        shutil.rmtree(out)
    cmd = [
        sys.executable,
        "-m",
        "peerpool.cli",
        "simulate",
        "--members",
        str(members),
        "--days",
        str(days),
        "--seed",
        str(seed),
        "--out",
        str(out),
    ]
    if not flows:
        cmd.append("--no-flows")
    load = os.getloadavg()[0]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - began
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"simulate {members}x{days} failed ({status}):\n{stderr[-3000:]}")
    info = json.loads((out / "truth" / "run.json").read_text())
    sizes = directory_sizes(out)
    shutil.rmtree(out)
    return {
        "members": members,
        "days": days,
        "flows": flows,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "load": load,
        "sizes": sizes,
        "info": info,
    }


def line(r: dict[str, object]) -> str:
    info = r["info"]
    sizes = r["sizes"]
    assert isinstance(info, dict) and isinstance(sizes, dict)
    total = sum(sizes.values()) / 1e6
    parts = ", ".join(f"{k} {v / 1e6:,.0f}" for k, v in sorted(sizes.items()) if v > 1e6)
    rows = info["truth_rows"]
    flows = (
        f"{info['flow_samples']:,} sFlow flow + {info['counter_samples']:,} counter samples at "
        f"1:{info['sflow_sampling_rate']:,}, {info['flow_records']:,} IPFIX/NetFlow v9 records, "
        if r["flows"]
        else "no flows, "
    )
    return (
        f"- {dt.date.today().isoformat()} simulate {r['members']} members x {r['days']} days: "
        f"{r['cpu_s']:,.1f} CPU s, {r['wall_s']:,.1f} s wall, peak RSS {r['peak_rss_mib']:,.0f} MiB, "
        f"{total:,.0f} MB written{f' ({parts})' if parts else ''}; {flows}"
        f"{rows['port_traffic']:,} port-truth rows, {rows['member_pairs']:,} pair-truth rows "
        f"(CPython {platform.python_version()}; load {r['load']:.1f} on {os.cpu_count()} CPUs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="*", help="MEMBERSxDAYS[:no-flows] ...")
    parser.add_argument("--full", action="store_true", help="include 500 members x 30 days (no flows)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where outputs go (deleted after each run)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()
    sizes = args.sizes or (FULL if args.full else DEFAULT)
    own = args.workdir is None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        record(sizes, workdir, args.seed, not args.no_record)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def record(sizes: list[str], workdir: Path, seed: int, append: bool) -> None:
    for text in sizes:
        members, days, flows = parse_size(text)
        result = run(members, days, flows, workdir, seed)
        text_line = line(result)
        print(text_line, flush=True)
        if append:
            if not RESULTS.exists():
                RESULTS.write_text("# Benchmark results (one line per run, appended by the bench/ scripts)\n")
            with RESULTS.open("a", encoding="utf-8") as fh:
                fh.write(text_line + "\n")


if __name__ == "__main__":
    main()
