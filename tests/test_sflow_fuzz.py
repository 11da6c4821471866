"""Fuzzing the sFlow decoder: whatever the bytes, only DecodeError escapes, quickly and in little memory.

Inputs: hypothesis-generated datagrams (random bytes, and structurally plausible datagrams with random
formats, lengths and counts built with the test encoder of test_sflow_decode), and mutations of the real
captures: truncation at every offset, every single-bit flip, random byte overwrites. Hypothesis runs
with a fixed number of examples, a deadline and no example database (nothing is written to the repo).
"""

from __future__ import annotations

import random
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.pcap import read_udp_datagrams
from ingest.sflow import SflowDatagram, SflowDecodeError, decode_datagram
from peerpool.errors import DecodeError
from tests.test_packet import eth, ext8, ipv4, ipv6, tcp, udp
from tests.test_sflow_decode import (
    counter_sample,
    datagram,
    extended_switch,
    flow_sample,
    generic_counters,
    raw_header,
    record,
    sampled_ethernet,
    sampled_ipv4,
    sampled_ipv6,
    words,
)

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
FUZZ = settings(max_examples=600, deadline=500, database=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_reject(data: bytes) -> SflowDatagram | None:
    """Decode; a DecodeError is an accepted outcome, anything else fails the test. Whatever comes
    out, whole or partial, holds only values within the lake's bounds."""
    try:
        decoded = decode_datagram(data)
    except DecodeError as exc:
        assert exc.protocol == "sflow5"
        assert -1 <= exc.offset <= len(data)
        assert str(exc) == str(exc).strip() and str(exc)[:1].islower()
        if isinstance(exc, SflowDecodeError) and exc.partial is not None:
            assert_within_bounds(exc.partial)
        return None
    assert_within_bounds(decoded)
    return decoded


# the bounds written out (ingest.sflow.constants): 8-bit protocol, 16-bit ports and EtherType, frames
# to 16 MiB; with them frame length x any 32-bit rate stays below 2**56
LIMITS = {"ip_protocol": 255, "src_port": 65535, "dst_port": 65535, "ethertype": 65535, "frame_length": 2**24}


def assert_within_bounds(decoded: SflowDatagram) -> None:
    for sample in decoded.flow_samples:
        for name, limit in LIMITS.items():
            value = getattr(sample, name)
            assert value is None or 0 <= value <= limit, (name, value)
        if sample.frame_length is not None:
            assert sample.frame_length * sample.sampling_rate < 2**56


def real_datagrams() -> list[bytes]:
    """A few datagrams of each real capture kind (flow, expanded flow, counters, IPv6 agent, QinQ)."""
    picks = [
        ("generated/pmacct-sfprobe.pcap", 3),
        ("pcaps/akvorado/sflow/data-1140.pcap", 1),
        ("pcaps/akvorado/sflow/data-qinq.pcap", 1),
        ("pcaps/akvorado/sflow/data-sflow-ipv4-data.pcap", 1),
        ("pcaps/tcpdump/sflow-print-v6.pcap", 3),
        ("pcaps/tcpdump/sflow_multiple_counter_30_pdus.pcap", 2),
    ]
    out = []
    for path, count in picks:
        payloads = [d.payload for d in read_udp_datagrams(REALDATA / path)]
        out += [p for p in payloads if p[:4] == b"\0\0\0\x05"][:count]
    assert len(out) == 11
    return out


REAL = real_datagrams()


# ---------------------------------------------------------------------------------------------
# hypothesis


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    decode_or_reject(data)


@FUZZ
@given(st.binary(min_size=0, max_size=600))
def test_random_bytes_behind_a_valid_header(body: bytes) -> None:
    decode_or_reject(words(5, 1, 0xC0000201, 0, 1, 2) + body)


frames = st.sampled_from(
    [
        eth(0x0800, ipv4(6, tcp(1, 2))),
        eth(0x86DD, ipv6(0, ext8(17, udp(3, 4)))),
        eth(0x0800, ipv4(17, udp(5, 6)), tags=((0x88A8, 10), (0x8100, 20))),
        b"",
    ]
)
u32 = st.integers(min_value=0, max_value=2**32 - 1)
record_formats = st.sampled_from([1, 2, 3, 4, 1001, 1002, 2001, 0x1001007]) | u32
# values on either side of the decoders' bounds (constants.MAX_*: 255, 65535, 2**24) and of the lake's
# int16 / int32 columns, for the 32-bit fields of the sampled records and the frame lengths
near_bounds = st.sampled_from([0, 255, 256, 32767, 32768, 65535, 65536, 2**24, 2**24 + 1, 2**31, 2**32 - 1])
bounded = near_bounds | u32


@st.composite
def flow_records(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["raw", "switch", "sampled", "random"]))
    if kind == "raw":
        frame = draw(frames)
        return raw_header(
            frame[: draw(st.integers(0, len(frame)))],
            protocol=draw(st.sampled_from([1, 11, 12, 99])),
            frame_length=draw(st.none() | bounded),
        )
    if kind == "sampled":
        which = draw(st.sampled_from(["ethernet", "ipv4", "ipv6"]))
        if which == "ethernet":
            return sampled_ethernet(draw(bounded), bytes(range(6)), bytes(range(6, 12)), draw(bounded))
        encode = sampled_ipv4 if which == "ipv4" else sampled_ipv6
        src, dst = ("192.0.2.1", "198.51.100.2") if which == "ipv4" else ("2001:db8::1", "::2")
        return encode(draw(bounded), draw(bounded), src, dst, draw(bounded), draw(bounded), draw(u32))
    if kind == "switch":
        return extended_switch(draw(u32), draw(u32), draw(u32), draw(u32))
    return record(draw(record_formats) & 0xFFF, draw(st.binary(max_size=64)))


@st.composite
def samples(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["flow", "xflow", "counters", "xcounters", "random"]))
    if kind in ("flow", "xflow"):
        recs = draw(st.lists(flow_records(), max_size=4))
        return flow_sample(
            recs,
            seq=draw(u32),
            rate=draw(u32),
            inp=(draw(st.integers(0, 3)), draw(st.integers(0, 2**30 - 1))),
            out=(draw(st.integers(0, 3)), draw(st.integers(0, 2**30 - 1))),
            expanded=kind == "xflow",
        )
    if kind in ("counters", "xcounters"):
        recs = draw(
            st.lists(st.sampled_from([generic_counters(), record(2, words(*range(13))), record(7, b"x")]))
        )
        return counter_sample(recs, expanded=kind == "xcounters")
    return record(draw(u32) & 0xFFFFF, draw(st.binary(max_size=80)))


@st.composite
def plausible_datagrams(draw: st.DrawFn) -> bytes:
    body = draw(st.lists(samples(), max_size=5))
    count = draw(st.one_of(st.none(), u32))
    data = bytearray(datagram(body, agent=draw(st.sampled_from(["192.0.2.1", "2001:db8::1"])), count=count))
    # then damage it a little: overwrite one aligned word with an extreme value
    if data and draw(st.booleans()):
        at = draw(st.integers(0, max(0, len(data) // 4 - 1))) * 4
        value = draw(st.sampled_from([0, 1, 3, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
        data[at : at + 4] = struct.pack("!I", value)
    return bytes(data)


@FUZZ
@given(plausible_datagrams())
def test_plausible_datagrams(data: bytes) -> None:
    decode_or_reject(data)


# ---------------------------------------------------------------------------------------------
# mutations of the real captures


@pytest.mark.timeout(60)
def test_truncation_at_every_offset() -> None:
    """Every strict prefix of a real datagram is rejected (the counts demand every byte), and the
    partial result holds exactly the samples that fitted, equal to the full decode's."""
    for data in REAL:
        full = decode_datagram(data)
        for cut in range(len(data)):
            with pytest.raises(SflowDecodeError) as info:
                decode_datagram(data[:cut])
            partial = info.value.partial
            if partial is not None:
                assert partial.flow_samples == full.flow_samples[: len(partial.flow_samples)]
                assert partial.counter_samples == full.counter_samples[: len(partial.counter_samples)]
                assert partial.sequence_number == full.sequence_number


@pytest.mark.timeout(60)
def test_every_single_bit_flip() -> None:
    decoded = rejected = 0
    for data in REAL:
        buffer = bytearray(data)
        for position in range(len(buffer) * 8):
            buffer[position // 8] ^= 1 << (position % 8)
            if decode_or_reject(bytes(buffer)) is None:
                rejected += 1
            else:
                decoded += 1
            buffer[position // 8] ^= 1 << (position % 8)
    # most flips hit payload bytes and decode; flips in lengths, counts, versions are rejected
    assert decoded > 0 and rejected > 0


@pytest.mark.timeout(60)
def test_random_overwrites_of_real_datagrams() -> None:
    rng = random.Random(20240501)
    for _ in range(20000):
        buffer = bytearray(rng.choice(REAL))
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(buffer))
            width = rng.choice([1, 2, 4])
            buffer[at : at + width] = rng.randbytes(width)
        if rng.random() < 0.2:
            del buffer[rng.randrange(len(buffer)) :]
        decode_or_reject(bytes(buffer))


@pytest.mark.timeout(60)
def test_huge_claims_stay_small_in_memory() -> None:
    """Counts and lengths of 2**32 - 1 must not be used to size anything."""
    one = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))])
    crafted = [
        datagram([one], count=2**32 - 1),
        datagram([], count=2**32 - 1),
        datagram([record(1, words(1, 2, 3, 4, 5, 6, 7, 2**32 - 1))]),
        datagram([record(3, words(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2**32 - 1))]),
        datagram([record(2, words(1, 2, 2**32 - 1))]),
        datagram([record(4, words(1, 2, 3, 2**32 - 1))]),
        datagram([words(1, 2**32 - 1)]),
        datagram([flow_sample([words(1, 2**32 - 8)])]),
        datagram([flow_sample([record(1, words(1, 1500, 4, 2**32 - 1))])]),
        datagram([counter_sample([words(1, 2**32 - 4)])]),
    ]
    tracemalloc.start()
    try:
        for data in crafted * 20:
            with pytest.raises(SflowDecodeError):
                decode_datagram(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024, f"peak {peak} bytes"
