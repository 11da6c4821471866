"""Benchmark ``peerpool build`` on an EPIX-like month; appends the figures to bench/RESULTS.md.

    .venvs/core/bin/python bench/bench_build.py            # 500 members, 1,000 ports, ~20k pairs, 31 days
    .venvs/core/bin/python bench/bench_build.py --days 3   # a quick run

The lake is generated here with numpy and pyarrow (the simulator is built for correctness, not
for 180 M matrix rows): ``port_rates_5min`` as counter hygiene would write it, the sFlow
``member_matrix`` (every active pair in every interval, one IP version per pair), border-router
IPFIX ``flows`` and an exchange.toml to match. The first ``days - 1`` days are built from
scratch ("full"), then the last day is added and built again ("nightly incremental"), as the
nightly DAG does. Each build runs in its own process so its peak memory (the dbt child's
maximum resident set) is measured alone. Goals: full month < 10 min, nightly < 2 min.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peerpool import lake  # noqa: E402

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
PER_DAY = 288


def exchange_toml(members: int, ports_per_member: int) -> str:
    lines = [
        '[exchange]\nname = "Bench IX"\n',
        '[billing]\ncurrency = "PLN"\nvat_rate = "0.23"\ntimezone = "Europe/Warsaw"\n',
        '[[sites]]\nid = "KTW"\nname = "Katowice"\n',
        '[snmp.default]\nversion = "2c"\ncommunity_env = "PEERPOOL_SNMP_COMMUNITY"\n',
    ]
    for s in range(4):
        lines.append(
            f'[[switches]]\nid = "sw{s}"\nsite = "KTW"\nmanagement_address = "127.0.0.1"\nsnmp = "default"\n'
            f'sflow_agent_address = "10.255.0.{s + 1}"\n'
        )
    for m in range(members):
        asn = 200000 + m
        lines.append(
            f'[[members]]\nid = "AS{asn}"\nasn = {asn}\nname = "Member {m}"\nbilling_entity = "Member {m}"\n'
            f'joined = 2024-01-01\nprefixes = ["10.{m // 256}.{m % 256}.0/24"]\n'
        )
        for p in range(ports_per_member):
            idx = m * ports_per_member + p
            lines.append(
                f'[[ports]]\nswitch = "sw{idx % 4}"\ninterface = "et-{idx}"\nifindex = {1000 + idx}\n'
                f'speed_mbps = 100000\nvlan = 100\nmember = "AS{asn}"\n'
                f'macs = ["02:00:{(idx >> 16) & 255:02x}:{(idx >> 8) & 255:02x}:{idx & 255:02x}:01"]\n'
                "connected = 2024-01-01\n"
            )
    lines.append(
        '[[border_routers]]\nid = "br1"\nsite = "KTW"\nmanagement_address = "127.0.0.1"\n'
        'flow_exporter_address = "10.255.1.1"\nsnmp = "default"\n'
    )
    for i in range(4):
        lines.append(
            f'[[border_routers.ports]]\ninterface = "xe-{i}"\nifindex = {500 + i}\nspeed_mbps = 400000\n'
        )
    for c in range(2):
        lines.append(
            f'[[transit_contracts]]\nid = "c{c}"\nprovider = "P{c}"\n'
            f'ports = ["br1:xe-{2 * c}", "br1:xe-{2 * c + 1}"]\n'
            'commit_mbps = "200000"\nprice_per_mbps = "0.80"\nburst_price_per_mbps = "1.00"\n'
            'currency = "PLN"\n'
            "term_start = 2026-01-01\n"
        )
    lines.append('[[port_fees]]\nspeed_mbps = 100000\nmonthly_fee = "4500.00"\n')
    return "\n".join(lines)


def _dict(values: list[str], codes: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(values))


def write_day(
    root: Path, day: int, members: int, ports_per_member: int, pairs: int, flows: int, seed: int
) -> int:
    """Write one UTC day of port_rates_5min, member_matrix and flows; return the matrix rows."""
    rng = np.random.default_rng(seed + day)
    date = (START + dt.timedelta(days=day)).date()
    first = np.datetime64(START.replace(tzinfo=None), "us") + np.timedelta64(day, "D")
    starts = first + np.arange(PER_DAY) * np.timedelta64(300, "s")
    n_ports = members * ports_per_member
    member_ids = [f"AS{200000 + m}" for m in range(members)]
    port_ids = [f"sw{i % 4}:et-{i}" for i in range(n_ports)] + [f"br1:xe-{i}" for i in range(4)]

    # rates: every port, every interval; a diurnal curve times a per-port level
    level = rng.lognormal(20, 1.5, len(port_ids))
    diurnal = 0.6 + 0.4 * np.sin(np.linspace(0, 2 * np.pi, PER_DAY, endpoint=False))
    t_idx = np.tile(np.arange(PER_DAY), len(port_ids))
    p_idx = np.repeat(np.arange(len(port_ids)), PER_DAY)
    in_b = (level[p_idx] * diurnal[t_idx] * rng.uniform(0.8, 1.2, len(p_idx))).astype(np.int64)
    out_b = (level[p_idx] * diurnal[t_idx] * rng.uniform(0.8, 1.2, len(p_idx))).astype(np.int64)
    trusted = rng.random(len(p_idx)) > 0.001
    rates = pa.table(
        {
            "interval_start": pa.array(starts[t_idx], pa.timestamp("us", tz="UTC")),
            "port_id": _dict(port_ids, p_idx),
            "device_id": pa.array(np.where(p_idx < n_ports, "sw", "br1")),
            "ifindex": pa.array(p_idx.astype(np.int64)),
            "speed_mbps": pa.array(np.full(len(p_idx), 100000, np.int64)),
            "in_bytes": pa.array(np.where(trusted, in_b, 0), mask=~trusted),
            "out_bytes": pa.array(np.where(trusted, out_b, 0), mask=~trusted),
            "in_packets": pa.array(in_b // 900),
            "out_packets": pa.array(out_b // 900),
            "in_bps": pa.array(in_b * 8 / 300),
            "out_bps": pa.array(out_b * 8 / 300),
            "is_trusted": pa.array(trusted),
            "is_gap": pa.array(~trusted),
            "is_failed_read": pa.array(np.zeros(len(p_idx), bool)),
            "is_reset": pa.array(np.zeros(len(p_idx), bool)),
            "is_wrap": pa.array(np.zeros(len(p_idx), bool)),
            "is_over_speed": pa.array(np.zeros(len(p_idx), bool)),
            "source": pa.array(np.full(len(p_idx), "snmp")),
        }
    )
    lake.write_part(root, "port_rates_5min", rates.cast(lake.PORT_RATES_5MIN), date, "bench")

    # matrix: a fixed set of active pairs (same every day), every interval
    pair_rng = np.random.default_rng(seed)
    src_m = pair_rng.integers(0, members, pairs)
    dst_m = (src_m + pair_rng.integers(1, members, pairs)) % members
    src_p = src_m * ports_per_member + pair_rng.integers(0, ports_per_member, pairs)
    dst_p = dst_m * ports_per_member + pair_rng.integers(0, ports_per_member, pairs)
    version = np.where(pair_rng.random(pairs) < 0.8, 4, 6).astype(np.int8)
    t_idx = np.repeat(np.arange(PER_DAY), pairs)
    k_idx = np.tile(np.arange(pairs), PER_DAY)
    est = (rng.lognormal(18, 2, len(k_idx))).astype(np.int64)
    matrix = pa.table(
        {
            "interval_start": pa.array(starts[t_idx], pa.timestamp("us", tz="UTC")),
            "site": pa.array(np.full(len(k_idx), "KTW")),
            "exporter_address": _dict([f"10.255.0.{i + 1}" for i in range(4)], src_p[k_idx] % 4),
            "vlan": pa.array(np.full(len(k_idx), 100, np.int32)),
            "ip_version": pa.array(version[k_idx]),
            "src_member_id": _dict(member_ids, src_m[k_idx]),
            "dst_member_id": _dict(member_ids, dst_m[k_idx]),
            "src_port_id": _dict(port_ids, src_p[k_idx]),
            "dst_port_id": _dict(port_ids, dst_p[k_idx]),
            "estimated_bytes": pa.array(est),
            "estimated_packets": pa.array(est // 900),
            "sample_count": pa.array(np.maximum(est // (900 * 16384), 1)),
            "source_file": pa.array(np.full(len(k_idx), f"bench-{date}")),
        }
    )
    lake.write_part(root, "member_matrix", matrix.cast(lake.MEMBER_MATRIX), date, "bench")

    # border-router IPFIX: `flows` records per interval, half towards the providers
    n = flows * PER_DAY
    t_idx = np.repeat(np.arange(PER_DAY), flows)
    member = rng.integers(0, members, n)
    out = rng.random(n) < 0.5
    port = rng.integers(0, 4, n)
    remote = rng.integers(1, 60000, n)
    member_ip = np.array([f"10.{m // 256}.{m % 256}.7" for m in range(members)])[member]
    asn = (200000 + member).astype(np.int64)
    flow_table = pa.table(
        {
            "received_at": pa.array(starts[t_idx] + np.timedelta64(310, "s"), pa.timestamp("us", tz="UTC")),
            "flow_protocol": pa.array(np.full(n, "ipfix")),
            "exporter_address": pa.array(np.full(n, "10.255.1.1")),
            "observation_domain": pa.array(np.ones(n, np.int64)),
            "sampling_rate": pa.array(np.full(n, 1000, np.int64)),
            "input_ifindex": pa.array(np.where(out, 10, 500 + port).astype(np.int64)),
            "output_ifindex": pa.array(np.where(out, 500 + port, 10).astype(np.int64)),
            "ip_version": pa.array(np.full(n, 4, np.int8)),
            "src_ip": pa.array(np.where(out, member_ip, "192.0.2.1")),
            "dst_ip": pa.array(np.where(out, "192.0.2.1", member_ip)),
            "src_asn": pa.array(np.where(out, asn, remote)),
            "dst_asn": pa.array(np.where(out, remote, asn)),
            "estimated_bytes": pa.array(rng.lognormal(20, 1, n).astype(np.int64)),
            "flow_end": pa.array(starts[t_idx] + np.timedelta64(290, "s"), pa.timestamp("us", tz="UTC")),
        }
    )
    full = pa.table(
        {
            f.name: flow_table.column(f.name) if f.name in flow_table.column_names else pa.nulls(n, f.type)
            for f in lake.FLOWS
        }
    )
    lake.write_part(root, "flows", full.cast(lake.FLOWS), date, "bench")
    return len(k_idx)


MEASURE = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from peerpool import settings
from peerpool.build import run_build
cfg = settings.resolve(lake={lake!r}, warehouse={wh!r}, config={config!r})
t = time.perf_counter()
run_build(cfg, echo=lambda s: print(s, file=sys.stderr), full_refresh={full})
wall = time.perf_counter() - t
children = resource.getrusage(resource.RUSAGE_CHILDREN)
me = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": wall,
                  "cpu_seconds": children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime,
                  "dbt_max_rss_mb": children.ru_maxrss / 1024,
                  "self_max_rss_mb": me.ru_maxrss / 1024}}))
"""


def measure(out: Path, full: bool) -> dict[str, float]:
    code = MEASURE.format(
        repo=str(REPO),
        lake=str(out / "lake"),
        wh=str(out / "warehouse"),
        config=str(out / "exchange.toml"),
        full=full,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"build failed (exit {done.returncode})")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--ports-per-member", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--flows-per-interval", type=int, default=500)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "build")
    parser.add_argument(
        "--reuse-lake",
        action="store_true",
        help="keep the lake generated by the last run with the same options",
    )
    args = parser.parse_args()
    out: Path = args.out
    params = json.dumps({k: str(v) for k, v in sorted(vars(args).items()) if k != "reuse_lake"})
    last_day = (START + dt.timedelta(days=args.days - 1)).date().isoformat()
    t = time.perf_counter()
    rows = 0
    if args.reuse_lake and (out / "params.json").is_file() and (out / "params.json").read_text() == params:
        # same lake as last time: drop the last day (the nightly run adds it) and the warehouse
        for table in ("port_rates_5min", "member_matrix", "flows"):
            shutil.rmtree(out / "lake" / table / f"date={last_day}", ignore_errors=True)
        shutil.rmtree(out / "warehouse", ignore_errors=True)
        rows = args.pairs * PER_DAY * (args.days - 1)
        print("reusing the generated lake", file=sys.stderr)
    else:
        if out.exists():
            shutil.rmtree(out)
        (out / "lake").mkdir(parents=True)
        (out / "exchange.toml").write_text(
            exchange_toml(args.members, args.ports_per_member), encoding="utf-8"
        )
        for day in range(args.days - 1):
            rows += write_day(out / "lake", day, args.members, args.ports_per_member, args.pairs,
                              args.flows_per_interval, args.seed)  # fmt: skip
            print(f"generated day {day + 1}/{args.days - 1}", file=sys.stderr)
        (out / "params.json").write_text(params)
    generate_s = time.perf_counter() - t
    load_before = f"{os.getloadavg()[0]:.1f}"
    full = measure(out, full=True)
    print(f"full build of {args.days - 1} days: {full['seconds']:.1f} s", file=sys.stderr)
    write_day(out / "lake", args.days - 1, args.members, args.ports_per_member, args.pairs,
              args.flows_per_interval, args.seed)  # fmt: skip
    nightly = measure(out, full=False)
    print(f"nightly incremental: {nightly['seconds']:.1f} s", file=sys.stderr)

    result = (
        f"\n## bench_build.py — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"- machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work), Python "
        f"{platform.python_version()}\n"
        f"- lake: {args.members} members, {args.members * args.ports_per_member} ports, "
        f"{args.pairs} active pairs "
        f"in every interval, {args.flows_per_interval} IPFIX records per interval; {args.days - 1} days "
        f"({rows:,} matrix rows) generated in {generate_s:.0f} s\n"
        f"- load average before/after the builds: {load_before} / {os.getloadavg()[0]:.1f} "
        "(other work on the box slows wall-clock times; CPU seconds are less affected)\n"
        f"- full build ({args.days - 1} days, --full-refresh): **{full['seconds']:.1f} s** wall, "
        f"{full['cpu_seconds']:.0f} CPU s, dbt peak RSS {full['dbt_max_rss_mb']:.0f} MB "
        "(goal < 600 s for a month)\n"
        f"- nightly incremental (+1 day): **{nightly['seconds']:.1f} s** wall, "
        f"{nightly['cpu_seconds']:.0f} CPU s, "
        f"dbt peak RSS {nightly['dbt_max_rss_mb']:.0f} MB (goal < 120 s)\n"
    )
    with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write(result)
    print(result)
    _ = resource


if __name__ == "__main__":
    main()
