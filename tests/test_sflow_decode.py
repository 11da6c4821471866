"""The sFlow v5 decoder on hand-built datagrams: cases the real captures do not have.

A tiny test-only XDR encoder below writes datagrams field by field from the specification
(https://sflow.org/sflow_version_5.txt); every expected value is the number that was put in, or is
worked out by hand in the test (offsets, bit packing), never read back from the decoder first.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from ingest.sflow import SflowDecodeError, decode_datagram
from ingest.sflow.decode import EthernetCounters, GenericInterfaceCounters
from peerpool.errors import DecodeError
from tests.test_packet import ah, eth, ext8, fragment, icmp, ipv4, ipv6, routing, tcp, udp

# ---------------------------------------------------------------------------------------------
# test-only encoder


def words(*values: int) -> bytes:
    return struct.pack(f"!{len(values)}I", *values)


def record(fmt: int, body: bytes, enterprise: int = 0) -> bytes:
    return words((enterprise << 12) | fmt, len(body)) + body


def opaque(data: bytes) -> bytes:
    return words(len(data)) + data + bytes(-len(data) % 4)


def raw_header(frame: bytes, protocol: int = 1, frame_length: int | None = None, stripped: int = 4) -> bytes:
    length = len(frame) + stripped if frame_length is None else frame_length
    return record(1, words(protocol, length, stripped) + opaque(frame))


def extended_switch(src_vlan: int, src_pri: int, dst_vlan: int, dst_pri: int) -> bytes:
    return record(1001, words(src_vlan, src_pri, dst_vlan, dst_pri))


def sampled_ethernet(length: int, src: bytes, dst: bytes, eth_type: int) -> bytes:
    return record(2, words(length) + src + b"\0\0" + dst + b"\0\0" + words(eth_type))


def sampled_ipv4(length: int, proto: int, src: str, dst: str, sport: int, dport: int, tos: int) -> bytes:
    body = (
        words(length, proto) + socket.inet_aton(src) + socket.inet_aton(dst) + words(sport, dport, 0x12, tos)
    )
    return record(3, body)


def sampled_ipv6(length: int, proto: int, src: str, dst: str, sport: int, dport: int, priority: int) -> bytes:
    addresses = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    return record(4, words(length, proto) + addresses + words(sport, dport, 0x02, priority))


def flow_sample(records: list[bytes], *, seq: int = 7, source: tuple[int, int] = (0, 12), rate: int = 2048,
                pool: int = 1_000_000, drops: int = 3, inp: tuple[int, int] = (0, 12),
                out: tuple[int, int] = (0, 99), expanded: bool = False) -> bytes:  # fmt: skip
    if expanded:
        head = words(seq, source[0], source[1], rate, pool, drops, inp[0], inp[1], out[0], out[1])
        return record(3, head + words(len(records)) + b"".join(records))
    head = words(
        seq,
        (source[0] << 24) | source[1],
        rate,
        pool,
        drops,
        (inp[0] << 30) | inp[1],
        (out[0] << 30) | out[1],
    )
    return record(1, head + words(len(records)) + b"".join(records))


def counter_sample(records: list[bytes], *, seq: int = 5, source: tuple[int, int] = (0, 12),
                   expanded: bool = False) -> bytes:  # fmt: skip
    if expanded:
        return record(4, words(seq, source[0], source[1], len(records)) + b"".join(records))
    return record(2, words(seq, (source[0] << 24) | source[1], len(records)) + b"".join(records))


GENERIC_VALUES = (
    12, 6, 10_000_000_000, 1, 3,  # ifIndex, ifType, ifSpeed, ifDirection, ifStatus
    2**40 + 5, 1001, 1002, 1003, 1004, 1005, 1006,  # in: octets ucast mcast bcast discards errors unknown
    2**33 + 7, 2001, 2002, 2003, 2004, 2005,  # out: octets, ucast, mcast, bcast, discards, errors
    1,  # promiscuous
)  # fmt: skip


def generic_counters(values: tuple[int, ...] = GENERIC_VALUES) -> bytes:
    return record(1, struct.pack("!IIQIIQIIIIIIQIIIIII", *values))


def ethernet_counters() -> bytes:
    return record(2, words(*range(101, 114)))


def datagram(samples: list[bytes], agent: str = "192.0.2.1", *, sub_agent: int = 3, seq: int = 77,
             uptime: int = 123_456, count: int | None = None) -> bytes:  # fmt: skip
    if ":" in agent:
        address = words(2) + socket.inet_pton(socket.AF_INET6, agent)
    else:
        address = words(1) + socket.inet_aton(agent)
    n = len(samples) if count is None else count
    return words(5) + address + words(sub_agent, seq, uptime, n) + b"".join(samples)


MAC_SRC = bytes.fromhex("02005e100001")
MAC_DST = bytes.fromhex("a4b1c2d3e4f5")


# ---------------------------------------------------------------------------------------------
# samples and records


def test_ipv6_agent_and_header_fields() -> None:
    data = datagram([flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))])], agent="2001:db8::5")
    decoded = decode_datagram(data)
    assert decoded.agent_address == "2001:db8::5"
    assert (decoded.version, decoded.sub_agent_id, decoded.sequence_number, decoded.uptime_ms) == (
        5,
        3,
        77,
        123_456,
    )
    (sample,) = decoded.flow_samples
    assert (sample.src_ip, sample.dst_ip, sample.src_port, sample.dst_port) == (
        "192.0.2.10",
        "198.51.100.200",
        1,
        2,
    )


def test_compact_flow_sample_fields_and_bit_packing() -> None:
    frame = eth(0x0800, ipv4(17, udp(53, 40000)))
    records = [extended_switch(100, 3, 200, 5), raw_header(frame, frame_length=1518, stripped=4)]
    data = datagram([flow_sample(records, seq=9, source=(2, 0xABCDEF), rate=16384, pool=2**32 - 1, drops=11,
                                 inp=(0, 0x3FFFFFFF), out=(0, 7))])  # fmt: skip
    (sample,) = decode_datagram(data).flow_samples
    assert not sample.expanded
    assert (sample.sequence_number, sample.source_id_type, sample.source_id_index) == (9, 2, 0xABCDEF)
    assert (sample.sampling_rate, sample.sample_pool, sample.drops) == (16384, 2**32 - 1, 11)
    assert (sample.input_format, sample.input_value, sample.input_ifindex) == (0, 0x3FFFFFFF, 0x3FFFFFFF)
    assert (sample.output_format, sample.output_value, sample.output_ifindex) == (0, 7, 7)
    assert (sample.header_protocol, sample.frame_length, sample.stripped, sample.header_length) == (
        1,
        1518,
        4,
        len(frame),
    )
    assert (sample.src_vlan, sample.src_priority, sample.dst_vlan, sample.dst_priority) == (100, 3, 200, 5)
    assert (sample.src_mac, sample.dst_mac) == ("02:00:5e:10:00:01", "a4:b1:c2:d3:e4:f5")
    assert sample.record_count == 2


@pytest.mark.parametrize(
    ("word", "fmt", "value", "ifindex"),
    [
        (0x40000001, 1, 1, None),  # discarded, reason 1 (the akvorado capture's value)
        (0x40000000 | 258, 1, 258, None),  # discarded, reason 258 ("ACL")
        (0x80000007, 2, 7, None),  # multiple, 7 interfaces
        (0x80000000, 2, 0, None),  # multiple, count unknown
        (0x3FFFFFFF, 0, 0x3FFFFFFF, 0x3FFFFFFF),  # internal
        (0, 0, 0, 0),  # unknown interface
    ],
)
def test_output_interface_formats(word: int, fmt: int, value: int, ifindex: int | None) -> None:
    sample_body = flow_sample([], out=(word >> 30, word & 0x3FFFFFFF))
    (sample,) = decode_datagram(datagram([sample_body])).flow_samples
    assert (sample.output_format, sample.output_value, sample.output_ifindex) == (fmt, value, ifindex)


def test_expanded_flow_and_counter_samples() -> None:
    frame = eth(0x86DD, ipv6(6, tcp(443, 50123)))
    flows = flow_sample([raw_header(frame)], expanded=True, seq=2**31, source=(0, 2**30 + 17),
                        inp=(0, 2**31 + 1), out=(1, 2**30 + 5))  # fmt: skip
    counters = counter_sample(
        [generic_counters(), ethernet_counters()], expanded=True, seq=8, source=(0, 2**28)
    )
    decoded = decode_datagram(datagram([flows, counters]))
    (fs,) = decoded.flow_samples
    # the expanded form has 32-bit index and value words: no 24/30-bit limits
    assert fs.expanded and (fs.sequence_number, fs.source_id_type, fs.source_id_index) == (
        2**31,
        0,
        2**30 + 17,
    )
    assert (fs.input_format, fs.input_value, fs.input_ifindex) == (0, 2**31 + 1, 2**31 + 1)
    assert (fs.output_format, fs.output_value, fs.output_ifindex) == (1, 2**30 + 5, None)
    assert (fs.ip_version, fs.src_port, fs.dst_port) == (6, 443, 50123)
    (cs,) = decoded.counter_samples
    assert cs.expanded and (cs.sequence_number, cs.source_id_type, cs.source_id_index) == (8, 0, 2**28)
    assert cs.generic == GenericInterfaceCounters(*GENERIC_VALUES)
    assert cs.generic.in_octets == 2**40 + 5 and cs.generic.out_octets == 2**33 + 7
    assert cs.generic.if_speed == 10_000_000_000
    assert cs.ethernet == EthernetCounters(*range(101, 114))
    assert cs.ethernet.alignment_errors == 101 and cs.ethernet.symbol_errors == 113


@pytest.mark.parametrize(
    ("status", "admin", "oper"), [(0, False, False), (1, True, False), (3, True, True), (2, False, True)]
)
def test_if_status_bits(status: int, admin: bool, oper: bool) -> None:
    values = (*GENERIC_VALUES[:4], status, *GENERIC_VALUES[5:])
    data = datagram([counter_sample([generic_counters(values)], source=(0, 55))])
    (cs,) = decode_datagram(data).counter_samples
    assert cs.generic is not None
    assert (cs.generic.admin_up, cs.generic.oper_up) == (admin, oper)
    assert (cs.expanded, cs.source_id_index, cs.ethernet) == (False, 55, None)


def test_qinq_in_sampled_header() -> None:
    frame = eth(0x0800, ipv4(6, tcp(179, 179)), tags=((0x88A8, 1062), (0x8100, 1493)))
    (sample,) = decode_datagram(datagram([flow_sample([raw_header(frame)])])).flow_samples
    assert (sample.vlan, sample.inner_vlan, sample.ethertype) == (1062, 1493, 0x0800)
    assert sample.src_vlan is None  # no extended switch record


def test_ipv6_extension_headers_and_icmpv6() -> None:
    frames = [
        eth(0x86DD, ipv6(0, ext8(43, routing(44, fragment(60, ext8(51, ah(17, udp(500, 4500)))))))),
        eth(0x86DD, ipv6(58, icmp(135, 0, bytes(20)))),  # neighbour solicitation: 135 * 256 = 34560
    ]
    data = datagram([flow_sample([raw_header(frames[0])]), flow_sample([raw_header(frames[1])])])
    first, second = decode_datagram(data).flow_samples
    assert (first.ip_protocol, first.src_port, first.dst_port) == (17, 500, 4500)
    assert (second.ip_protocol, second.src_port, second.dst_port) == (58, 0, 34560)


def test_ip_header_protocols() -> None:
    v4 = ipv4(6, tcp(80, 8080))
    v6 = ipv6(17, udp(53, 53))
    data = datagram([flow_sample([raw_header(v4, protocol=11)]), flow_sample([raw_header(v6, protocol=12)])])
    a, b = decode_datagram(data).flow_samples
    assert (a.header_protocol, a.src_mac, a.ethertype, a.ip_version, a.src_port) == (11, None, None, 4, 80)
    assert (b.header_protocol, b.src_mac, b.ip_version, b.dst_ip, b.dst_port) == (
        12,
        None,
        6,
        "2a0c:8880:2:0:185:21:130:ff",
        53,
    )


def test_unknown_header_protocol_leaves_fields_empty() -> None:
    (sample,) = decode_datagram(datagram([flow_sample([raw_header(b"\xff" * 40, protocol=7)])])).flow_samples
    assert sample.header_protocol == 7 and sample.header_length == 40
    assert (sample.src_mac, sample.ip_version) == (None, None)


def test_unknown_and_skipped_records_are_counted_and_skipped_by_length() -> None:
    frame = eth(0x0800, ipv4(17, udp(1, 2)))
    records = [
        record(1002, words(1, 0xC0000201, 24, 16)),  # extended router: in the spec, not decoded
        record(7, b"\xde\xad\xbe\xef" * 3, enterprise=4413),  # a vendor's record (Broadcom's enterprise)
        record(2047, b"\x01" * 6 + b"\0\0"),  # enterprise 0 but not in the spec
        raw_header(frame),
        record(1003, b""),  # extended gateway, empty: still skipped by its length
    ]
    decoded = decode_datagram(datagram([flow_sample(records)]))
    (sample,) = decoded.flow_samples
    assert (decoded.unknown_records, decoded.skipped_records) == (2, 2)
    assert sample.record_count == 5 and sample.src_port == 1  # the raw header after them still decoded
    counters = counter_sample([record(2001, bytes(12)), generic_counters(), record(1001, words(5, 6))])
    decoded = decode_datagram(datagram([counters]))
    assert (decoded.unknown_records, decoded.skipped_records) == (1, 1)
    assert decoded.counter_samples[0].generic is not None


def test_unknown_sample_types_are_counted() -> None:
    samples = [
        record(5, words(1, 2, 3)),  # discarded-packet sample (sFlow 5 extension), not decoded here
        record(1, words(9), enterprise=9),  # some vendor's sample format
        flow_sample([]),
    ]
    decoded = decode_datagram(datagram(samples))
    assert decoded.unknown_samples == 2
    assert len(decoded.flow_samples) == 1 and decoded.flow_samples[0].sequence_number == 7


def test_sampled_records_fill_fields_without_raw_header() -> None:
    """Ethernet (2) gives MACs, type and the frame length; IPv4 (3) the IP fields."""
    records = [
        sampled_ethernet(1514, MAC_SRC, MAC_DST, 0x0800),
        sampled_ipv4(1500, 6, "203.0.113.9", "198.51.100.1", 51000, 443, 0x28),
    ]
    (sample,) = decode_datagram(datagram([flow_sample(records)])).flow_samples
    assert sample.header_protocol is None and sample.frame_length == 1514
    assert (sample.src_mac, sample.dst_mac, sample.ethertype) == (
        "02:00:5e:10:00:01",
        "a4:b1:c2:d3:e4:f5",
        0x0800,
    )
    assert (sample.ip_version, sample.src_ip, sample.dst_ip, sample.ip_protocol) == (
        4,
        "203.0.113.9",
        "198.51.100.1",
        6,
    )
    assert (sample.src_port, sample.dst_port, sample.tos, sample.ip_length) == (51000, 443, 0x28, 1500)


def test_sampled_ipv6_record_alone_gives_ip_length_as_frame_length() -> None:
    records = [sampled_ipv6(1280, 17, "2001:db8::1", "2001:db8:0:1::2", 443, 60000, 0xB8)]
    (sample,) = decode_datagram(datagram([flow_sample(records)])).flow_samples
    assert (sample.ip_version, sample.src_ip, sample.dst_ip) == (6, "2001:db8::1", "2001:db8:0:1::2")
    assert (sample.src_port, sample.dst_port, sample.tos) == (443, 60000, 0xB8)
    assert sample.frame_length == 1280 and sample.src_mac is None  # documented underestimate


def test_raw_header_wins_over_sampled_records_in_any_order() -> None:
    frame = eth(0x0800, ipv4(17, udp(7, 9)))
    v4 = sampled_ipv4(999, 6, "10.0.0.1", "10.0.0.2", 1, 2, 0)
    for records in ([v4, raw_header(frame, frame_length=400)], [raw_header(frame, frame_length=400), v4]):
        (sample,) = decode_datagram(datagram([flow_sample(records)])).flow_samples
        assert (sample.src_ip, sample.ip_protocol, sample.src_port, sample.frame_length) == (
            "192.0.2.10",
            17,
            7,
            400,
        )


def test_sampled_record_fills_what_a_short_raw_header_lacks() -> None:
    frame = eth(0x0800, ipv4(6, tcp(1, 2)))[:20]  # MACs, type and 6 bytes of IPv4: no addresses
    records = [raw_header(frame, frame_length=64), sampled_ipv4(50, 6, "10.0.0.1", "10.0.0.2", 1, 2, 0)]
    (sample,) = decode_datagram(datagram([flow_sample(records)])).flow_samples
    assert (sample.src_mac, sample.tos, sample.ip_length) == ("02:00:5e:10:00:01", 0, 20 + len(tcp(1, 2)))
    assert (sample.src_ip, sample.dst_ip, sample.src_port, sample.frame_length) == (
        "10.0.0.1",
        "10.0.0.2",
        1,
        64,
    )


def test_trailing_bytes_after_the_samples_are_ignored() -> None:
    data = datagram([flow_sample([])]) + b"\0" * 12
    assert len(decode_datagram(data).flow_samples) == 1


def test_header_length_over_1024_is_accepted_within_the_buffer() -> None:
    frame = eth(0x0800, ipv4(17, udp(1, 2, bytes(1500))))
    (sample,) = decode_datagram(datagram([flow_sample([raw_header(frame)])])).flow_samples
    assert sample.header_length == len(frame) > 1024 and sample.dst_port == 2


# ---------------------------------------------------------------------------------------------
# errors


def test_not_sflow_v5() -> None:
    with pytest.raises(SflowDecodeError) as info:
        decode_datagram(words(4, 1) + bytes(40))
    assert info.value.offset == 0 and "not 5" in str(info.value)
    assert str(info.value).startswith("sflow5, offset 0: ")
    with pytest.raises(SflowDecodeError) as info:
        decode_datagram(words(5, 3) + bytes(40))
    assert info.value.offset == 4 and "address type is 3" in str(info.value)
    for short in (b"", b"\0\0\0\x05", words(5, 1, 0, 0), words(5, 2) + bytes(20)):
        with pytest.raises(DecodeError):
            decode_datagram(short)


def test_truncated_sample_keeps_what_came_before() -> None:
    good = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))], seq=1)
    second = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(3, 4))))], seq=2)
    data = datagram([good, second])
    cut = len(data) - 10
    with pytest.raises(SflowDecodeError) as info:
        decode_datagram(data[:cut])
    error = info.value
    # the second sample's length word sits at 28 (header) + len(good) + 4
    assert error.offset == 28 + len(good) + 4
    assert error.exporter == "192.0.2.1" and "sample 2 of 2" in str(error)
    assert error.partial is not None and [s.sequence_number for s in error.partial.flow_samples] == [1]


def test_record_longer_than_its_sample() -> None:
    sample = bytearray(flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))]))
    # the record's length word: sample header (8) + compact fields (32) + record format (4)
    struct.pack_into("!I", sample, 8 + 32 + 4, 10_000)
    with pytest.raises(SflowDecodeError) as info:
        decode_datagram(datagram([bytes(sample)]))
    assert info.value.offset == 28 + 8 + 32 + 4
    assert "format 1" in str(info.value)


def test_header_longer_than_its_record() -> None:
    sample = bytearray(flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))]))
    # header_length word: sample header 8 + 32 + record header 8 + protocol, frame length, stripped (12)
    struct.pack_into("!I", sample, 8 + 32 + 8 + 12, 4096)
    with pytest.raises(SflowDecodeError) as info:
        decode_datagram(datagram([bytes(sample)]))
    assert info.value.offset == 28 + 8 + 32 + 8 + 12


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (record(1, words(1, 2)), "flow sample"),
        (record(3, words(1, 2, 3)), "expanded flow sample"),
        (counter_sample([record(1, words(1, 2, 3))]), "generic interface counters"),
        (counter_sample([record(2, words(1))]), "ethernet counters"),
        (flow_sample([record(1001, words(1, 2))]), "extended switch"),
        (flow_sample([record(3, words(1, 2))]), "format 3"),
    ],
)
def test_records_shorter_than_their_structure(body: bytes, what: str) -> None:
    with pytest.raises(SflowDecodeError, match=what):
        decode_datagram(datagram([body]))


def test_huge_counts_cost_only_the_real_bytes() -> None:
    """A count of 2**32 - 1 must neither allocate nor loop that many times."""
    one = flow_sample([raw_header(eth(0x0800, ipv4(6, tcp(1, 2))))])
    cases = [
        datagram([one], count=2**32 - 1),
        datagram([record(1, words(1, 2, 3, 4, 5, 6, 7, 2**32 - 1))]),  # flow sample claiming 4 G records
        datagram([record(2, words(1, 2, 2**32 - 1))]),  # counter sample claiming 4 G records
        datagram([words(1, 2**32 - 1)]),  # sample length 4 GB
        datagram([flow_sample([words(1, 2**32 - 8)])]),  # record length near 4 GB
    ]
    start = time.process_time()
    for data in cases:
        with pytest.raises(SflowDecodeError) as info:
            decode_datagram(data)
        assert 0 <= info.value.offset <= len(data)
    assert time.process_time() - start < 1.0
    with pytest.raises(SflowDecodeError) as info:
        decode_datagram(cases[0])
    assert info.value.partial is not None and len(info.value.partial.flow_samples) == 1
    assert "ends after 1 of the 4294967295 samples" in str(info.value)
