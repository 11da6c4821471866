"""Benchmark: the decode pipeline at exchange scale (500 members), one core, no peer tool.

Run from the repository root (one command, ~1 minute; not a test):

    .venvs/core/bin/python bench/bench_pipeline.py              # measure, print, append to bench/RESULTS.md
    .venvs/core/bin/python bench/bench_pipeline.py --profile    # also print where the time goes

The sFlow corpus of realdata/bench (4,529 real pmacct sfprobe datagrams) has six MAC addresses, so
its member matrix has 30 keys. An EPIX-like exchange has ~500 member routers and ~20k active pairs.
This benchmark rewrites the Ethernet addresses inside every sampled header to one of 500 router
MACs (Zipf-weighted, the way a few large members carry most traffic), builds a 500-member
configuration, and measures on one core (CPU time):

* decode + member-matrix aggregation + loss accounting (the per-datagram work);
* ``process_files`` on a spool file (read, decode, matrix, loss, enriched flow rows, Parquet, ledger).

bench/bench_vs_pmacct.py compares the same stages with pmacct's sfacctd on the unmodified corpus.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import platform
import pstats
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_vs_pmacct import SFLOW_CORPUS, load_corpus  # noqa: E402

from ingest import spool as sp  # noqa: E402
from ingest.enrich import Enricher  # noqa: E402
from ingest.loss import LossTracker  # noqa: E402
from ingest.matrix import MatrixAggregator  # noqa: E402
from ingest.pipeline import _SAMPLE_SEQ, process_files  # noqa: E402
from ingest.sflow.decode import decode_datagram  # noqa: E402
from peerpool.config.model import Exchange, Member, MemberPort, Site, SnmpSettings, Switch  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (one line per run, appended by the bench/ scripts)\n"
MEMBERS = 500
EPIX_SAMPLES_PER_S = 35_000
T0 = 1_767_225_600 * 10**9
AGENT = "192.0.2.10"


def member_mac(i: int) -> bytes:
    return bytes([0x02, 0x50, 0, 0, i >> 8, i & 0xFF])


def rewrite_macs(datagram: bytes, rnd: random.Random, weights: list[float]) -> bytes:
    """Put member MACs into every raw packet header (sflow_version_5.txt layouts, IPv4 agent)."""
    data = bytearray(datagram)
    version, address_type = struct.unpack_from("!II", data, 0)
    assert version == 5 and address_type == 1
    (n_samples,) = struct.unpack_from("!I", data, 24)
    pos = 28
    for _ in range(n_samples):
        sample_format, sample_length = struct.unpack_from("!II", data, pos)
        start, end = pos + 8, pos + 8 + sample_length
        if sample_format == 1:  # compact flow sample: 8 words, then records
            (n_records,) = struct.unpack_from("!I", data, start + 28)
            rec = start + 32
            for _ in range(n_records):
                record_format, record_length = struct.unpack_from("!II", data, rec)
                if record_format == 1:  # raw packet header: protocol, frame length, stripped, length, bytes
                    header = rec + 8 + 16
                    src, dst = rnd.choices(range(MEMBERS), weights=weights, k=2)
                    data[header : header + 6] = member_mac(dst)
                    data[header + 6 : header + 12] = member_mac(src)
                rec += 8 + record_length
        pos = end
    return bytes(data)


def exchange() -> Exchange:
    members = tuple(
        Member(
            id=f"AS{65000 + i}",
            asn=65000 + i,
            name=f"m{i}",
            billing_entity=f"m{i}",
            joined=dt.date(2020, 1, 1),
        )
        for i in range(MEMBERS)
    )
    ports = tuple(
        MemberPort(
            id=f"sw1:p{i}",
            switch="sw1",
            interface=f"p{i}",
            ifindex=i + 1,
            speed_mbps=100000,
            vlan=100,
            member=f"AS{65000 + i}",
            macs=(member_mac(i).hex(":"),),
        )
        for i in range(MEMBERS)
    )
    switch = Switch(
        id="sw1", site="KTW", management_address="127.0.0.1", snmp=SnmpSettings(), sflow_agent_address=AGENT
    )
    return Exchange(
        name="bench ix",
        sites=(Site("KTW", "Katowice"),),
        switches=(switch,),
        members=members,
        ports=ports,
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
    )


def hot_path(corpus: list[bytes], seconds: float) -> tuple[int, float, int]:
    """decode + matrix + loss until ``seconds`` of CPU; (samples, CPU s, matrix keys)."""
    matrix = MatrixAggregator()
    loss = LossTracker()
    loss.begin_file()
    samples = 0
    rounds = 0
    start = time.process_time()
    while time.process_time() - start < seconds:
        base = T0 + rounds * 10**9  # all in one 5-minute bin: the worst case for the dict size
        rounds += 1
        for i, d in enumerate(corpus):
            dg = decode_datagram(d)
            received = base + i * 1000
            fs = dg.flow_samples
            matrix.add_samples(received, dg.agent_address, fs)
            loss.sflow_datagram(
                received,
                dg.agent_address,
                dg.sub_agent_id,
                dg.sequence_number,
                dg.uptime_ms,
                list(map(_SAMPLE_SEQ, fs)),
            )
            samples += len(fs)
    cpu = time.process_time() - start
    rows, unknown = matrix.rows(Enricher(exchange()))
    assert not unknown
    return samples, cpu, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="CPU seconds for the hot path")
    parser.add_argument(
        "--rounds", type=int, default=20, help="corpus passes in the process_files spool file"
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of process_files")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    rnd = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(MEMBERS)]  # Zipf: a few members carry most traffic
    corpus = [rewrite_macs(d, rnd, weights) for d in load_corpus(SFLOW_CORPUS)]

    samples, cpu, keys = hot_path(corpus, args.seconds)
    hot = samples / cpu
    print(f"decode+matrix+loss: {hot:,.0f} samples per CPU-s ({samples:,} samples, {keys:,} matrix rows)")

    def run(profiler: cProfile.Profile | None) -> tuple[int, float, float]:
        with tempfile.TemporaryDirectory() as tmp:
            spool = Path(tmp) / "20260101T0000-bench-1-000001.spool"
            af, raw = sp.pack_address(AGENT)
            with open(spool, "wb") as fh:
                fh.write(sp.MAGIC)
                k = 0
                for _ in range(args.rounds):
                    for d in corpus:
                        fh.write(sp.encode_record(d, T0 + k * 50_000, af, raw, 6343, sp.PROTO_SFLOW5))
                        k += 1
            c0, w0 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            result = process_files([spool], Path(tmp) / "lake", exchange=exchange(), retention_days=100000)
            if profiler is not None:
                profiler.disable()
            return result.files[0].flow_samples, time.process_time() - c0, time.perf_counter() - w0

    n, cpu, wall = run(None)
    e2e = n / cpu
    print(f"process_files: {e2e:,.0f} samples per CPU-s ({n:,} samples, {wall:.1f} s wall)")
    if args.profile:  # a separate run: the profiler's own overhead must not be in the figures
        profiler = cProfile.Profile()
        run(profiler)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    line = (
        f"- {dt.date.today().isoformat()} bench_pipeline ({MEMBERS} members, Zipf pairs, {keys:,} matrix "
        f"rows in one 5-min bin): decode+matrix+loss {hot:,.0f} samples/CPU-s "
        f"(EPIX 35k/s headroom x{hot / EPIX_SAMPLES_PER_S:.1f}); "
        f"process_files to the lake {e2e:,.0f} samples/CPU-s (x{e2e / EPIX_SAMPLES_PER_S:.1f}); "
        f"CPython {platform.python_version()}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(line)
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(RESULTS_HEADER)
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
