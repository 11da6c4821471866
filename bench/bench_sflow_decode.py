"""Benchmark: sFlow v5 decoding speed on one core, on real pmacct sfprobe datagrams.

Run from the repository root:

    .venvs/core/bin/python bench/bench_sflow_decode.py            # measure, append to bench/RESULTS.md
    .venvs/core/bin/python bench/bench_sflow_decode.py --profile  # also print where the time goes

The corpus (../shared/realdata/bench/corpus-pmacct-sfprobe-4529dgrams.datagrams.bin.gz, repeated
[4-byte big-endian length][datagram]) is what the pmacct sfacctd measurements in
../shared/realdata/README.md section 4 replayed: 4,529 distinct datagrams, ~6.6 flow samples each, every
sample with a raw packet header and an extended switch record. The peer figure to compare with is
sfacctd's ~0.8 M flow samples/s without loss on this 2-core box (0.55-0.7 M per CPU-second with MAC
aggregation), measured end to end (receive + decode + aggregate); this measures decoding only.
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

from ingest.sflow.decode import decode_datagram  # noqa: E402

CORPUS = REPO.parent / "shared" / "realdata" / "bench" / "corpus-pmacct-sfprobe-4529dgrams.datagrams.bin.gz"
RESULTS = REPO / "bench" / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (one line per run, appended by the bench/ scripts)\n"


def load_corpus(path: Path) -> list[bytes]:
    raw = gzip.decompress(path.read_bytes())
    datagrams = []
    offset = 0
    while offset + 4 <= len(raw):
        (length,) = struct.unpack_from("!I", raw, offset)
        datagrams.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return datagrams


def run(datagrams: list[bytes], seconds: float) -> tuple[int, int, float]:
    """Decode the corpus again and again for about ``seconds``; return (datagrams, flow samples, CPU s)."""
    n_datagrams = n_samples = 0
    start = time.process_time()
    deadline = start + seconds
    decode = decode_datagram
    while time.process_time() < deadline:
        for datagram in datagrams:
            n_samples += len(decode(datagram).flow_samples)
        n_datagrams += len(datagrams)
    return n_datagrams, n_samples, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measure for about this many CPU seconds")
    parser.add_argument("--profile", action="store_true", help="run one pass under cProfile and print it")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    datagrams = load_corpus(CORPUS)
    run(datagrams, 0.5)  # warm up (specialising interpreter, caches)
    n_datagrams, n_samples, cpu = run(datagrams, args.seconds)
    samples_per_s = n_samples / cpu
    load = os.getloadavg()[0]
    line = (
        f"{dt.date.today().isoformat()} sflow decode_datagram: {samples_per_s:,.0f} flow samples/s, "
        f"{n_datagrams / cpu:,.0f} datagrams/s on one core ({n_samples:,} samples in {cpu:.2f} CPU s; "
        f"corpus-pmacct-sfprobe-4529dgrams; CPython {platform.python_version()}; load {load:.1f} on "
        f"{os.cpu_count()} CPUs; "
        f"peer: sfacctd ~0.8 M samples/s end to end on 2 cores)"
    )
    print(line)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for datagram in datagrams:
            decode_datagram(datagram)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        print(out.getvalue())
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(RESULTS_HEADER)
        with RESULTS.open("a") as fh:
            fh.write(f"- {line}\n")


if __name__ == "__main__":
    main()
