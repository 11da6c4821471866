"""Benchmark: sFlow v5 decoding speed on one core, on real pmacct sfprobe datagrams.

Run from the repository root:

    .venvs/core/bin/python bench/bench_sflow_decode.py            # measure, append to bench/RESULTS.md
    .venvs/core/bin/python bench/bench_sflow_decode.py --profile  # also profile the C decoder's objects

The corpus (../shared/realdata/bench/corpus-pmacct-sfprobe-4529dgrams.datagrams.bin.gz, repeated
[4-byte big-endian length][datagram]) is what the pmacct sfacctd measurements in
../shared/realdata/README.md section 4 replayed: 4,529 distinct datagrams, ~6.6 flow samples each, every
sample with a raw packet header and an extended switch record. The peer figure to compare with is
sfacctd's ~0.8 M flow samples/s without loss on this 2-core box (0.55-0.7 M per CPU-second with MAC
aggregation), measured end to end (receive + decode + aggregate); this measures decoding only, three ways:

* ``ingest.sflow.decode.decode_datagram``: the pure-Python reference decoder (FlowSample objects);
* the C decoder's ``decode_datagram``: the same objects, built in C (``ingest.sflow.decode_datagram``
  is this one when the extension is built);
* ``FlowBatch.add``: every field decoded into C records without Python objects (what the pipeline
  uses), the batch emptied every ``FLOWS_CHUNK`` samples as the pipeline does.
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.pipeline import FLOWS_CHUNK  # noqa: E402
from ingest.sflow import fast  # noqa: E402
from ingest.sflow.decode import SflowDatagram, decode_datagram  # noqa: E402

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


def run(
    datagrams: list[bytes], seconds: float, decode: Callable[[bytes], SflowDatagram] = decode_datagram
) -> tuple[int, int, float]:
    """Decode the corpus again and again for about ``seconds``; return (datagrams, flow samples, CPU s)."""
    n_datagrams = n_samples = 0
    start = time.process_time()
    deadline = start + seconds
    while time.process_time() < deadline:
        for datagram in datagrams:
            n_samples += len(decode(datagram).flow_samples)
        n_datagrams += len(datagrams)
    return n_datagrams, n_samples, time.process_time() - start


def run_batch(datagrams: list[bytes], seconds: float) -> tuple[int, int, float]:
    """The same with ``FlowBatch.add`` (columnar C records), cleared every FLOWS_CHUNK samples."""
    batch = fast.new_batch()
    add = batch.add
    n_datagrams = n_samples = 0
    start = time.process_time()
    deadline = start + seconds
    while time.process_time() < deadline:
        for datagram in datagrams:
            n_samples += add(datagram)[0]
            if len(batch) >= FLOWS_CHUNK:
                batch.clear()
        n_datagrams += len(datagrams)
    return n_datagrams, n_samples, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measure for about this many CPU seconds")
    parser.add_argument("--profile", action="store_true", help="run one pass under cProfile and print it")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    if fast.decode_datagram_c is None:
        raise SystemExit("the C decoder is not built: uv pip install --no-deps -e .")
    decode_c = fast.decode_datagram_c
    datagrams = load_corpus(CORPUS)
    results: dict[str, tuple[int, int, float]] = {}
    bodies: list[tuple[str, Callable[[float], tuple[int, int, float]]]] = [
        ("pure", lambda seconds: run(datagrams, seconds)),
        ("C objects", lambda seconds: run(datagrams, seconds, decode_c)),
        ("C batch", lambda seconds: run_batch(datagrams, seconds)),
    ]
    for name, body in bodies:
        body(0.5)  # warm up (specialising interpreter, caches)
        results[name] = body(args.seconds)
        n_datagrams, n_samples, cpu = results[name]
        print(
            f"{name:10s}: {n_samples / cpu:>12,.0f} flow samples/s, {n_datagrams / cpu:>10,.0f} datagrams/s"
        )
    n_datagrams, n_samples, cpu = results["pure"]
    pure = n_samples / cpu
    c_objects = results["C objects"][1] / results["C objects"][2]
    c_batch = results["C batch"][1] / results["C batch"][2]
    load = os.getloadavg()[0]
    line = (
        f"{dt.date.today().isoformat()} sflow decode, one core: C decoder {c_objects:,.0f} flow samples/s "
        f"building the FlowSample objects (x{c_objects / pure:.1f}), {c_batch:,.0f} into the pipeline's "
        f"columnar batch (x{c_batch / pure:.1f}); pure-Python reference in the same run {pure:,.0f} "
        f"({n_datagrams / cpu:,.0f} datagrams/s); corpus-pmacct-sfprobe-4529dgrams; "
        f"CPython {platform.python_version()}; load {load:.1f} on {os.cpu_count()} CPUs; "
        f"peer: sfacctd ~0.8 M samples/s end to end on 2 cores"
    )
    print(line)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(20):
            for datagram in datagrams:
                decode_c(datagram)
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
