"""Benchmark: the month close for 500 members on a synthetic serving file of realistic size.

Run from the repository root:

    .venvs/core/bin/python bench/bench_billing.py                # build, close, verify; append to RESULTS.md
    .venvs/core/bin/python bench/bench_billing.py --members 100  # smaller
    .venvs/core/bin/python bench/bench_billing.py --profile      # also print where the time goes

The serving file is written here with DuckDB for April 2026 (30 days, 8,640 intervals) in the
columns of the dbt mart contract: 500 members with 1-2 exchange ports each (~750 ports), 70% of
them with transit use (~3 M rows of fct_member_transit_usage_5min), three transit contracts over
six border-router ports, counter flags and ~250 outages. The monthly marts (members' 95ths, the
contracts' bills) are computed here in SQL with quantile_disc, as dbt does, so the bill's own
recomputation from the samples is checked at full size. Timed: the month close (compute, render
every file and evidence pack, write read-only) and a re-run that verifies it byte for byte.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import platform
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from click.testing import CliRunner  # noqa: E402

from peerpool.billing.cli import bill  # noqa: E402
from peerpool.config.load import load_exchange  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
MARTS_YML = REPO / "dbt" / "models" / "marts" / "_marts__models.yml"
MONTH = "2026-04"
START = "2026-03-31 22:00:00+00"  # 1 April 00:00 Europe/Warsaw (CEST)
INTERVALS = 8640
CONTRACTS = [
    ("arelion", "20000", "0.80", "1.00"),
    ("cogent", "15000", "0.60", "0.90"),
    ("he", "5000", "0.50", "0.70"),
]
SWITCH_PORTS = 50


def config_toml(members: int) -> str:
    parts = [
        '[exchange]\nname = "Bench IX"\n\n[billing]\ncurrency = "PLN"\nvat_rate = "0.23"\n'
        'timezone = "Europe/Warsaw"\n',
        '[[sites]]\nid = "KTW"\nname = "Katowice"\n\n[snmp.default]\nversion = "2c"\ncommunity_env = "C"\n',
    ]
    for s in range(members * 2 // SWITCH_PORTS + 1):
        parts.append(
            f'[[switches]]\nid = "sw{s}"\nsite = "KTW"\nmanagement_address = "10.1.0.{s + 1}"\n'
            'snmp = "default"\n'
        )
    port = 0
    for i in range(members):
        member = f"AS{65000 + i}"
        joined = "2026-04-12" if i % 50 == 7 else "2020-01-01"
        parts.append(
            f'[[members]]\nid = "{member}"\nasn = {65000 + i}\nname = "Member {i}"\n'
            f'billing_entity = "Member {i} Sp. z o.o."\njoined = {joined}\n'
        )
        for p in range(2 if i % 2 else 1):  # every other member: two ports in a bundle
            extra = 'bundle = "ae1"\n' if i % 2 else ""
            if i % 40 == 3:
                extra += "disconnected = 2026-04-20\n"
            parts.append(
                f'[[ports]]\nswitch = "sw{port // SWITCH_PORTS}"\ninterface = "et-{p}/{i}"\n'
                f"ifindex = {port % SWITCH_PORTS + 1}\nspeed_mbps = {10000 if i % 3 else 1000}\nvlan = 100\n"
                f'member = "{member}"\nmacs = []\nconnected = {joined}\n{extra}'
            )
            port += 1
    parts.append(
        '[[border_routers]]\nid = "br1"\nsite = "KTW"\nmanagement_address = "127.0.0.1"\n'
        'flow_exporter_address = "10.0.0.1"\nsnmp = "default"\n'
    )
    for c in range(len(CONTRACTS)):
        for p in range(2):
            parts.append(
                f'[[border_routers.ports]]\ninterface = "xe-{c}/{p}"\nifindex = {100 + 10 * c + p}\n'
                "speed_mbps = 100000\n"
            )
    for c, (name, commit, price, burst) in enumerate(CONTRACTS):
        parts.append(
            f'[[transit_contracts]]\nid = "{name}"\nprovider = "{name}"\n'
            f'ports = ["br1:xe-{c}/0", "br1:xe-{c}/1"]\ncommit_mbps = "{commit}"\n'
            f'price_per_mbps = "{price}"\n'
            f'burst_price_per_mbps = "{burst}"\ncurrency = "PLN"\nterm_start = 2026-01-01\n'
        )
    parts.append(
        '[[port_fees]]\nspeed_mbps = 1000\nmonthly_fee = "300.00"\n\n'
        '[[port_fees]]\nspeed_mbps = 10000\nmonthly_fee = "900.00"\n\n'
        '[[one_off_fees]]\nmember = "AS65001"\nmonth = "2026-04"\ndescription = "cross-connect"\n'
        'amount = "250.00"\n'
    )
    return "\n".join(parts)


BILLING_MARTS = (
    "dim_members", "dim_ports", "dim_transit_contracts", "fct_transit_bill_monthly", "fct_transit_usage_5min",
    "fct_port_traffic_5min", "fct_member_transit_usage", "fct_member_transit_usage_5min", "fct_port_outages",
)  # fmt: skip
SCALING_DDL = """
create schema intermediate;
create table intermediate.int_transit_port_scaling_5min (
    interval_start timestamptz, interval_date date, port_id varchar, direction varchar,
    flow_estimated_bytes hugeint, counter_bytes hugeint, scale_factor double)
"""
# members' transit: 70% of members, a diurnal curve x per-member size x noise, whole bytes; a member
# is silent in ~2% of the intervals
MEMBER_TRANSIT = """
insert into fct_member_transit_usage_5min (member_id, interval_start, interval_date, in_bytes, out_bytes)
select member_id, ts, cast(ts as date),
    cast((1e8 + (hash(member_id) % 400) * 1e7) * (1.2 + sin(i * 2 * pi() / 288))
         * (0.7 + (hash(member_id, i) % 600) / 1000.0) as bigint),
    cast((5e7 + (hash(member_id, 'o') % 200) * 1e7) * (1.2 + cos(i * 2 * pi() / 288))
         * (0.7 + (hash(member_id, i, 'o') % 600) / 1000.0) as bigint)
from users cross join t
where hash(member_id, i, 'gap') % 50 <> 0
"""
SCALING = """
insert into intermediate.int_transit_port_scaling_5min (interval_start, port_id, direction, scale_factor)
select ts, 'br1:xe-0/0', 'in', case when i % 997 = 5 then null else 1.0 end from t
"""
CONTRACT_USAGE = """
insert into fct_transit_usage_5min (contract_id, interval_start, interval_date, billing_month, in_bytes,
    out_bytes, in_plus_out_bytes, ports_expected, ports_with_rate, is_complete, is_billable)
select $contract, t.ts, cast(t.ts as date), date '{month}-01',
    cast(coalesce(p.i, 0) * $share as bigint), cast(coalesce(p.o, 0) * $share as bigint),
    cast(coalesce(p.i, 0) * $share as bigint) + cast(coalesce(p.o, 0) * $share as bigint),
    2, case when t.i % 1500 = 11 then 1 else 2 end, t.i % 1500 <> 11, t.i % 1500 <> 11
from t left join pool p on p.interval_start = t.ts
"""
PORT_FLAGS = """
insert into fct_port_traffic_5min (port_id, interval_start, is_trusted, is_gap, is_failed_read, is_reset,
    is_wrap, is_over_speed)
select $port, ts, false, false, i % 1500 = 11, i % 4000 = 77, false, false
from t where i % 1500 = 11 or i % 4000 = 77
"""
# the monthly marts from the rows above, as dbt computes them (quantile_disc = nearest rank)
MBPS = (
    "cast(cast((2 * cast({x} as hugeint) * 10000 + 37500000) // 75000000 as decimal(38, 0)) * 0.0001 "
    "as decimal(18, 4))"
)
MEMBER_MONTHLY = """
insert into fct_member_transit_usage (member_id, month, intervals_used, billed_p95_mbps)
with spine as (
    select distinct interval_start from intermediate.int_transit_port_scaling_5min
    where scale_factor is not null
), filled as (
    select u.member_id, s.interval_start, coalesce(f.in_bytes, 0) as ib, coalesce(f.out_bytes, 0) as ob
    from users u cross join spine s
    left join fct_member_transit_usage_5min f
        on f.member_id = u.member_id and f.interval_start = s.interval_start
)
select member_id, date '{month}-01', count(*), {mbps} from filled group by member_id
"""
CONTRACT_BILL = """
insert into fct_transit_bill_monthly (contract_id, billing_month, provider, currency, percentile,
    direction_rule, gap_policy, billing_timezone, intervals_in_month, intervals_used, intervals_incomplete,
    billed_mbps, commit_mbps, price_per_mbps, burst_price_per_mbps, commit_cost, overage_mbps, overage_cost,
    total_cost)
with p as (
    select {mbps} as mbps, count(*) filter (where is_billable) as n,
        count(*) filter (where not is_complete) as bad
    from fct_transit_usage_5min where contract_id = $contract
), q as (
    select *, greatest(mbps - $commit::decimal(18, 4), 0)::decimal(18, 4) as over,
        round($commit::decimal(18, 4) * $price::decimal(18, 4), 4)::decimal(18, 4) as cc
    from p
)
select $contract, date '{month}-01', $contract, 'PLN', 95, 'max', 'exclude', 'Europe/Warsaw', {intervals},
    n, bad, mbps, $commit, $price, $burst, cc, over, round(over * $burst::decimal(18, 4), 4)::decimal(18, 4),
    (cc + round(over * $burst::decimal(18, 4), 4))::decimal(18, 4)
from q
"""
# ~1 in 3 member ports has an outage: unreachable (credited) or oper-down (not, by default)
OUTAGES = """
insert into fct_port_outages (port_id, cause, start_at, end_at, duration_s, port_kind, member_id)
select port_id, case when hash(port_id) % 2 = 0 then 'unreachable' else 'oper_down' end,
    timestamptz '{start}' + (hash(port_id) % 8000) * interval 5 minute,
    timestamptz '{start}' + (hash(port_id) % 8000) * interval 5 minute
        + (hash(port_id, 'd') % 2000) * interval 1 minute,
    (hash(port_id, 'd') % 2000) * 60, 'member', member_id
from dim_ports where hash(port_id, 'o') % 3 = 0
"""


def build_serving(path: Path, config: Path) -> None:
    x = load_exchange(config)
    con = duckdb.connect(str(path))
    con.execute("set TimeZone = 'UTC'")
    for model in yaml.safe_load(MARTS_YML.read_text())["models"]:
        if model["name"] in BILLING_MARTS:
            cols = ", ".join(f'"{c["name"]}" {c["data_type"]}' for c in model["columns"])
            con.execute(f"create table {model['name']} ({cols})")
    con.execute(SCALING_DDL)
    con.executemany(
        "insert into dim_members (member_id, asn, member_name, joined_date) values (?, ?, ?, ?)",
        [(m.id, m.asn, m.name, m.joined) for m in x.members],
    )
    con.executemany(
        "insert into dim_ports (port_id, port_kind, member_id, speed_mbps, bundle_name, connected_date, "
        "disconnected_date) values (?, 'member', ?, ?, ?, ?, ?)",
        [(p.id, p.member, p.speed_mbps, p.bundle or None, p.connected, p.disconnected) for p in x.ports],
    )
    con.executemany(
        "insert into dim_transit_contracts (contract_id, provider, currency, port_ids) "
        "values (?, ?, 'PLN', ?)",
        [(c.id, c.provider, list(c.ports)) for c in x.transit_contracts],
    )
    con.execute(
        f"create temp table t as select i, timestamptz '{START}' + i * interval 5 minute as ts "
        f"from range({INTERVALS}) r(i)"
    )
    con.execute("create temp table users as select member_id from dim_members where hash(member_id) % 10 < 7")
    con.execute(MEMBER_TRANSIT)
    con.execute(SCALING)  # transit counters scaled the flows in every interval but a handful
    con.execute(
        "create temp table pool as select interval_start, sum(in_bytes) as i, sum(out_bytes) as o "
        "from fct_member_transit_usage_5min group by interval_start"
    )
    contract_mbps = MBPS.format(
        x="greatest(quantile_disc(in_bytes, 0.95) filter (where is_billable), "
        "quantile_disc(out_bytes, 0.95) filter (where is_billable))"
    )
    for c, share in zip(x.transit_contracts, (0.5, 0.35, 0.15), strict=True):
        con.execute(CONTRACT_USAGE.format(month=MONTH), {"contract": c.id, "share": share})
        con.execute(PORT_FLAGS, {"port": c.ports[0]})
        con.execute(
            CONTRACT_BILL.format(month=MONTH, intervals=INTERVALS, mbps=contract_mbps),
            {
                "contract": c.id,
                "commit": c.commit_mbps,
                "price": c.price_per_mbps,
                "burst": c.burst_price_per_mbps,
            },
        )
    member_mbps = MBPS.format(x="greatest(quantile_disc(ib, 0.95), quantile_disc(ob, 0.95))")
    con.execute(MEMBER_MONTHLY.format(month=MONTH, mbps=member_mbps))
    con.execute(OUTAGES.format(start=START))
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="copy the files to this folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-billing-"))
    try:
        config = work / "exchange.toml"
        config.write_text(config_toml(args.members))
        serving = work / "serving.duckdb"
        t0 = time.perf_counter()
        build_serving(serving, config)
        build_s = time.perf_counter() - t0
        with duckdb.connect(str(serving), read_only=True) as con:
            found = con.execute("select count(*) from fct_member_transit_usage_5min").fetchone()
        rows = int(found[0]) if found else 0
        out = work / "exports"
        command = ["--month", MONTH, "--final", "--out", str(out), "--serving", str(serving)]
        command += ["--config", str(config)]
        profiler = cProfile.Profile() if args.profile else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        result = CliRunner().invoke(bill, command, catch_exceptions=False)
        if profiler:
            profiler.disable()
        close_s, close_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        assert result.exit_code == 0, result.output
        print(result.output.strip())
        t0 = time.perf_counter()
        again = CliRunner().invoke(bill, command, catch_exceptions=False)
        verify_s = time.perf_counter() - t0
        assert "identical" in again.output, again.output
        final = out / MONTH / "final"
        files = [p for p in final.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        evidence = sum(p.stat().st_size for p in (final / "evidence").iterdir())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load = Path("/proc/loadavg").read_text().split()[0]
        line = (
            f"- {dt.date.today().isoformat()} bill month close {args.members} members x {INTERVALS} "
            "intervals "
            f"({rows:,} member transit rows, 3 contracts): {close_s:.1f} s wall, {close_cpu:.1f} CPU s; "
            f"re-run verified identical in {verify_s:.1f} s; {len(files):,} files, {size / 1e6:.0f} MB "
            f"(evidence {evidence / 1e6:.0f} MB); peak RSS {rss:.0f} MiB; synthetic serving file built in "
            f"{build_s:.0f} s (CPython {platform.python_version()}; load {load} on 2 CPUs"
            f"{'; under cProfile' if args.profile else ''})"
        )
        print(line)
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        with RESULTS.open("a") as handle:
            handle.write(line + "\n")
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
    finally:
        for p in work.rglob("*"):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
