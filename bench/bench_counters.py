"""Benchmark: counter hygiene on an EPIX-like month, and one SNMP poll cycle of 1,000 ports.

Run from the repository root (one command, results appended to bench/RESULTS.md):

    .venvs/core/bin/python bench/bench_counters.py               # month + poll cycle
    .venvs/core/bin/python bench/bench_counters.py --skip-poll   # month only

Month: 1,000 member ports on 20 switches, one poll every 5 minutes for 30 days
(8,640 polls per port, 8.64 M raw reads), poll times jittered by up to 25 s per device and
poll (so most deltas straddle an interval boundary and are split), diurnal traffic, and a
few faults: a switch reboot (sysUpTime and counters restart), a switch unreachable for two
hours, a switch not polled for an hour, 20 ports on 32-bit counters (wraps), daily
port-level failed reads, one over-speed spike, one port down for three hours. The raw reads
are generated here with numpy and stored as 30 day parts; then ``hygiene.run`` turns them
into ``port_rates_5min`` and ``port_outages`` in a child process, whose wall time and peak
RSS are reported (the generation does not count).

Poll cycle: one snmpsim agent with 1,000 ports (tests/snmp_agents.py), polled with the
default options over v2c and over v3 (authPriv); the median of three polls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.counters.reads import write_reads_by_day  # noqa: E402
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch  # noqa: E402
from peerpool.lake import PORT_COUNTERS  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (one line per run, appended by the bench/ scripts)\n"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAYS = 30
POLLS = DAYS * 288
SWITCHES = 20
PORTS_PER_SWITCH = 50
PORTS = SWITCHES * PORTS_PER_SWITCH
THIRTY_TWO_BIT = range(980, 1000)  # port indexes on 32-bit counters (1 Gbit/s, <= 100 Mbit/s average)


def exchange() -> Exchange:
    snmp = SnmpSettings(community_env="BENCH_UNUSED")
    ports = []
    for p in range(PORTS):
        sw = p // PORTS_PER_SWITCH
        bits = 32 if p in THIRTY_TWO_BIT else 64
        speed = 1000 if bits == 32 else (100_000 if p % 50 == 0 else 10_000)
        ports.append(
            MemberPort(
                f"sw{sw:02d}:et-{p % PORTS_PER_SWITCH}",
                f"sw{sw:02d}",
                f"et-{p % PORTS_PER_SWITCH}",
                1000 + p % PORTS_PER_SWITCH,
                speed,
                100,
                f"AS{64500 + p}",
                (f"02:00:00:00:{p // 256:02x}:{p % 256:02x}",),
                counter_bits=32 if bits == 32 else 64,
            )
        )
    return Exchange(
        name="bench",
        sites=(Site("KTW", "Katowice"),),
        switches=tuple(Switch(f"sw{s:02d}", "KTW", f"10.0.0.{s + 1}", snmp) for s in range(SWITCHES)),
        members=tuple(
            Member(f"AS{64500 + p}", 64500 + p, f"m{p}", f"m{p}", dt.date(2024, 1, 1)) for p in range(PORTS)
        ),
        ports=tuple(ports),
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )


def generate(lake: Path, seed: int = 7) -> dict[str, int]:
    """Write a month of raw reads (8.64 M rows) as day parts; return the injected fault counts."""
    rng = np.random.default_rng(seed)
    start_us = int(START.timestamp()) * 1_000_000
    poll = np.arange(POLLS, dtype=np.int64)
    # jitter per (switch, poll): 0.5..25 s after the boundary
    jitter = rng.uniform(0.5, 25.0, size=(SWITCHES, POLLS))
    t = start_us + poll[None, :] * 300_000_000 + (jitter * 1e6).astype(np.int64)  # (switch, poll)
    hour = ((poll * 300) % 86_400) / 3600.0
    diurnal = 0.25 + 0.75 * np.sin(np.pi * ((hour - 4) % 24) / 24) ** 2  # low at 04:00, high at 16:00
    bits = np.full(PORTS, 64)
    bits[list(THIRTY_TWO_BIT)] = 32
    speed_mbps = np.where(bits == 32, 1000, np.where(np.arange(PORTS) % 50 == 0, 100_000, 10_000))
    mean_load = np.where(bits == 32, rng.uniform(0.02, 0.08, PORTS), rng.uniform(0.02, 0.35, PORTS))
    # bit rate at each poll; bytes = rate x the (jittered) time since the previous poll
    rate_bps = speed_mbps[:, None] * 1e6 * mean_load[:, None] * diurnal[None, :]
    rate_bps *= rng.lognormal(0.0, 0.15, size=(PORTS, POLLS))
    switch_of = np.arange(PORTS) // PORTS_PER_SWITCH
    tp = t[switch_of]  # (port, poll) read times
    dt_s = np.diff(tp, axis=1, prepend=tp[:, :1] - 300_000_000) / 1e6
    in_delta = (rate_bps * dt_s / 8).astype(np.uint64)
    out_delta = (in_delta * rng.uniform(0.6, 1.4, size=(PORTS, 1))).astype(np.uint64)
    faults = {"reboot_reads": 0, "unreachable_reads": 0, "skipped_reads": 0, "failed_port_reads": 0}
    faults["over_speed_spikes"] = 1
    in_delta[123, 5000] += np.uint64(
        10 * 10_000 * 1_000_000 * 300 // 8
    )  # 10x what a 10G port carries in 300 s
    in_delta[200, 3000:3036] = 0  # port 200 down for three hours: no traffic
    out_delta[200, 3000:3036] = 0
    in_oct = np.cumsum(in_delta, axis=1) + rng.integers(0, 2**40, size=(PORTS, 1), dtype=np.uint64)
    out_oct = np.cumsum(out_delta, axis=1) + rng.integers(0, 2**40, size=(PORTS, 1), dtype=np.uint64)
    in_pkt = in_oct // np.uint64(900)
    out_pkt = out_oct // np.uint64(900)
    boot = start_us - rng.integers(10, 200, size=SWITCHES) * 86_400_000_000
    # switch 3 reboots on day 10 at 12:00: uptime and counters restart
    reboot_at = start_us + (9 * 86_400 + 12 * 3600) * 1_000_000
    boot_per_poll = np.broadcast_to(boot[:, None], (SWITCHES, POLLS)).copy()
    after = t[3] >= reboot_at
    boot_per_poll[3, after] = reboot_at
    first_after = int(np.argmax(after))
    for p in np.flatnonzero(switch_of == 3):
        for arr in (in_oct, out_oct, in_pkt, out_pkt):
            arr[p, first_after:] -= arr[p, first_after - 1]
    faults["reboot_reads"] = int(after.sum()) * PORTS_PER_SWITCH
    uptime = ((t - boot_per_poll) // 10_000) % 2**32
    for arr in (in_oct, out_oct, in_pkt, out_pkt):
        arr[bits == 32] %= np.uint64(2**32)
    ok = np.ones((PORTS, POLLS), dtype=bool)
    keep = np.ones((PORTS, POLLS), dtype=bool)
    # switch 7 unreachable for two hours on day 15; switch 11 not polled for an hour on day 20
    down = slice(14 * 288 + 120, 14 * 288 + 144)
    ok[switch_of == 7, down] = False
    faults["unreachable_reads"] = 24 * PORTS_PER_SWITCH
    skip = slice(19 * 288 + 100, 19 * 288 + 112)
    keep[switch_of == 11, skip] = False
    faults["skipped_reads"] = 12 * PORTS_PER_SWITCH
    # five port-level failed reads a day
    for d in range(DAYS):
        for p in rng.choice(PORTS, 5, replace=False):
            ok[p, d * 288 + int(rng.integers(0, 288))] = False
    faults["failed_port_reads"] = 5 * DAYS
    oper = np.ones((PORTS, POLLS), dtype=np.int8)
    oper[200, 3000:3036] = 2  # port 200 down for three hours (its counters stand still, see above)
    faults["oper_down_reads"] = 36

    port_ids = np.array([p.id for p in exchange().ports], dtype=object)
    devices = np.array([f"sw{s:02d}" for s in switch_of], dtype=object)
    ifindex = 1000 + np.arange(PORTS) % PORTS_PER_SWITCH
    for day in range(DAYS):
        cols = slice(day * 288, (day + 1) * 288)
        k = keep[:, cols].ravel()
        okd = ok[:, cols].ravel()[k]
        n = int(k.sum())

        def rep(values: np.ndarray, cols: slice = cols, k: np.ndarray = k) -> np.ndarray:
            return np.repeat(values, 288)[k]

        def counter(
            arr: np.ndarray, okd: np.ndarray = okd, cols: slice = cols, k: np.ndarray = k
        ) -> pa.Array:
            return pa.array(arr[:, cols].ravel()[k], type=pa.uint64(), mask=~okd)

        table = pa.table(
            {
                "polled_at": pa.array(tp[:, cols].ravel()[k], type=pa.timestamp("us", tz="UTC")),
                "source": pa.array(["snmp"] * n),
                "device_id": pa.array(rep(devices)),
                "device_address": pa.array(
                    np.array([f"10.0.0.{s + 1}" for s in range(SWITCHES)], dtype=object)[rep(switch_of)]
                ),
                "ifindex": pa.array(rep(ifindex), type=pa.int64()),
                "port_id": pa.array(rep(port_ids)),
                "ok": pa.array(okd),
                "error": pa.array(np.where(okd, None, "timeout").tolist(), type=pa.string()),
                "sys_uptime_cs": pa.array(uptime[switch_of][:, cols].ravel()[k], type=pa.int64(), mask=~okd),
                "counter_bits": pa.array(rep(bits), type=pa.int8()),
                "in_octets": counter(in_oct),
                "out_octets": counter(out_oct),
                "in_ucast_pkts": counter(in_pkt),
                "out_ucast_pkts": counter(out_pkt),
                "if_high_speed_mbps": pa.array(rep(speed_mbps), type=pa.int64(), mask=~okd),
                "if_oper_status": pa.array(oper[:, cols].ravel()[k], type=pa.int8(), mask=~okd),
                "if_name": pa.array(
                    rep(np.array([f"et-{p % PORTS_PER_SWITCH}" for p in range(PORTS)], dtype=object))
                ),
                "if_alias": pa.nulls(n, pa.string()),
                "source_file": pa.nulls(n, pa.string()),
            }
        )
        write_reads_by_day(lake, table.select(PORT_COUNTERS.names).cast(PORT_COUNTERS), f"bench-day{day:02d}")
    faults["reads"] = int(keep.sum())
    return faults


def clean_stage(lake: Path) -> None:
    """Child process: run hygiene on the lake, print a JSON line with the stats."""
    from ingest.counters import hygiene

    began = time.perf_counter()
    stats = hygiene.run(lake, exchange())
    seconds = time.perf_counter() - began
    print(
        json.dumps(
            {
                "seconds": seconds,
                "reads": stats.reads,
                "intervals": stats.intervals,
                "trusted": stats.trusted,
                "gaps": stats.gaps,
                "failed_read": stats.failed_read,
                "reset": stats.reset,
                "wrap": stats.wrap,
                "over_speed": stats.over_speed,
                "outages": stats.outages,
                "pairs": stats.pairs,
            }
        )
    )


def bench_month() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-counters-") as tmp:
        lake = Path(tmp)
        began = time.perf_counter()
        faults = generate(lake)
        generated = time.perf_counter() - began
        print(f"generated {faults['reads']:,} raw reads in {generated:.1f} s: {faults}", file=sys.stderr)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        child = subprocess.run(
            [sys.executable, __file__, "--stage", "clean", "--lake", str(lake)],
            capture_output=True,
            text=True,
            check=True,
        )
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
        if peak_kib <= before:
            print(
                "warning: child peak RSS not above an earlier child's; figure may be that one's",
                file=sys.stderr,
            )
        stats = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps(stats, indent=1), file=sys.stderr)
    expected_intervals = PORTS * POLLS  # from the first read's interval to the last read's
    assert stats["intervals"] == expected_intervals, (stats["intervals"], expected_intervals)
    return (
        f"counters hygiene month: {stats['reads']:,} raw reads (1,000 ports x 8,640 polls, jittered, "
        f"faults) -> {stats['intervals']:,} port-intervals + outages in {stats['seconds']:.1f} s wall, "
        f"{cpu:.1f} CPU s, peak RSS {peak_kib / 1024:,.0f} MiB; trusted "
        f"{stats['trusted'] / stats['intervals']:.2%}, gap {stats['gaps']}, failed {stats['failed_read']}, "
        f"reset {stats['reset']}, wrap {stats['wrap']}, over-speed {stats['over_speed']}, "
        f"outages {stats['outages']}"
    )


def bench_poll() -> str:
    from ingest.counters.poller import PollOptions, poll_once
    from tests.snmp_agents import run_snmpsim

    ports = 1000
    timings: dict[str, list[float]] = {"2c": [], "3": []}
    with run_snmpsim(ports) as agent, tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        for version in ("2c", "3"):
            if version == "2c":
                snmp = SnmpSettings(
                    port=agent.port, community_env="BENCH_COMMUNITY", timeout_s=3.0, retries=2
                )
            else:
                snmp = SnmpSettings(
                    version="3",
                    port=agent.port,
                    user=agent.user,
                    auth_protocol="SHA",
                    auth_key_env="BENCH_AUTH",
                    priv_protocol="AES",
                    priv_key_env="BENCH_PRIV",
                    timeout_s=3.0,
                    retries=2,
                )
            ex = Exchange(
                name="bench",
                sites=(Site("S", "S"),),
                switches=(Switch("sim", "S", "127.0.0.1", snmp),),
                members=(Member("AS64500", 64500, "m", "m", dt.date(2024, 1, 1)),),
                ports=tuple(
                    MemberPort(f"sim:{i}", "sim", str(i), i, 10000, 100, "AS64500", ("02:00:00:00:00:01",))
                    for i in range(1, ports + 1)
                ),
                border_routers=(),
                transit_contracts=(),
                port_fees=(),
            )
            env = {
                "BENCH_COMMUNITY": agent.community,
                "BENCH_AUTH": agent.auth_key,
                "BENCH_PRIV": agent.priv_key,
            }
            for n in range(3):
                stats = poll_once(ex, Path(tmp) / f"{version}-{n}", options=PollOptions(), env=env)
                assert stats.ok == ports, stats.errors
                timings[version].append(stats.seconds)
    v2c, v3 = statistics.median(timings["2c"]), statistics.median(timings["3"])
    return (
        f"counters poll cycle: 1,000 ports on one snmpsim agent (one process, the bottleneck), default "
        f"options (48 varbinds/request, 2 in flight): v2c {v2c:.2f} s, v3 authPriv {v3:.2f} s (median of 3), "
        f"{ports / v2c:,.0f} ports/s v2c"
    )


def append(lines: list[str]) -> None:
    load = os.getloadavg()[0]
    stamp = dt.date.today().isoformat()
    context = f"CPython {platform.python_version()}; load {load:.1f} on {os.cpu_count()} CPUs"
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER)
    with RESULTS.open("a") as fh:
        for line in lines:
            fh.write(f"- {stamp} {line} ({context})\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["clean"], help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--skip-poll", action="store_true", help="only the month of hygiene")
    args = parser.parse_args()
    if args.stage == "clean":
        clean_stage(args.lake)
        return
    lines = [bench_month()]
    print(lines[0])
    if not args.skip_poll:
        lines.append(bench_poll())
        print(lines[-1])
    append(lines)


if __name__ == "__main__":
    main()
