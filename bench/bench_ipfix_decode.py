"""Benchmark: IPFIX decoding speed on one core, on real softflowd datagrams.

Run from the repository root:

    .venvs/core/bin/python bench/bench_ipfix_decode.py            # measure, append to bench/RESULTS.md
    .venvs/core/bin/python bench/bench_ipfix_decode.py --profile  # also print where the time goes

The corpus (../shared/realdata/bench/corpus-softflowd-ipfix-1182dgrams.datagrams.bin.gz, repeated
[4-byte big-endian length][datagram]) is what the pmacct nfacctd measurements in
../shared/realdata/README.md section 4 replayed: 1,182 IPFIX datagrams from softflowd with 25.4 data
records each (templates re-sent along the way). The peer figure: nfacctd accounted 0.68-0.79 M
records per CPU-second (core + plugin, etype/proto aggregation), end to end; this measures decoding
only (datagram bytes to FLOWS dicts, with templates, sampling options and times), in one process
pinned to one CPU.
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

CORPUS = REPO.parent / "shared" / "realdata" / "bench" / "corpus-softflowd-ipfix-1182dgrams.datagrams.bin.gz"
RESULTS = REPO / "bench" / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (one line per run, appended by the bench/ scripts)\n"
EXPORTER = "127.0.0.1"


def load_corpus(path: Path) -> list[bytes]:
    raw = gzip.decompress(path.read_bytes())
    datagrams = []
    offset = 0
    while offset + 4 <= len(raw):
        (length,) = struct.unpack_from("!I", raw, offset)
        datagrams.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return datagrams


def run(decoder: NetflowDecoder, datagrams: list[bytes], seconds: float) -> tuple[int, int, float]:
    """Decode the corpus again and again for about ``seconds``; return (datagrams, records, CPU s)."""
    n_datagrams = n_records = 0
    decode = decoder.decode
    received = time.time_ns()
    start = time.process_time()
    deadline = start + seconds
    while time.process_time() < deadline:
        for datagram in datagrams:
            n_records += len(decode(datagram, EXPORTER, received))
        n_datagrams += len(datagrams)
    return n_datagrams, n_records, time.process_time() - start


def profile(decoder: NetflowDecoder, datagrams: list[bytes]) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        for datagram in datagrams:
            decoder.decode(datagram, EXPORTER, 0)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measure for about this many CPU seconds")
    parser.add_argument(
        "--profile", action="store_true", help="run three passes under cProfile and print them"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    datagrams = load_corpus(CORPUS)
    decoder = NetflowDecoder(TemplateCache())
    run(decoder, datagrams, 0.5)  # warm up: templates learnt, layouts compiled, interpreter specialised
    n_datagrams, n_records, cpu = run(decoder, datagrams, args.seconds)
    assert not decoder.stats.errors, decoder.stats.errors
    records_per_s = n_records / cpu
    load = os.getloadavg()[0]
    line = (
        f"{dt.date.today().isoformat()} ipfix NetflowDecoder.decode: {records_per_s:,.0f} records/s, "
        f"{n_datagrams / cpu:,.0f} datagrams/s on one core ({n_records:,} records in {cpu:.2f} CPU s; "
        f"corpus-softflowd-ipfix-1182dgrams; CPython {platform.python_version()}; load {load:.1f} on "
        f"{os.cpu_count()} CPUs; peer: nfacctd ~0.7 M records per CPU-second end to end)"
    )
    print(line)
    if args.profile:
        print(profile(decoder, datagrams))
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(RESULTS_HEADER)
        with RESULTS.open("a") as fh:
            fh.write(f"- {line}\n")


if __name__ == "__main__":
    main()
