"""Benchmark: IPFIX decoding speed on one core, on real softflowd datagrams, both decoding paths.

Run from the repository root:

    .venvs/core/bin/python bench/bench_ipfix_decode.py            # measure, append to bench/RESULTS.md
    .venvs/core/bin/python bench/bench_ipfix_decode.py --profile  # also print where the time goes

The corpus (../shared/realdata/bench/corpus-softflowd-ipfix-1182dgrams.datagrams.bin.gz, repeated
[4-byte big-endian length][datagram]) is what the pmacct nfacctd measurements in
../shared/realdata/README.md section 4 replayed: 1,182 IPFIX datagrams from softflowd with 25.4 data
records each in 11.6 sets (templates re-sent along the way). The peer figure: nfacctd accounted
0.68-0.79 M records per CPU-second (core + plugin, etype/proto aggregation), end to end (measured
side by side in bench_vs_pmacct.py). In one process pinned to one CPU, in the same run:

* column-wise (what the pipeline runs): ``NetflowDecoder.decode_into`` a ``ColumnarBatch``, and its
  ``table()`` (every FLOWS column as Arrow, times in ns) every ``ingest.pipeline.FLOWS_CHUNK``
  records; reported together and split into the two parts;
* reference: ``NetflowDecoder.decode`` to row dicts (no Arrow; the pipeline's row path then still
  pays ``pa.Table.from_pylist``).

CPU time (``time.process_time``), best of three rounds per path: the machine is shared, and other
work slows a round down, never speeds it up.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gzip
import io
import os
import platform
import pstats
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.netflow import NetflowDecoder, TemplateCache  # noqa: E402
from ingest.netflow.columnar import ColumnarBatch  # noqa: E402
from ingest.pipeline import FLOWS_CHUNK  # noqa: E402

CORPUS = REPO.parent / "shared" / "realdata" / "bench" / "corpus-softflowd-ipfix-1182dgrams.datagrams.bin.gz"
RESULTS = REPO / "bench" / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (one line per run, appended by the bench/ scripts)\n"
EXPORTER = "127.0.0.1"
T0 = 1_767_225_600 * 10**9


def load_corpus(path: Path) -> list[bytes]:
    raw = gzip.decompress(path.read_bytes())
    datagrams = []
    offset = 0
    while offset + 4 <= len(raw):
        (length,) = struct.unpack_from("!I", raw, offset)
        datagrams.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return datagrams


def run_reference(decoder: NetflowDecoder, datagrams: list[bytes], seconds: float) -> tuple[int, float]:
    """Decode to row dicts again and again for about ``seconds``; (records, CPU s)."""
    n_records = 0
    decode = decoder.decode
    start = time.process_time()
    deadline = start + seconds
    k = 0
    while time.process_time() < deadline:
        for datagram in datagrams:
            n_records += len(decode(datagram, EXPORTER, T0 + k))
            k += 1
    return n_records, time.process_time() - start


def run_columnar(decoder: NetflowDecoder, datagrams: list[bytes], seconds: float) -> tuple[int, float, float]:
    """decode_into + a table every FLOWS_CHUNK records (and of what is left at the end) for about
    ``seconds``; (records, CPU s decoding, CPU s making tables)."""
    batch = ColumnarBatch(decoder.stats)
    decode_into = decoder.decode_into
    n_records = 0
    table_s = 0.0
    start = time.process_time()
    deadline = start + seconds
    k = 0
    while time.process_time() < deadline:
        for datagram in datagrams:
            decode_into(batch, datagram, EXPORTER, T0 + k)
            k += 1
            if len(batch) >= FLOWS_CHUNK:
                t = time.process_time()
                n_records += batch.table().num_rows
                table_s += time.process_time() - t
    t = time.process_time()
    n_records += batch.table().num_rows
    end = time.process_time()
    table_s += end - t
    return n_records, end - start - table_s, table_s


def profile(decoder: NetflowDecoder, datagrams: list[bytes]) -> str:
    profiler = cProfile.Profile()
    batch = ColumnarBatch(decoder.stats)
    profiler.enable()
    for r in range(8):
        for i, datagram in enumerate(datagrams):
            decoder.decode_into(batch, datagram, EXPORTER, T0 + r * len(datagrams) + i)
    batch.table()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per round and path")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the column-wise path")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    datagrams = load_corpus(CORPUS)
    load_before = os.getloadavg()[0]
    reference = NetflowDecoder(TemplateCache())
    columnwise = NetflowDecoder(TemplateCache())
    run_reference(reference, datagrams, 0.3)  # warm up: templates learnt, layouts compiled
    run_columnar(columnwise, datagrams, 0.3)
    ref_best = col_best = 0.0
    col_split = (0.0, 0.0)
    n_col = n_ref = 0
    for _ in range(3):
        n, cpu = run_reference(reference, datagrams, args.seconds)
        if n / cpu > ref_best:
            ref_best, n_ref = n / cpu, n
        n, decode_s, table_s = run_columnar(columnwise, datagrams, args.seconds)
        if n / (decode_s + table_s) > col_best:
            col_best, col_split, n_col = n / (decode_s + table_s), (n / decode_s, n / table_s), n
    assert not reference.stats.errors and not columnwise.stats.errors, (reference.stats, columnwise.stats)
    load = max(load_before, os.getloadavg()[0])
    per_datagram = sum(len(reference.decode(d, EXPORTER, 0)) for d in datagrams) / len(datagrams)
    line = (
        f"{dt.date.today().isoformat()} ipfix decode, one core, best of 3: column-wise decode_into + "
        f"table {col_best:,.0f} records/s (decode_into {col_split[0]:,.0f}, table {col_split[1]:,.0f}; "
        f"{n_col:,} records), reference decode to row dicts {ref_best:,.0f} ({n_ref:,}), "
        f"x{col_best / ref_best:.1f}; "
        f"corpus-softflowd-ipfix-1182dgrams ({per_datagram:.1f} records per datagram); "
        f"CPython {platform.python_version()}; load {load:.1f} on {os.cpu_count()} CPUs; "
        "peer: nfacctd ~0.5-0.8 M records per CPU-second end to end (bench_vs_pmacct.py)"
    )
    print(line)
    if args.profile:
        print(profile(columnwise, datagrams))
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(RESULTS_HEADER)
        with RESULTS.open("a") as fh:
            fh.write(f"- {line}\n")


if __name__ == "__main__":
    main()
