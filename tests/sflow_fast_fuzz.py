"""Differential fuzzing of the C sFlow decoder against the pure-Python reference, run as a script.

    python -m tests.sflow_fast_fuzz real                   every sFlow datagram of the real captures
    python -m tests.sflow_fast_fuzz mutations [--scale S]  truncations, bit flips, overwrites of them
    python -m tests.sflow_fast_fuzz hypothesis [--scale S] random bytes, plausible datagrams
    python -m tests.sflow_fast_fuzz huge                   counts and lengths of 2**32 - 1
    python -m tests.sflow_fast_fuzz limits                 values at and past the value bounds, no samples
    python -m tests.sflow_fast_fuzz spool [--scale S]      spool files with damaged records (add_spool)

It lives outside pytest on purpose: tests/test_sflow_fast.py starts it in a subprocess, so a crash of
the C code (a segfault) fails that test instead of killing the test run, and the same script is what
runs under valgrind memcheck (see the module docstring of tests/test_sflow_fast.py).

Every input is decoded by the reference (``ingest.sflow.decode.decode_datagram``, from bytes) and by
the C module from a buffer placed against a PROT_NONE guard page, once ending right before the guard
and once starting right after another one: a read past either end of the datagram faults at once.
Compared: the whole result or the whole error (message, offset, exporter, partial result), the
``FlowBatch`` view of the same datagram (what it adds, its sequence runs, counter samples, error),
and, every few hundred datagrams, the batch's Arrow columns against the pure pipeline's flows table.
Exit status 0 when everything agreed, 1 with the first disagreements printed.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import mmap
import random
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ingest import spool as sp
from ingest.enrich import Enricher
from ingest.pcap import read_udp_datagrams
from ingest.pipeline import _FlowsBuffer
from ingest.sflow import fast
from ingest.sflow.decode import FlowSample, SflowDecodeError
from ingest.sflow.decode import decode_datagram as decode_py

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
BENCH_CORPUS = REALDATA / "bench" / "corpus-pmacct-sfprobe-4529dgrams.datagrams.bin.gz"
GENERATED = REALDATA / "generated" / "pmacct-sfprobe.datagrams.bin"
MAX_SIZE = 65536


class GuardedBuffer:
    """A region of anonymous memory between two PROT_NONE pages (reads past a datagram fault)."""

    def __init__(self) -> None:
        self.page = mmap.PAGESIZE
        self.data_pages = (MAX_SIZE + self.page - 1) // self.page
        self.region = mmap.mmap(-1, (self.data_pages + 2) * self.page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.region))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for page in (0, self.data_pages + 1):
            if libc.mprotect(base + page * self.page, self.page, 0) != 0:  # PROT_NONE
                raise OSError(ctypes.get_errno(), "mprotect failed")
        self.view = memoryview(self.region)

    def at_end(self, data: bytes) -> memoryview:
        """``data`` ending right before the upper guard page."""
        end = (self.data_pages + 1) * self.page
        self.region[end - len(data) : end] = data
        return self.view[end - len(data) : end]

    def at_start(self, data: bytes) -> memoryview:
        """``data`` starting right after the lower guard page."""
        start = self.page
        self.region[start : start + len(data)] = data
        return self.view[start : start + len(data)]


def outcome(decode: Callable[[Any], Any], data: Any) -> tuple[Any, ...]:
    """Everything a decode gives: the datagram, or the error with its partial result."""
    try:
        g = decode(data)
    except SflowDecodeError as exc:
        p = exc.partial
        partial = None
        if p is not None:
            partial = (
                p.version,
                p.agent_address,
                p.sub_agent_id,
                p.sequence_number,
                p.uptime_ms,
                p.flow_samples,
                p.counter_samples,
                p.unknown_samples,
                p.unknown_records,
                p.skipped_records,
            )
        return ("error", type(exc), str(exc), exc.args, exc.offset, exc.exporter, exc.protocol, partial)
    return (
        "ok",
        type(g),
        g.version,
        g.agent_address,
        g.sub_agent_id,
        g.sequence_number,
        g.uptime_ms,
        g.flow_samples,
        g.counter_samples,
        g.unknown_samples,
        g.unknown_records,
        g.skipped_records,
    )


def runs_of(samples: list[FlowSample]) -> list[tuple[int, int, int, int]]:
    """Sequence runs written out plainly: one source, each sequence one more than the last."""
    runs: list[list[int]] = []
    for s in samples:
        last = runs[-1] if runs else None
        if (
            last is not None
            and (last[0], last[1]) == (s.source_id_type, s.source_id_index)
            and (last[2] + last[3]) % (1 << 32) == s.sequence_number
        ):
            last[3] += 1
        else:
            runs.append([s.source_id_type, s.source_id_index, s.sequence_number, 1])
    return [(a, b, c, d) for a, b, c, d in runs]


class Checker:
    def __init__(self) -> None:
        if not fast.AVAILABLE or fast.decode_datagram_c is None:
            raise SystemExit(
                "the C decoder is not built: install the package (uv pip install --no-deps -e .)"
            )
        self.decode_c = fast.decode_datagram_c
        self.guard = GuardedBuffer()
        self.batch = fast.new_batch()
        self.batch_expected: list[FlowSample] = []
        self.batch_ctx: list[tuple[int, int, str, int]] = []
        self.checked = 0
        self.failures: list[str] = []

    def fail(self, what: str, data: bytes, expected: Any, got: Any) -> None:
        if len(self.failures) < 5:
            self.failures.append(
                f"{what} differs on {data.hex()[:400]}:\n"
                f"  reference: {expected!r:.1500}\n  C:         {got!r:.1500}"
            )
        else:
            self.failures.append(what)

    def check(self, data: bytes) -> None:
        data = data[:MAX_SIZE]
        self.checked += 1
        expected = outcome(decode_py, data)
        for view in (self.guard.at_end(data), self.guard.at_start(data)):
            got = outcome(self.decode_c, view)
            if got != expected:
                self.fail("decode_datagram", data, expected, got)
        self.check_batch(data, expected)

    def check_batch(self, data: bytes, expected: tuple[Any, ...]) -> None:
        batch = self.batch
        before = len(batch)
        added, agent, sub, seq, uptime, runs, counters, error = batch.add(self.guard.at_end(data))
        if expected[0] == "ok":
            _, _, _, e_agent, e_sub, e_seq, e_uptime, flows, e_counters, *_ = expected
            e_error = None
        else:
            partial = expected[7]
            e_error = (expected[2], expected[4])
            if partial is None:
                want: tuple[Any, ...] = (0, None, None, [])
                got: tuple[Any, ...] = (added, agent, counters, batch.samples(before))
                if got != want or error is None or (str(error), error.offset) != e_error:
                    self.fail("FlowBatch.add (bad header)", data, (want, e_error), (got, error))
                return
            _, e_agent, e_sub, e_seq, e_uptime, flows, e_counters, *_ = partial
        got = (
            added,
            agent,
            sub,
            seq,
            uptime,
            runs,
            counters or [],
            None if error is None else (str(error), error.offset),
            batch.samples(before),
        )
        want = (len(flows), e_agent, e_sub, e_seq, e_uptime, runs_of(flows), e_counters, e_error, flows)
        if got != want:
            self.fail("FlowBatch.add", data, want, got)
        if added:
            assert agent is not None
            self.batch_expected += flows
            self.batch_ctx.append((added, 1_700_000_000_000_000_000 + self.checked, agent, sub))
        if len(batch) >= 400:
            self.check_columns()

    def check_columns(self) -> None:
        """The batch's Arrow columns against the pure pipeline's flows table of the same samples."""
        batch = self.batch
        pure = _FlowsBuffer(Enricher(), "fuzz")
        pure.samples = list(self.batch_expected)
        pure.sample_ctx = list(self.batch_ctx)
        try:
            table = pure._sflow_table()
        except Exception as exc:  # the pure path refuses values its columns cannot hold
            if fast.batch_columns(batch).lake is not None:
                self.failures.append(f"pure flows table raised {exc!r} but the C columns were built")
        else:
            cols = fast.batch_columns(batch)
            if cols.lake is None:
                self.failures.append("C columns refused a batch the pure flows table accepted")
            else:
                for name, array in {**cols.lake, **cols.text}.items():
                    if not array.equals(table.column(name).combine_chunks()):
                        self.failures.append(f"flows column {name} differs")
        if batch.samples() != self.batch_expected:
            self.failures.append("FlowBatch.samples() differs from the samples added")
        batch.clear()
        self.batch_expected, self.batch_ctx = [], []

    def finish(self) -> int:
        if len(self.batch):
            self.check_columns()
        if self.failures:
            print(f"{len(self.failures)} disagreements in {self.checked} inputs", file=sys.stderr)
            for failure in self.failures[:5]:
                print(failure, file=sys.stderr)
            return 1
        print(f"{self.checked} inputs: C decoder and reference agree")
        return 0


# --- spool files: FlowBatch.add_spool against the spool reader + reference decoder -----------

SPOOL_GUARD_SIZE = 1 << 20


def spool_events_reference(blob: bytes) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """Every record ingest.spool's reader finds, with what the reference decoder makes of it:
    (offset, arrival, the decode as in ``spool_events_batch`` or None when the batch must leave the
    record to the per-datagram path: another protocol, or an error), and the reader's damage list."""
    stats = sp.SpoolReadStats()
    events: list[tuple[Any, ...]] = []
    for record in sp._iter_records(blob, len(sp.MAGIC), len(blob), stats):  # type: ignore[arg-type]
        decoded = None
        if record.protocol == sp.PROTO_SFLOW5:
            result = outcome(decode_py, bytes(record.datagram))
            if result[0] == "ok":
                _, _, _, agent, sub, seq, uptime, flows, counters, *_ = result
                decoded = (agent, sub, seq, uptime, runs_of(flows), counters or None, flows)
        events.append((record.offset, record.arrival_ns, decoded))
    return events, [stats.damaged, stats.torn_tail]


def spool_agree(reference: list[tuple[Any, ...]], got: list[tuple[Any, ...]]) -> bool:
    """Every record once, in order: one the batch read must be a clean sFlow record decoded as the
    reference decodes it; one it handed over must be the reader's record at that offset."""
    if len(reference) != len(got):
        return False
    for (offset, arrival, decoded), event in zip(reference, got, strict=True):
        if event[0] == "reader":
            if event[1] != offset:
                return False
        elif decoded is None or event[1] != arrival or event[2:] != decoded:
            return False
    return True


def spool_events_batch(checker: Checker, blob: bytes, limit: int) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """The same, the way ingest.pipeline reads a spool file on the C path (the blob against a guard page)."""
    view = checker.guard.at_end(blob) if len(blob) <= MAX_SIZE else memoryview(blob)
    batch = fast.new_batch()
    stats = sp.SpoolReadStats()
    events: list[tuple[Any, ...]] = []
    pos, end = len(sp.MAGIC), len(blob)
    while pos < end:
        before = len(batch)
        pos, why, datagrams = batch.add_spool(view, pos, end, limit)
        samples = batch.samples(before)
        for arrival, agent, sub, seq, uptime, runs, counters in datagrams:
            count = sum(run[3] for run in runs)
            events.append(("batch", arrival, agent, sub, seq, uptime, runs, counters, samples[:count]))
            samples = samples[count:]
        if len(batch) >= limit:
            batch.clear()
        if why == 2:
            record = next(sp._iter_records(blob, pos, end, stats), None)  # type: ignore[arg-type]
            if record is None:
                break
            events.append(("reader", record.offset))
            pos = record.offset + sp.RECORD_OVERHEAD + len(record.datagram)
        elif why == 0:
            break
    return events, [stats.damaged, stats.torn_tail]


def spool_blobs(scale: float) -> Iterator[bytes]:
    rng = random.Random(4242)
    real = real_sflow_datagrams()
    pool = [d for datagrams in real.values() for d in datagrams[:50]]
    af, raw = sp.pack_address("192.0.2.1")
    for _ in range(max(10, int(400 * scale))):
        blob = bytearray(sp.MAGIC)
        for k in range(rng.randrange(1, 12)):
            data = rng.choice(pool)
            if rng.random() < 0.2:  # a datagram with an error inside a sound record
                cut = bytearray(data[: rng.randrange(len(data))])
                data = bytes(cut)
            protocol = rng.choice([sp.PROTO_SFLOW5] * 6 + [sp.PROTO_IPFIX, sp.PROTO_UNKNOWN, 7])
            record = bytearray(sp.encode_record(data, T_SPOOL + k, af, raw, 6343, min(protocol, 255)))
            roll = rng.random()
            if roll < 0.1:
                record[rng.randrange(len(record))] ^= 1 << rng.randrange(8)
            elif roll < 0.15:
                record[0:4] = struct.pack(">I", rng.choice([0, 27, 28, 65563, 65564, 0xFFFFFFFF]))
            elif roll < 0.2:
                record = record[: rng.randrange(len(record))]
            elif roll < 0.25:
                blob += rng.randbytes(rng.randrange(1, 40))
            blob += record
        yield bytes(blob)


T_SPOOL = 1_767_225_600 * 10**9


# --- inputs ---------------------------------------------------------------------------------


def length_prefixed(raw: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 4 <= len(raw):
        (n,) = struct.unpack_from("!I", raw, pos)
        out.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def real_sflow_datagrams() -> dict[str, list[bytes]]:
    """Every sFlow datagram of the real captures: pcaps/**, generated/, the bench corpus."""
    found: dict[str, list[bytes]] = {}
    for pcap in sorted((REALDATA / "pcaps").rglob("*.pcap")):
        payloads = [d.payload for d in read_udp_datagrams(pcap)]
        sflow = [p for p in payloads if p[:4] == b"\0\0\0\x05"]
        if sflow:
            found[str(pcap.relative_to(REALDATA))] = sflow
    found["generated/pmacct-sfprobe.datagrams.bin"] = length_prefixed(GENERATED.read_bytes())
    found["bench/corpus-pmacct-sfprobe"] = length_prefixed(gzip.decompress(BENCH_CORPUS.read_bytes()))
    return found


def mutations(scale: float) -> Iterator[bytes]:
    rng = random.Random(20261121)
    real = real_sflow_datagrams()
    bench = real.pop("bench/corpus-pmacct-sfprobe")
    seeds = [d for datagrams in real.values() for d in datagrams[:8]] + rng.sample(
        bench, max(1, int(40 * scale))
    )
    seeds = seeds[: max(3, int(len(seeds) * min(1.0, scale)))]
    for data in seeds:
        yield data
        for cut in range(len(data)):
            yield data[:cut]
        buffer = bytearray(data)
        for position in range(min(len(buffer) * 8, int(3000 * scale) + 8)):
            buffer[position // 8] ^= 1 << (position % 8)
            yield bytes(buffer)
            buffer[position // 8] ^= 1 << (position % 8)
    for _ in range(int(20000 * scale)):
        buffer = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(buffer))
            width = rng.choice([1, 2, 4])
            buffer[at : at + width] = rng.choice(
                [
                    rng.randbytes(width),
                    b"\xff" * width,
                    b"\0" * width,
                    struct.pack("!I", rng.randrange(300))[-width:],
                ]
            )
        if rng.random() < 0.2:
            del buffer[rng.randrange(len(buffer)) :]
        yield bytes(buffer)


def huge_claims() -> Iterator[bytes]:
    from tests.test_packet import eth, ipv4, tcp
    from tests.test_sflow_decode import counter_sample, datagram, flow_sample, raw_header, record, words

    one = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))])
    yield datagram([one], count=2**32 - 1)
    yield datagram([], count=2**32 - 1)
    yield datagram([record(1, words(1, 2, 3, 4, 5, 6, 7, 2**32 - 1))])
    yield datagram([record(3, words(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2**32 - 1))])
    yield datagram([record(2, words(1, 2, 2**32 - 1))])
    yield datagram([record(4, words(1, 2, 3, 2**32 - 1))])
    yield datagram([words(1, 2**32 - 1)])
    yield datagram([flow_sample([words(1, 2**32 - 8)])])
    yield datagram([flow_sample([record(1, words(1, 1500, 4, 2**32 - 1))])])
    yield datagram([counter_sample([words(1, 2**32 - 4)])])
    yield datagram([flow_sample([raw_header(b"\0" * 20, frame_length=2**32 - 1)], rate=2**32 - 1)])


def bound_cases() -> Iterator[bytes]:
    """Every bounded field (constants.MAX_*) of the sampled records and the raw header's frame length
    at values on either side of its bound and of the lake's int16 / int32 columns, at the smallest and
    the largest sampling rate, after a sound sample and before a raw header; and datagrams without
    samples (IPv4 and IPv6 agent, with trailing bytes, and every truncation of them)."""
    from tests.test_packet import eth, ipv4, tcp
    from tests.test_sflow_decode import (
        MAC_DST,
        MAC_SRC,
        datagram,
        flow_sample,
        raw_header,
        sampled_ethernet,
        sampled_ipv4,
        sampled_ipv6,
    )

    for agent in ("192.0.2.1", "2001:db8::1"):
        empty = datagram([], agent=agent)
        yield empty
        yield empty + bytes(8)
        for cut in range(len(empty)):
            yield empty[:cut]
    frame = eth(0x0800, ipv4(6, tcp(1, 2)))
    good = flow_sample([raw_header(frame)], seq=1)
    values = [0, 1, 255, 256, 32767, 32768, 65535, 65536, 2**24 - 1, 2**24, 2**24 + 1, 2**31, 2**32 - 1]
    v4 = ("192.0.2.7", "198.51.100.9")
    v6 = ("2001:db8::7", "2001:db8::9")
    for v in values:
        records = [
            sampled_ipv4(v, 6, *v4, 1, 2, 0),
            sampled_ipv4(64, v, *v4, 1, 2, 0),
            sampled_ipv4(64, 6, *v4, v, 2, 0),
            sampled_ipv4(64, 6, *v4, 1, v, 0),
            sampled_ipv6(v, 6, *v6, 1, 2, 0),
            sampled_ipv6(64, v, *v6, 1, 2, 0),
            sampled_ipv6(64, 6, *v6, v, 2, 0),
            sampled_ipv6(64, 6, *v6, 1, v, 0),
            sampled_ethernet(v, MAC_SRC, MAC_DST, 0x0800),
            sampled_ethernet(64, MAC_SRC, MAC_DST, v),
            raw_header(frame, frame_length=v),
        ]
        for rate in (1, 2**32 - 1):
            for rec in records:
                yield datagram([good, flow_sample([rec], rate=rate, seq=2)])
                yield datagram([flow_sample([rec, raw_header(frame)], rate=rate, seq=3)])


def run_hypothesis(checker: Checker, scale: float) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.test_sflow_decode import words
    from tests.test_sflow_fuzz import plausible_datagrams

    examples = max(20, int(1500 * scale))
    config = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )

    @config
    @given(st.binary(max_size=2048))
    def random_bytes(data: bytes) -> None:
        checker.check(data)

    @config
    @given(st.binary(max_size=600), st.sampled_from([1, 2]))
    def behind_a_valid_header(body: bytes, address_type: int) -> None:
        address = words(0xC0000201) if address_type == 1 else bytes(range(16))
        checker.check(words(5, address_type) + address + words(0, 1, 2) + body)

    @config
    @given(plausible_datagrams())
    def plausible(data: bytes) -> None:
        checker.check(data)

    random_bytes()
    behind_a_valid_header()
    plausible()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("routine", choices=["mutations", "hypothesis", "huge", "limits", "real", "spool"])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default amount of inputs")
    args = parser.parse_args()
    checker = Checker()
    if args.routine == "mutations":
        for data in mutations(args.scale):
            checker.check(data)
    elif args.routine == "real":
        for datagrams in real_sflow_datagrams().values():
            for data in datagrams:
                checker.check(data)
    elif args.routine == "spool":
        batched = 0
        for blob in spool_blobs(args.scale):
            checker.checked += 1
            want, want_damage = spool_events_reference(blob)
            for limit in (1, 7, 250_000):
                got, got_damage = spool_events_batch(checker, blob, limit)
                batched += sum(1 for event in got if event[0] == "batch")
                if not spool_agree(want, got) or got_damage != want_damage:
                    checker.fail(f"add_spool (limit {limit})", blob, (want, want_damage), (got, got_damage))
        if batched == 0:
            checker.failures.append("add_spool never read a record")
    elif args.routine == "huge":
        for data in huge_claims():
            checker.check(data)
    elif args.routine == "limits":
        for data in bound_cases():
            checker.check(data)
    else:
        run_hypothesis(checker, args.scale)
    return checker.finish()


if __name__ == "__main__":
    raise SystemExit(main())
