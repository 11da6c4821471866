"""Hostile input: the NetFlow v9 / IPFIX decoder raises only DecodeError, never hangs, stays bounded.

Inputs are real datagrams from the shared captures, truncated at every length, bit-flipped and
overwritten at seeded random positions, plus hypothesis-generated messages. A second property
builds random valid IPFIX messages from values chosen by hypothesis and checks that decoding
returns exactly those values (the encoder is a few lines of RFC 7011 layout in this file).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.netflow import NetflowDecoder, TemplateCache
from ingest.pcap import read_udp_datagrams
from peerpool.errors import DecodeError, InputError
from peerpool.lake import FLOWS

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"

CAPTURES = [
    "pcaps/akvorado/netflow/data+templates.pcap",
    "pcaps/akvorado/netflow-combined/v9-multiplesamplingrates.pcap",
    "pcaps/akvorado/netflow-combined/ipfix-ipfixprobe-biflow.pcap",
    "pcaps/akvorado/netflow/physicalinterfaces.pcap",
    "pcaps/logstash-codec-netflow/ipfix_netscaler_with_variable_length_fields.pcap",
    "pcaps/logstash-codec-netflow/netflow_9_h3c_netstream_with_varstring.pcap",
    "pcaps/logstash-codec-netflow/netflow_9_ipt_netflow_reduced_size_encoding.pcap",
    "pcaps/logstash-codec-netflow/ipfix_yaf_basic_with_applabel.pcap",
    "pcaps/pmacct/104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00.pcap",
    "generated/softflowd-v10.pcap",
]


def _datagrams() -> list[tuple[bytes, str]]:
    out: list[tuple[bytes, str]] = []
    for capture in CAPTURES:
        out.extend((d.payload, d.src_ip) for d in list(read_udp_datagrams(REALDATA / capture))[:8])
    return out


DATAGRAMS = _datagrams()


def _primed() -> NetflowDecoder:
    """A decoder that knows every template of the corpus, so mutated data sets get decoded."""
    decoder = NetflowDecoder(TemplateCache(max_pending_total=64, max_templates=512))
    for payload, exporter in DATAGRAMS:
        decoder.decode(payload, exporter, 0)
    return decoder


def _decode_safely(decoder: NetflowDecoder, payload: bytes, exporter: str) -> None:
    try:
        rows = decoder.decode(payload, exporter, 0)
    except DecodeError:
        return
    for row in rows:
        assert list(row) == FLOWS.names


@pytest.mark.timeout(60)
def test_truncation_at_every_length() -> None:
    decoder = _primed()
    for payload, exporter in DATAGRAMS:
        for cut in range(len(payload)):
            _decode_safely(decoder, payload[:cut], exporter)
            if payload[:2] == b"\x00\x0a" and cut >= 4:
                # an IPFIX header that agrees with the cut, so the sets themselves are cut short
                _decode_safely(decoder, payload[:2] + struct.pack("!H", cut) + payload[4:cut], exporter)
    assert decoder.cache.pending_count <= 64 and len(decoder.cache) <= 512


@pytest.mark.timeout(60)
def test_seeded_bit_flips_and_overwrites() -> None:
    rng = random.Random(20240601)
    decoder = _primed()
    for _ in range(40):
        for payload, exporter in DATAGRAMS:
            mutated = bytearray(payload)
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(mutated))
                if rng.random() < 0.5:
                    mutated[position] ^= 1 << rng.randrange(8)
                else:
                    mutated[position] = rng.choice((0x00, 0xFF, 0x80, 0x01, rng.randrange(256)))
            _decode_safely(decoder, bytes(mutated), exporter)
    assert decoder.cache.pending_count <= 64 and len(decoder.cache) <= 512


@pytest.mark.timeout(60)
def test_memory_stays_bounded_under_a_flood_of_unknown_templates() -> None:
    """Random template ids and data for unknown templates: caches stay within their bounds."""
    rng = random.Random(7)
    cache = TemplateCache(max_pending_total=100, max_pending_per_key=4, max_templates=200)
    decoder = NetflowDecoder(cache)
    tracemalloc.start()
    for i in range(3000):
        template_id = rng.randrange(256, 65536)
        fields = b"".join(
            struct.pack("!HH", rng.randrange(1, 400), rng.choice((1, 2, 4, 8, 16))) for _ in range(20)
        )
        template_set = struct.pack("!HHHH", 2, 8 + len(fields), template_id, 20) + fields
        data_set = struct.pack("!HH", rng.randrange(256, 65536), 4 + 1000) + rng.randbytes(1000)
        body = template_set + data_set
        message = struct.pack("!HHIII", 10, 16 + len(body), 0, i, rng.randrange(4)) + body
        _decode_safely(decoder, message, f"203.0.113.{i % 50}")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert cache.pending_count <= 100 and cache.pending_bytes <= 100 * 1000
    assert len(cache) == 200 and decoder.stats.errors["template cache full"] > 0
    assert peak < 64 * 1024 * 1024


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([9, 10]), body=st.binary(max_size=600))
def test_random_bodies_after_a_valid_header(version: int, body: bytes) -> None:
    if version == 9:
        header = struct.pack("!HHIIII", 9, 3, 1000, 1_700_000_000, 1, 0)
    else:
        header = struct.pack("!HHIII", 10, 16 + len(body), 1_700_000_000, 1, 0)
    decoder = NetflowDecoder(TemplateCache(max_pending_total=8))
    _decode_safely(decoder, header + body, "192.0.2.1")
    _decode_safely(decoder, header + body, "192.0.2.1")  # again, with whatever it learnt


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000))
def test_random_cache_files_raise_input_error(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    path = tmp_path_factory.mktemp("cache") / "templates.json"
    path.write_bytes(blob)
    with contextlib.suppress(InputError):
        TemplateCache.load(path)


def test_damaged_cache_json_raises_input_error(tmp_path: Path) -> None:
    decoder = _primed()
    good = decoder.cache.to_json()
    rng = random.Random(3)
    text = json.dumps(good)
    for _ in range(200):
        chars = list(text)
        for _ in range(3):
            chars[rng.randrange(len(chars))] = rng.choice('{}[]",:0a-')
        path = tmp_path / "t.json"
        path.write_text("".join(chars))
        with contextlib.suppress(InputError):
            TemplateCache.load(path)


# --- round trip: random valid IPFIX messages decode to the values they were built from ------------

# (element, length, column, kind)
FIELD_CHOICES: list[tuple[int, int, str | None, str]] = [
    (1, 8, "bytes", "uint"),  # past 2**63 - 1: left out (the lake's int64)
    (1, 4, "bytes", "uint"),
    (1, 3, "bytes", "uint"),
    (2, 4, "packets", "uint"),
    (2, 6, "packets", "uint"),
    (4, 1, "ip_protocol", "uint"),
    (4, 2, "ip_protocol", "uint"),  # an int16 column: past 32767 left out
    (60, 1, "ip_version", "uint"),  # an int8 column: past 127 left out
    (10, 8, "input_ifindex", "uint"),
    (243, 4, "vlan", "uint"),  # an int32 column
    (7, 2, "src_port", "uint"),
    (11, 2, "dst_port", "uint"),
    (10, 4, "input_ifindex", "uint"),
    (14, 2, "output_ifindex", "uint"),
    (8, 4, "src_ip", "ipv4"),
    (12, 4, "dst_ip", "ipv4"),
    (56, 6, "src_mac", "mac"),
    (80, 6, "dst_mac", "mac"),
    (243, 2, "vlan", "uint"),
    (256, 2, "ethertype", "uint"),
    (152, 8, "flow_start", "ms"),
    (153, 8, "flow_end", "ms"),
]
SKIPPED = [
    (82, 65535),
    (94, 0),
    (5, 1),
    (0x8000 | 77, 65535),
    (0x8000 | 3, 4),
]  # name, empty, tos, enterprise


@st.composite
def ipfix_messages(draw: st.DrawFn) -> tuple[bytes, list[dict[str, object]]]:
    chosen = draw(st.lists(st.sampled_from(FIELD_CHOICES), min_size=1, max_size=10, unique_by=lambda f: f[2]))
    skipped = draw(st.lists(st.sampled_from(SKIPPED), max_size=3))
    layout = chosen + [(e, n, None, "skip") for e, n in skipped]
    layout = draw(st.permutations(layout))
    spec = b""
    for element, length, _column, _kind in layout:
        spec += struct.pack("!HH", element, length) + (struct.pack("!I", 9) if element & 0x8000 else b"")
    records: list[bytes] = []
    expected: list[dict[str, object]] = []
    for _ in range(draw(st.integers(1, 5))):
        record = b""
        want: dict[str, object] = {}
        for _element, length, column, kind in layout:
            if kind == "skip":
                if length == 65535:
                    size = draw(st.integers(0, 300))
                    prefix = bytes([size]) if size < 255 else b"\xff" + struct.pack("!H", size)
                    record += prefix + b"z" * size
                else:
                    record += b"\x07" * length
            elif column is None:
                raise AssertionError("only skipped fields have no column")
            elif kind == "uint" or kind == "ms":
                value = draw(st.integers(0, 2 ** (8 * length) - 1))
                record += value.to_bytes(length, "big")
                stored = value * 1_000_000 if kind == "ms" else value
                # what the lake column can hold (timestamps: int64 ns before they become us)
                bits = 64 if kind == "ms" else FLOWS.field(column).type.bit_width
                want[column] = stored if stored < 2 ** (bits - 1) else None
            elif kind == "ipv4":
                value = draw(st.integers(0, 2**32 - 1))
                record += value.to_bytes(4, "big")
                want[column] = str(ipaddress.IPv4Address(value))
            else:
                raw = draw(st.binary(min_size=6, max_size=6))
                record += raw
                want[column] = ":".join(f"{b:02x}" for b in raw)
        records.append(record)
        expected.append(want)
    template_set = struct.pack("!HH", 400, len(layout)) + spec
    data = b"".join(records)
    body = (
        struct.pack("!HH", 2, 4 + len(template_set))
        + template_set
        + struct.pack("!HH", 400, 4 + len(data))
        + data
    )
    return struct.pack("!HHIII", 10, 16 + len(body), 1_700_000_000, 5, 3) + body, expected


@settings(max_examples=300, deadline=None)
@given(ipfix_messages())
def test_random_valid_ipfix_round_trips(case: tuple[bytes, list[dict[str, object]]]) -> None:
    message, expected = case
    decoder = NetflowDecoder(TemplateCache())
    rows = decoder.decode(message, "192.0.2.7", 99)
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert {k: row[k] for k in want} == want
        if "bytes" in want:
            assert row["estimated_bytes"] == want["bytes"]  # rate 1: nothing announced
    # each value left out is counted once (estimated_bytes follows bytes, at rate 1 it is no larger)
    out_of_range = sum(v is None for want in expected for v in want.values())
    assert decoder.stats.errors.get("value out of range", 0) == out_of_range
