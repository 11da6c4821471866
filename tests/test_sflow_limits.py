"""Value bounds of the sFlow decoders, int64-safe matrix sums, and datagrams without samples.

sFlow carries the protocol, ports and type of its sampled IPv4 / IPv6 / Ethernet records, and every
frame length, as 32-bit words; the lake stores them as int16 / int32 columns and sums
frame length x sampling rate in int64. A value past its bound (``ingest.sflow.constants``:
protocol 0..255, ports and EtherType 0..65535, frame lengths 0..2**24) must be a decode error of that
one datagram, quarantined with a reason naming the field, while the rest of the spool file is stored;
sums of many samples past int64 are written as several rows of one key. A datagram announcing zero
samples is valid sFlow (the header after the agent address is 16 bytes) and counts for loss.

Independent references: the bounds and every offset are worked out by hand from the specification's
structures (https://sflow.org/sflow_version_5.txt; offsets in comments), expected sums are products of
the numbers put in, computed here; the zero-sample datagram is checked against tshark. Both decoders
(the C one and the pure-Python reference) and both pipeline paths are run on every case.
"""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ingest import spool as sp
from ingest.pipeline import process_files
from ingest.sflow import constants, fast
from ingest.sflow.decode import SflowDecodeError
from ingest.sflow.decode import decode_datagram as decode_py
from ingest.sflow.limits import INT64_MAX, split_int64_sums
from peerpool.simulate.sflow import SflowAgent
from tests.conftest import require_tool
from tests.test_packet import eth, ipv4, tcp, udp, write_pcap
from tests.test_pipeline import exchange, member, port, switch
from tests.test_pipeline_fast import lake_tables, run_both
from tests.test_sflow_decode import (
    MAC_DST,
    MAC_SRC,
    datagram,
    extended_switch,
    flow_sample,
    raw_header,
    sampled_ethernet,
    sampled_ipv4,
    sampled_ipv6,
)

T0 = 1_767_225_600 * 10**9  # 2026-01-01 00:00 UTC
AGENT = "192.0.2.1"
HEADER = 28  # version, address type, IPv4 agent, sub-agent, sequence, uptime, sample count: 7 words
# in a compact flow sample: format and length (8), 8 fields (32), the first record's format and length
# (8): the first record's body starts 48 bytes into the sample
FIRST_RECORD = 8 + 32 + 8
U32_MAX = 2**32 - 1


def decoders() -> list[Any]:
    assert fast.decode_datagram_c is not None, "the C decoder is not built (uv pip install --no-deps -e .)"
    return [decode_py, fast.decode_datagram_c]


def patch(data: bytes, at: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("!I", out, at, value)
    return bytes(out)


def simulated_sample(agent: SflowAgent, k: int, frame_length: int) -> bytes:
    """A flow sample as the simulated switch sends it: raw header record, then extended switch."""
    frame = eth(0x0800, ipv4(6, tcp(40000 + k, 443)))
    return agent.flow_sample(7, 9, 1000 + k, frame_length, frame, 100)


# --- the bounds ----------------------------------------------------------------------------------


def test_the_bounds_are_the_documented_numbers_in_both_decoders() -> None:
    from ingest.sflow import _fastsflow

    expected = {
        "MAX_IP_PROTOCOL": 255,
        "MAX_PORT": 65535,
        "MAX_ETHERTYPE": 65535,
        "MAX_FRAME_LENGTH": 16_777_216,
    }
    for name, value in expected.items():
        assert getattr(constants, name) == value, name
        assert getattr(_fastsflow, name) == value, name
    # the arithmetic in constants.py: one sample at the bounds stays below 2**56, 128 of them fit
    # int64 and 129 do not
    most = 16_777_216 * U32_MAX
    assert most == 2**56 - 2**24 < 2**56
    assert 128 * most <= INT64_MAX < 129 * most


@dataclass(frozen=True)
class Case:
    name: str
    record: str  # the record's name in the specification
    at: int  # offset of the bounded word in the record body
    field: str
    bad: int  # a value past the bound

    @property
    def sample(self) -> bytes:
        """A valid flow sample whose first record is this case's record."""
        return SAMPLES[self.record]

    @property
    def bound(self) -> int:
        return BOUNDS[self.field]

    @property
    def offset(self) -> int:
        """Offset of the bounded word in the sample."""
        return FIRST_RECORD + self.at


V4 = sampled_ipv4(1500, 6, "203.0.113.9", "198.51.100.1", 51000, 443, 0)
V6 = sampled_ipv6(1280, 17, "2001:db8::1", "2001:db8::2", 53, 5353, 0)
ETH = sampled_ethernet(1514, MAC_SRC, MAC_DST, 0x0800)
SAMPLES = {
    "sampled_ipv4": flow_sample([V4]),
    "sampled_ipv6": flow_sample([V6]),
    "sampled_ethernet": flow_sample([ETH]),
    "sampled_header": simulated_sample(SflowAgent(AGENT, 4096, False, T0 - 10**12), 0, 1518),
}
# the bounds, written out: an 8-bit IP protocol, 16-bit ports and EtherType, frame lengths to 16 MiB
BOUNDS = {"protocol": 255, "src_port": 65535, "dst_port": 65535, "type": 65535, "length": 2**24}
BOUNDS["frame_length"] = 2**24
# the FlowSample attribute a value within the bound lands in (a sampled record's length becomes the
# frame length when no raw header comes with it)
ATTRIBUTES = {"protocol": "ip_protocol", "type": "ethertype", "length": "frame_length"}
# record bodies (the words after format and length): sampled_ipv4 = length 0, protocol 4, src 8,
# dst 12, src_port 16, dst_port 20, tcp_flags 24, tos 28; sampled_ipv6 = length 0, protocol 4, src 8,
# dst 24, src_port 40, dst_port 44, tcp_flags 48, priority 52; sampled_ethernet = length 0,
# src_mac 4 (6 + 2 padding), dst_mac 12 (6 + 2), type 20; sampled_header = protocol 0, frame_length 4
CASES = [
    Case("ipv4-protocol", "sampled_ipv4", 4, "protocol", 256),
    Case("ipv4-protocol-u32", "sampled_ipv4", 4, "protocol", U32_MAX),
    Case("ipv6-protocol-int16", "sampled_ipv6", 4, "protocol", 32768),  # past the lake's int16
    Case("ipv4-src-port", "sampled_ipv4", 16, "src_port", 65536),
    Case("ipv4-dst-port-int32", "sampled_ipv4", 20, "dst_port", 2**31),  # past the lake's int32
    Case("ipv6-src-port", "sampled_ipv6", 40, "src_port", U32_MAX),
    Case("ipv6-dst-port", "sampled_ipv6", 44, "dst_port", 65536),
    Case("ipv4-length", "sampled_ipv4", 0, "length", 2**24 + 1),
    Case("ipv6-length", "sampled_ipv6", 0, "length", U32_MAX),
    Case("ethernet-type-int32", "sampled_ethernet", 20, "type", 2**31),
    Case("ethernet-type", "sampled_ethernet", 20, "type", 65536),
    Case("ethernet-length", "sampled_ethernet", 0, "length", U32_MAX),
    Case("header-frame-length", "sampled_header", 4, "frame_length", 2**24 + 1),
    Case("header-frame-length-u32", "sampled_header", 4, "frame_length", U32_MAX),
]


def reason_of(case: Case, sample_number: int) -> str:
    return (
        f"flow sample {sample_number}, record 1 ({case.record}): "
        f"{case.field} {case.bad} is outside 0..{case.bound}"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_value_past_its_bound_is_a_decode_error_of_both_decoders(case: Case) -> None:
    good = flow_sample([V4], seq=1)
    bad = patch(case.sample, case.offset, case.bad)
    data = datagram([good, bad])
    outcomes = []
    for decode in decoders():
        with pytest.raises(SflowDecodeError) as info:
            decode(data)
        error = info.value
        assert reason_of(case, 2) in str(error)
        assert "the exporter sent a value this field cannot have" in str(error)
        assert error.offset == HEADER + len(good) + case.offset
        assert error.partial is not None and [s.sequence_number for s in error.partial.flow_samples] == [1]
        outcomes.append((str(error), error.offset, error.partial.flow_samples))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_bound_itself_is_accepted(case: Case) -> None:
    data = datagram([patch(case.sample, case.offset, case.bound)])
    decoded = [decode(data).flow_samples for decode in decoders()]
    assert decoded[0] == decoded[1]
    (sample,) = decoded[0]
    assert getattr(sample, ATTRIBUTES.get(case.field, case.field)) == case.bound


def test_unused_sampled_record_is_checked_too() -> None:
    """A raw header wins over a sampled record's fields, but a sampled record with a protocol of
    2**32 - 1 is still a broken record: the datagram is an error, whichever record comes first."""
    bad_v4 = patch(V4, 8 + 4, U32_MAX)
    frame = eth(0x0800, ipv4(17, udp(7, 9)))
    for records in ([raw_header(frame), bad_v4], [bad_v4, raw_header(frame)]):
        for decode in decoders():
            with pytest.raises(
                SflowDecodeError, match=r"\(sampled_ipv4\): protocol 4294967295 is outside 0..255"
            ):
                decode(datagram([flow_sample(records)]))


# --- the pipeline: one bad datagram is quarantined, the rest of the file is stored -----------------


def spool_file(path: Path, datagrams: list[bytes], step_ns: int = 1_000_000_000) -> Path:
    af, raw = sp.pack_address(AGENT)
    with open(path, "wb") as fh:
        fh.write(sp.MAGIC)
        for k, data in enumerate(datagrams):
            fh.write(sp.encode_record(data, T0 + k * step_ns, af, raw, 50000, sp.PROTO_SFLOW5))
    return path


def table(tables: dict[str, pa.Table], name: str) -> pa.Table:
    parts = [t for path, t in sorted(tables.items()) if path.startswith(name + "/")]
    return pa.concat_tables(parts) if parts else pa.table({})


def test_spool_file_with_bad_datagrams_is_processed_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 sound datagrams of 3 samples from the simulator's encoder and, between them, one datagram
    per bad case (the bad sample patched at its hand-computed offset). Every second bad datagram has a
    sound sample before the bad one (kept, as the pipeline keeps the sound part of a damaged
    datagram), the others a sound sample after it (lost with the rest of that datagram)."""
    agent = SflowAgent(AGENT, 2048, False, T0 - 10**12)
    datagrams: list[bytes] = []
    kept: list[tuple[int, int]] = []  # (frame length, sampling rate) of every sample that must be stored
    quarantined: list[tuple[bytes, int, str]] = []  # datagram, offset of the bad word, reason
    for k in range(40):
        lengths = [64 + 37 * k + j for j in range(3)]
        datagrams.append(agent.datagram([simulated_sample(agent, k, n) for n in lengths], T0))
        kept += [(n, 2048) for n in lengths]
        if k < len(CASES):
            case = CASES[k]
            sound = simulated_sample(agent, 100 + k, 1000 + k)
            bad = patch(case.sample, case.offset, case.bad)
            if k % 2 == 0:
                data = agent.datagram([sound, bad], T0)
                at, number = HEADER + len(sound) + case.offset, 2
                kept.append((1000 + k, 2048))
            else:
                data = agent.datagram([bad, sound], T0)
                at, number = HEADER + case.offset, 1
            datagrams.append(data)
            quarantined.append((data, at, reason_of(case, number)))
    spool = spool_file(tmp_path / "20260101T0000-limits-1-000001.spool", datagrams)

    tables, files = run_both(monkeypatch, tmp_path, [spool])  # same lake and summary on both paths
    (f,) = files
    assert f["status"] == "processed"
    assert f["datagrams"] == f["sflow_datagrams"] == 40 + len(CASES)
    assert f["quarantined"] == len(CASES)
    assert f["partially_decoded"] == len(CASES)  # every bad datagram's header was sound
    assert f["datagrams_missing"] == 0  # quarantined datagrams still count for loss

    q = table(tables, "quarantine")
    assert q.num_rows == len(CASES)
    got = sorted(
        zip(q["datagram"].to_pylist(), q["offset"].to_pylist(), q["reason"].to_pylist(), strict=True)
    )
    for (data, at, reason), (g_data, g_at, g_reason) in zip(sorted(quarantined), got, strict=True):
        assert (g_data, g_at) == (data, at)
        assert reason in g_reason and g_reason.startswith("spool record at byte ")
    assert set(q["flow_protocol"].to_pylist()) == {"sflow5"}

    flows = table(tables, "flows")
    assert flows.num_rows == f["flow_samples"] == len(kept) == 120 + (len(CASES) + 1) // 2
    got_rows = sorted(zip(flows["bytes"].to_pylist(), flows["estimated_bytes"].to_pylist(), strict=True))
    assert got_rows == sorted((n, n * rate) for n, rate in kept)
    matrix = table(tables, "member_matrix")
    assert sum(matrix["sample_count"].to_pylist()) == len(kept)
    assert sum(matrix["estimated_bytes"].to_pylist()) == sum(n * rate for n, rate in kept)
    assert sum(matrix["estimated_packets"].to_pylist()) == sum(rate for _, rate in kept)

    # processing the file again changes nothing: unchanged without --force, replaced with it
    for mode in ("1", "0"):
        monkeypatch.setenv(fast.PURE_ENV, mode)
        lake = tmp_path / ("pure" if mode == "1" else "fast")
        assert process_files([spool], lake).files[0].status == "unchanged"
        assert process_files([spool], lake, force=True, retention_days=100_000).files[0].quarantined == len(
            CASES
        )
        again = lake_tables(lake)
        assert sorted(again) == sorted(tables)
        for name in ("flows", "member_matrix", "quarantine", "flow_loss"):
            assert table(again, name).num_rows == table(tables, name).num_rows, name
        assert sum(table(again, "member_matrix")["estimated_bytes"].to_pylist()) == sum(
            n * rate for n, rate in kept
        )


def test_values_at_the_bounds_are_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Protocol 255, ports 65535, EtherType 65535 and the largest frame length at the largest rate
    reach the lake's narrow columns unchanged; estimated bytes are the hand product."""
    most = 16_777_216 * 4_294_967_295  # MAX_FRAME_LENGTH x the largest u32 rate
    assert most == 72_057_594_021_150_720
    frame = eth(0x0800, ipv4(17, udp(65535, 65535)))
    samples = [
        flow_sample([raw_header(frame, frame_length=2**24)], rate=U32_MAX, seq=1),
        flow_sample([sampled_ipv4(2**24, 255, "10.0.0.7", "10.0.0.9", 65535, 65535, 0)], rate=U32_MAX, seq=2),
        flow_sample([sampled_ipv6(2**24, 255, "2001:db8::7", "::9", 65535, 0, 0)], rate=U32_MAX, seq=3),
        flow_sample([sampled_ethernet(2**24, MAC_SRC, MAC_DST, 65535)], rate=U32_MAX, seq=4),
    ]  # fmt: skip
    spool = spool_file(tmp_path / "20260101T0000-bounds-1-000001.spool", [datagram(samples)])
    tables, files = run_both(monkeypatch, tmp_path, [spool])
    assert files[0]["quarantined"] == 0
    flows = table(tables, "flows").sort_by("sequence_number")
    assert flows["sequence_number"].to_pylist() == [1, 2, 3, 4]
    assert flows["bytes"].to_pylist() == [2**24] * 4
    assert flows["estimated_bytes"].to_pylist() == [most] * 4
    assert flows["estimated_packets"].to_pylist() == [U32_MAX] * 4
    assert flows["ip_protocol"].to_pylist() == [17, 255, 255, None]
    assert flows["src_port"].to_pylist() == [65535, 65535, 65535, None]
    assert flows["dst_port"].to_pylist() == [65535, 65535, 0, None]
    assert flows["ethertype"].to_pylist() == [0x0800, None, None, 65535]
    assert flows.schema.field("ip_protocol").type == pa.int16()
    # four samples at the bounds: 4 x most < 2**63, one matrix row per key
    assert sum(table(tables, "member_matrix")["estimated_bytes"].to_pylist()) == 4 * most


# --- sums past int64 -----------------------------------------------------------------------------


def test_split_int64_sums_by_hand() -> None:
    small = {"k": "a", "estimated_bytes": 5, "estimated_packets": 2, "sample_count": 1}
    edge = {"k": "b", "estimated_bytes": INT64_MAX, "estimated_packets": 1, "sample_count": 1}
    big = {"k": "c", "estimated_bytes": 2 * INT64_MAX + 4, "estimated_packets": 10, "sample_count": 7}
    unknown = {"k": "d", "estimated_bytes": 3 * INT64_MAX + 1, "sample_count": 2}  # no packets column
    out = split_int64_sums([small, edge, big, unknown])
    assert out[0] is small and out[1] is edge  # within range: the same rows
    # 2 * INT64_MAX + 4 needs ceil((2 * INT64_MAX + 4) / INT64_MAX) = 3 parts; it is a multiple of 3
    # (2**63 leaves 2 when divided by 3, so INT64_MAX leaves 1 and 2 * INT64_MAX + 4 leaves 6 = 0)
    parts = [r for r in out if r["k"] == "c"]
    assert len(parts) == 3
    third = (2 * INT64_MAX + 4) // 3
    assert 3 * third == 2 * INT64_MAX + 4
    assert [p["estimated_bytes"] for p in parts] == [third, third, third]
    assert [p["estimated_packets"] for p in parts] == [4, 3, 3]
    assert [p["sample_count"] for p in parts] == [3, 2, 2]
    parts = [r for r in out if r["k"] == "d"]
    assert len(parts) == 4  # 3 * INT64_MAX + 1 -> 4 parts
    assert sum(p["estimated_bytes"] for p in parts) == 3 * INT64_MAX + 1
    assert [p["sample_count"] for p in parts] == [1, 1, 0, 0]
    assert all("estimated_packets" not in p for p in parts)
    assert all(p["estimated_bytes"] <= INT64_MAX for p in out)


def test_matrix_cell_past_int64_is_stored_as_several_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 samples at the bounds in one 5-minute cell: 300 x 72,057,594,021,150,720 =
    21,617,278,206,345,216,000 estimated bytes, past 2**64 (so past the C batch's 64-bit range too)
    and 2.34 times int64's largest value: three rows of the same key whose sums add up exactly, on
    both paths, in member_matrix and (the destination MAC is no member's) unknown_macs."""
    total = 300 * 72_057_594_021_150_720
    assert total == 21_617_278_206_345_216_000 > 2**64
    src_mac, dst_mac = "02:00:00:00:00:01", "02:00:00:00:00:99"
    frame = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    frame += eth(0x0800, ipv4(6, tcp(1, 2)))[12:]
    datagrams = []
    for d in range(3):
        samples = [
            flow_sample(
                [raw_header(frame, frame_length=2**24), extended_switch(100, 0, 100, 0)],
                rate=U32_MAX,
                seq=100 * d + k + 1,
            )
            for k in range(100)
        ]
        datagrams.append(datagram(samples, agent=AGENT, seq=d + 1))
    spool = spool_file(tmp_path / "20260101T0000-sums-1-000001.spool", datagrams)
    config = exchange(
        (switch("sw1", "KTW", AGENT),), (member(64500),), (port("sw1", "et1", 1, "AS64500", (src_mac,)),)
    )
    tables, files = run_both(monkeypatch, tmp_path, [spool], exchange=config)
    assert files[0]["flow_samples"] == files[0]["matrix_samples"] == 300
    matrix = table(tables, "member_matrix")
    assert matrix.num_rows == 3  # ceil(total / (2**63 - 1)) = ceil(2.34...) = 3
    assert set(matrix["src_member_id"].to_pylist()) == {"AS64500"}
    assert set(matrix["dst_member_id"].to_pylist()) == {None}
    assert sum(matrix["estimated_bytes"].to_pylist()) == total
    assert sum(matrix["estimated_packets"].to_pylist()) == 300 * U32_MAX
    assert sum(matrix["sample_count"].to_pylist()) == 300
    unknown = table(tables, "unknown_macs")
    assert set(unknown["mac"].to_pylist()) == {dst_mac}
    assert unknown.num_rows == 3
    assert sum(unknown["estimated_bytes"].to_pylist()) == total
    assert sum(unknown["sample_count"].to_pylist()) == 300 == files[0]["unknown_mac_samples"]


# --- datagrams without samples --------------------------------------------------------------------


def test_zero_sample_datagram_is_valid_in_both_decoders() -> None:
    for agent, size in (("192.0.2.1", 28), ("2001:db8::5", 40)):  # 8 + 4 or 16 + 16 bytes
        data = datagram([], agent=agent, sub_agent=3, seq=77, uptime=123_456)
        assert len(data) == size
        for decode in decoders():
            decoded = decode(data)
            assert (decoded.agent_address, decoded.sub_agent_id, decoded.sequence_number) == (agent, 3, 77)
            assert decoded.uptime_ms == 123_456
            assert decoded.flow_samples == decoded.counter_samples == []
            # one byte less ends inside the header
            with pytest.raises(
                SflowDecodeError, match=f"datagram of {size - 1} bytes ends inside its header"
            ):
                decode(data[:-1])
            # the same 28 / 40 bytes announcing a sample: the header is sound, the sample missing
            with pytest.raises(SflowDecodeError, match="datagram ends after 0 of the 1 samples") as info:
                decode(patch(data, size - 4, 1))
            assert info.value.offset == size and info.value.partial is not None
            assert info.value.partial.sequence_number == 77


def test_zero_sample_datagram_counts_for_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Datagrams 1, 2 (no samples), 3 of one agent: none missing. Without datagram 2 one is missing,
    which is what the pipeline reported while it quarantined datagrams without samples."""
    one = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))], seq=1)
    three = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))], seq=2)
    stream = [datagram([one], seq=1), datagram([], seq=2), datagram([three], seq=3)]
    for name, datagrams, missing in (("all", stream, 0), ("gap", [stream[0], stream[2]], 1)):
        spool = spool_file(tmp_path / f"20260101T0000-{name}-1-000001.spool", datagrams)
        tables, files = run_both(monkeypatch, tmp_path / name, [spool])
        (f,) = files
        assert f["quarantined"] == 0
        assert (f["sflow_datagrams"], f["flow_samples"], f["datagrams_missing"]) == (
            len(datagrams),
            2,
            missing,
        )
        loss = table(tables, "flow_loss")
        assert sum(loss["datagrams_received"].to_pylist()) == len(datagrams)
        assert sum(loss["datagrams_missing"].to_pylist()) == missing


def test_zero_sample_datagram_header_agrees_with_tshark(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    sent = [
        ("192.0.2.1", 1, 3, 77, 123_456),
        ("2001:db8::5", 2, 4, 78, 9),
    ]
    frames = [
        eth(0x0800, ipv4(17, udp(50000, 6343, datagram([], agent=a, sub_agent=sub, seq=seq, uptime=up))))
        for a, _, sub, seq, up in sent
    ]
    pcap = tmp_path / "zero-samples.pcap"
    write_pcap(pcap, frames)
    done = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "_ws.malformed" not in done.stdout and "_ws.expert" not in done.stdout
    packets = json.loads(done.stdout)
    assert len(packets) == 2
    for packet, (agent, kind, sub, seq, uptime) in zip(packets, sent, strict=True):
        fields = packet["_source"]["layers"]["sflow"]
        assert fields["sflow_245.version"] == "5"
        assert fields["sflow_245.agenttype"] == str(kind)
        assert fields["sflow_245.agent" if kind == 1 else "sflow_245.agent.v6"] == agent
        assert fields["sflow_245.sub_agent_id"] == str(sub)
        assert fields["sflow_245.sequence_number"] == str(seq)
        assert fields["sflow_245.sysuptime"] == str(uptime)
        assert fields["sflow_245.numsamples"] == "0"
        payload = datagram([], agent=agent, sub_agent=sub, seq=seq, uptime=uptime)
        for decode in decoders():
            decoded = decode(payload)
            assert (
                decoded.agent_address,
                decoded.sub_agent_id,
                decoded.sequence_number,
                decoded.uptime_ms,
            ) == (
                fields.get("sflow_245.agent", fields.get("sflow_245.agent.v6")),
                int(fields["sflow_245.sub_agent_id"]),
                int(fields["sflow_245.sequence_number"]),
                int(fields["sflow_245.sysuptime"]),
            )
            assert len(decoded.flow_samples) + len(decoded.counter_samples) == int(
                fields["sflow_245.numsamples"]
            )
