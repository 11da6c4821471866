"""The sampled-header parser (ingest/packet.py) against tshark and against hand-computed offsets.

Frames are built by hand below (a tiny test-only encoder), written to a pcap in a temporary directory
and dissected by the installed tshark; every field the parser returns is compared with tshark's. Each
case also carries hand-written expectations for what tshark cannot say in our terms (the upper-layer
protocol behind IPv6 extension headers, the ICMP port convention). Truncation is checked against
the byte offsets of each field, written out per frame layout: a field is present exactly when all
its bytes are inside the copy.
"""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.packet import PacketHeader, ethernet_fields, parse_ethernet, parse_ip
from ingest.pcap import read_udp_datagrams
from tests.conftest import require_tool

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
Pairs = list[tuple[str, Any]]

MAC_A = bytes.fromhex("02005e100001")
MAC_B = bytes.fromhex("a4b1c2d3e4f5")
V4_A = bytes([192, 0, 2, 10])
V4_B = bytes([198, 51, 100, 200])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("2a0c88800002000001850021013000ff")


# ---------------------------------------------------------------------------------------------
# test-only frame encoder


def eth(ethertype: int, payload: bytes, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    out = MAC_B + MAC_A  # dst, src
    for tpid, vid in tags:
        out += struct.pack("!HH", tpid, (3 << 13) | vid)  # priority 3, to show it is masked off
    return out + struct.pack("!H", ethertype) + payload


def ipv4(
    proto: int, payload: bytes, *, options: bytes = b"", frag: int = 0, mf: bool = False, tos: int = 0
) -> bytes:
    assert len(options) % 4 == 0
    ihl = 5 + len(options) // 4
    flags_frag = (0x2000 if mf else 0) | (frag // 8)
    total = ihl * 4 + len(payload)
    return (
        struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, 0x1234, flags_frag, 64, proto, 0, V4_A, V4_B)
        + options
        + payload
    )


def ipv6(next_header: int, payload: bytes, *, tclass: int = 0) -> bytes:
    word = (6 << 28) | (tclass << 20) | 0x12345
    return struct.pack("!IHBB16s16s", word, len(payload), next_header, 64, V6_A, V6_B) + payload


def ext8(next_header: int, payload: bytes, units: int = 0) -> bytes:
    """Hop-by-hop / routing / destination options: (next header, length in 8-octet units - 1, ...)."""
    body = bytes([next_header, units]) + b"\x01\x04\x00\x00\x00\x00" + bytes(8 * units)
    return body + payload


def routing(next_header: int, payload: bytes) -> bytes:
    # type 0 routing header with one address: 8 + 16 bytes, hdr ext len 2
    return bytes([next_header, 2, 0, 1]) + b"\x00" * 4 + V6_A + payload


def fragment(next_header: int, payload: bytes, offset: int = 0, more: bool = True) -> bytes:
    return struct.pack("!BBHI", next_header, 0, (offset // 8) << 3 | (1 if more else 0), 0xABCD) + payload


def ah(next_header: int, payload: bytes) -> bytes:
    # payload length 4 -> (4 + 2) * 4 = 24 bytes: 12 fixed + 12 ICV
    return struct.pack("!BBHII", next_header, 4, 0, 0x100, 1) + bytes(12) + payload


def tcp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x18, 8192, 0, 0) + b"GET / HTTP/1.0\r\n"


def udp(sport: int, dport: int, body: bytes = b"hello world!") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def sctp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHII", sport, dport, 7, 0) + bytes(16)


def icmp(kind: int, code: int, body: bytes = b"\x00\x01\x00\x02abcdefgh") -> bytes:
    return struct.pack("!BBH", kind, code, 0) + body


@dataclass(frozen=True)
class Case:
    name: str
    frame: bytes
    protocol: int | None  # expected ip_protocol, worked out by hand
    ports: tuple[int | None, int | None]  # expected (src_port, dst_port), by hand


CASES = [
    Case("ipv4-tcp", eth(0x0800, ipv4(6, tcp(44321, 443), tos=0xB8)), 6, (44321, 443)),
    Case("dot1q-ipv4-udp", eth(0x0800, ipv4(17, udp(53, 5353)), ((0x8100, 100),)), 17, (53, 5353)),
    Case(
        "qinq-88a8-ipv4-tcp",
        eth(0x0800, ipv4(6, tcp(179, 50000)), ((0x88A8, 3001), (0x8100, 42))),
        6,
        (179, 50000),
    ),
    Case(
        "qinq-9100-ipv6-udp",
        eth(0x86DD, ipv6(17, udp(123, 123)), ((0x9100, 7), (0x8100, 4094))),
        17,
        (123, 123),
    ),
    Case(
        "double-8100-ipv4-icmp",
        eth(0x0800, ipv4(1, icmp(8, 0)), ((0x8100, 10), (0x8100, 20))),
        1,
        (0, 8 * 256),
    ),
    Case(
        "ipv4-options-tcp",
        eth(0x0800, ipv4(6, tcp(80, 1024), options=b"\x94\x04\x00\x00\x01\x01\x01\x00")),
        6,
        (80, 1024),
    ),
    Case("ipv4-first-fragment-udp", eth(0x0800, ipv4(17, udp(4500, 4500), mf=True)), 17, (4500, 4500)),
    Case("ipv4-later-fragment", eth(0x0800, ipv4(17, bytes(32), frag=1480)), 17, (None, None)),
    Case(
        "ipv4-icmp-unreachable",
        eth(0x0800, ipv4(1, icmp(3, 3, bytes(4) + ipv4(17, udp(1, 2))))),
        1,
        (0, 3 * 256 + 3),
    ),
    Case("ipv4-sctp", eth(0x0800, ipv4(132, sctp(2905, 2905))), 132, (2905, 2905)),
    Case("ipv4-gre", eth(0x0800, ipv4(47, b"\x00\x00\x08\x00" + bytes(24))), 47, (None, None)),
    Case("ipv6-tcp", eth(0x86DD, ipv6(6, tcp(22, 60000), tclass=0x2E)), 6, (22, 60000)),
    Case(
        "ipv6-hbh-routing-dstopts-udp",
        eth(0x86DD, ipv6(0, ext8(43, routing(60, ext8(17, udp(547, 546), units=1))))),
        17,
        (547, 546),
    ),
    Case("ipv6-fragment-first-tcp", eth(0x86DD, ipv6(44, fragment(6, tcp(443, 3333)))), 6, (443, 3333)),
    Case(
        "ipv6-fragment-later",
        eth(0x86DD, ipv6(44, fragment(17, bytes(40), offset=1448, more=False))),
        17,
        (None, None),
    ),
    Case("ipv6-ah-tcp", eth(0x86DD, ipv6(51, ah(6, tcp(500, 4500)))), 6, (500, 4500)),
    Case("ipv6-esp", eth(0x86DD, ipv6(50, struct.pack("!II", 0x1000, 1) + bytes(32))), 50, (None, None)),
    Case(
        "ipv6-dstopts-esp",
        eth(0x86DD, ipv6(60, ext8(50, struct.pack("!II", 0x1000, 1) + bytes(32)))),
        50,
        (None, None),
    ),
    Case("ipv6-icmpv6-echo", eth(0x86DD, ipv6(58, icmp(128, 0))), 58, (0, 128 * 256)),
    Case("ipv6-hbh-icmpv6-mld", eth(0x86DD, ipv6(0, ext8(58, icmp(143, 0, bytes(24))))), 58, (0, 143 * 256)),
    Case("ipv6-no-next-header", eth(0x86DD, ipv6(59, b"")), 59, (None, None)),
    Case(
        "arp",
        eth(0x0806, bytes.fromhex("0001080006040001") + MAC_A + V4_A + bytes(6) + V4_B),
        None,
        (None, None),
    ),
    Case("llc-8023", MAC_B + MAC_A + struct.pack("!H", 38) + b"\x42\x42\x03" + bytes(35), None, (None, None)),
]


def write_pcap(path: Path, frames: list[bytes]) -> None:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame
    path.write_bytes(out)


def tshark_layers(path: Path) -> list[Pairs]:
    tshark = require_tool("tshark")
    result = subprocess.run(
        [tshark, "-r", str(path), "-T", "json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    packets = json.loads(result.stdout, object_pairs_hook=lambda pairs: pairs)
    return [first(first(p, "_source"), "layers") for p in packets]


def first(pairs: Pairs, key: str, default: Any = KeyError) -> Any:
    for k, v in pairs:
        if k == key:
            return v
    if default is KeyError:
        raise KeyError(key)
    return default


def every(pairs: Pairs, key: str) -> list[Any]:
    return [v for k, v in pairs if k == key]


def vlan_tags(layers: Pairs) -> list[tuple[int, int]]:
    """(id, type after the tag) of every tag in order; tshark calls an 0x88a8 tag ``ieee8021ad``."""
    out = []
    for key, value in layers:
        if key == "vlan":
            out.append((int(first(value, "vlan.id")), int(first(value, "vlan.etype"), 16)))
        elif key == "ieee8021ad":
            out.append((int(first(value, "ieee8021ad.id")), int(first(value, "ieee8021ah.etype"), 16)))
    return out


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pairs]:
    path = tmp_path_factory.mktemp("frames") / "frames.pcap"
    write_pcap(path, [case.frame for case in CASES])
    layers = tshark_layers(path)
    assert len(layers) == len(CASES)
    return {case.name: layer for case, layer in zip(CASES, layers, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_header_fields_match_tshark(case: Case, dissected: dict[str, Pairs]) -> None:
    ours = parse_ethernet(case.frame)
    layers = dissected[case.name]
    eth_layer = first(layers, "eth")
    assert ours.dst_mac == first(eth_layer, "eth.dst") == "a4:b1:c2:d3:e4:f5"
    assert ours.src_mac == first(eth_layer, "eth.src") == "02:00:5e:10:00:01"
    tags = vlan_tags(layers)
    assert [v for v in (ours.vlan, ours.inner_vlan) if v is not None] == [vid for vid, _ in tags]
    if first(eth_layer, "eth.len", None) is not None:
        assert ours.ethertype is None  # 802.3 length field
    else:
        ethertype = tags[-1][1] if tags else int(first(eth_layer, "eth.type"), 16)
        assert ours.ethertype == ethertype
    ip = first(layers, "ip", None)
    ipv6 = first(layers, "ipv6", None)
    if ip is not None:
        assert (ours.ip_version, ours.src_ip, ours.dst_ip) == (4, first(ip, "ip.src"), first(ip, "ip.dst"))
        assert (ours.src_ip, ours.dst_ip) == ("192.0.2.10", "198.51.100.200")
        assert ours.ip_protocol == int(first(ip, "ip.proto"))
        assert ours.tos == int(first(ip, "ip.dsfield"), 16)
        assert ours.ip_length == int(first(ip, "ip.len"))
    elif ipv6 is not None:
        assert (ours.ip_version, ours.src_ip, ours.dst_ip) == (
            6,
            first(ipv6, "ipv6.src"),
            first(ipv6, "ipv6.dst"),
        )
        assert (ours.src_ip, ours.dst_ip) == ("2001:db8::1", "2a0c:8880:2:0:185:21:130:ff")
        assert ours.tos == int(first(ipv6, "ipv6.tclass"), 16)
        assert ours.ip_length == int(first(ipv6, "ipv6.plen")) + 40
    else:
        assert (ours.ip_version, ours.src_ip, ours.ip_protocol) == (None, None, None)
    assert ours.ip_protocol == case.protocol
    assert (ours.src_port, ours.dst_port) == case.ports
    for name in ("tcp", "udp", "sctp"):
        layer = first(layers, name, None)
        if layer is not None:
            assert (ours.src_port, ours.dst_port) == (
                int(first(layer, f"{name}.srcport")),
                int(first(layer, f"{name}.dstport")),
            )
    for name in ("icmp", "icmpv6"):
        layer = first(layers, name, None)
        if layer is not None:
            assert ours.dst_port == int(first(layer, f"{name}.type")) * 256 + int(
                first(layer, f"{name}.code")
            )
    if case.ports == (None, None) and case.protocol in (17, 6):
        # a later fragment: tshark shows no transport layer either
        assert first(layers, "udp", None) is None and first(layers, "tcp", None) is None


def test_known_values_by_hand() -> None:
    """A few fields worked out from the encoder's arguments, not from tshark."""
    qinq = parse_ethernet(CASES[2].frame)
    assert (qinq.vlan, qinq.inner_vlan, qinq.ethertype) == (3001, 42, 0x0800)
    v6 = parse_ethernet(CASES[11].frame)
    assert v6.tos == 0x2E and v6.ip_length == 40 + len(tcp(22, 60000))
    v4 = parse_ethernet(CASES[0].frame)
    assert v4.tos == 0xB8 and v4.ip_length == 20 + len(tcp(44321, 443))
    assert isinstance(v4, PacketHeader)


# field -> index of the first byte after it, per layout (bytes counted from the start of the frame)
def ipv4_tcp_offsets(l3: int, ihl: int = 20) -> dict[str, int]:
    return {
        "dst_mac": 6,
        "src_mac": 12,
        "ip_version": l3 + 1,
        "tos": l3 + 2,
        "ip_length": l3 + 4,
        "ip_protocol": l3 + 10,
        "src_ip": l3 + 16,
        "dst_ip": l3 + 20,
        "src_port": l3 + ihl + 4,
        "dst_port": l3 + ihl + 4,
    }


def ipv6_offsets(l3: int, l4: int, protocol_end: int) -> dict[str, int]:
    return {
        "dst_mac": 6,
        "src_mac": 12,
        "ip_version": l3 + 1,
        "tos": l3 + 2,
        "ip_length": l3 + 6,
        # the upper-layer protocol is known once the next-header field naming it is in the copy
        # (for a chain, the walk also needs the whole fixed header: see the layouts below)
        "ip_protocol": protocol_end,
        "src_ip": l3 + 24,
        "dst_ip": l3 + 40,
        "src_port": l4 + 4,
        "dst_port": l4 + 4,
    }


TRUNCATION_LAYOUTS = [
    ("ipv4-tcp", CASES[0].frame, 14, ipv4_tcp_offsets(14)),
    ("ipv4-options-tcp", CASES[5].frame, 14, ipv4_tcp_offsets(14, ihl=28)),
    ("dot1q-ipv4-udp", CASES[1].frame, 18, ipv4_tcp_offsets(18)),
    ("qinq-9100-ipv6-udp", CASES[3].frame, 22, ipv6_offsets(22, 62, protocol_end=22 + 7)),
    ("ipv6-ah-tcp", CASES[15].frame, 14, ipv6_offsets(14, 14 + 40 + 24, protocol_end=14 + 40 + 2)),
]


@pytest.mark.parametrize(
    ("name", "frame", "l3", "ends"), TRUNCATION_LAYOUTS, ids=[t[0] for t in TRUNCATION_LAYOUTS]
)
def test_truncated_copies_give_what_fits(name: str, frame: bytes, l3: int, ends: dict[str, int]) -> None:
    full = parse_ethernet(frame)
    ethertype_end = l3  # the type after the tags
    vlan_ends = [18, 22][: (l3 - 14) // 4]
    for cut in range(len(frame) + 1):
        ours = parse_ethernet(frame[:cut])
        assert ours == parse_ethernet(frame, 0, cut) == parse_ethernet(frame + b"\xff" * 8, 0, cut)
        for field, end in ends.items():
            expected = getattr(full, field) if cut >= end else None
            assert getattr(ours, field) == expected, (name, cut, field)
        assert ours.ethertype == (full.ethertype if cut >= ethertype_end else None), (name, cut)
        got_vlans = [v for v in (ours.vlan, ours.inner_vlan) if v is not None]
        # a tag's id is its first two bytes after the TPID: known once those are in
        assert len(got_vlans) == sum(1 for e in vlan_ends if cut >= e - 2), (name, cut)


def test_garbage_never_raises() -> None:
    frames = [b"", b"\x00", bytes(13), bytes(14), b"\xff" * 64, eth(0x0800, b"\x45"), eth(0x86DD, b"\x60")]
    frames += [eth(0x8100, b""), eth(0x0800, b"\x4f" + bytes(70)), eth(0x0800, b"\x41" + bytes(40))]
    frames += [MAC_A + MAC_B + b"\x81\x00" * 40]  # endless tags
    for frame in frames:
        header = parse_ethernet(frame)
        assert isinstance(header, PacketHeader)
    endless = parse_ethernet(MAC_A + MAC_B + b"\x81\x00" * 40)
    assert endless.ethertype is None and endless.vlan == 0x100
    bogus_ihl = parse_ethernet(eth(0x0800, b"\x41" + bytes(40)))
    assert bogus_ihl.ip_version == 4 and bogus_ihl.src_port is None


def test_bare_ip_headers() -> None:
    """sFlow header_protocol 11/12: the copy starts at the IP header."""
    v4 = parse_ip(ipv4(17, udp(1000, 53)))
    assert (v4.ip_version, v4.src_ip, v4.dst_ip, v4.ip_protocol, v4.src_port, v4.dst_port) == (
        4,
        "192.0.2.10",
        "198.51.100.200",
        17,
        1000,
        53,
    )
    assert v4.src_mac is None and v4.ethertype is None
    v6 = parse_ip(ipv6(0, ext8(6, tcp(1, 2))))
    assert (v6.ip_version, v6.ip_protocol, v6.src_port, v6.dst_port) == (6, 6, 1, 2)
    assert parse_ip(b"\x50" + bytes(30)) == PacketHeader(*(None,) * 13)


def raw_headers(pcap: Path) -> list[bytes]:
    """Sampled Ethernet headers from real sFlow, walked with a few lines of XDR independent of the decoder."""
    out = []
    for datagram in read_udp_datagrams(pcap):
        data = datagram.payload
        assert struct.unpack_from("!II", data, 0) == (5, 1)
        (n_samples,) = struct.unpack_from("!I", data, 24)
        offset = 28
        for _ in range(n_samples):
            fmt, length = struct.unpack_from("!II", data, offset)
            assert fmt == 1
            (n_records,) = struct.unpack_from("!I", data, offset + 8 + 28)
            record = offset + 8 + 32
            for _ in range(n_records):
                rfmt, rlen = struct.unpack_from("!II", data, record)
                if rfmt == 1:
                    proto, _flen, _stripped, hlen = struct.unpack_from("!IIII", data, record + 8)
                    assert proto == 1
                    out.append(data[record + 24 : record + 24 + hlen])
                record += 8 + rlen
            offset += 8 + length
    return out


def test_fast_path_agrees_with_general_path_on_real_headers() -> None:
    """Untagged IPv4/IPv6 take a fast path. Inserting an 802.1Q tag forces the general path, and a bare
    IP parse the IP-only path: all three must agree on every real sampled header."""
    headers = raw_headers(REALDATA / "generated" / "pmacct-sfprobe.pcap")
    assert len(headers) == 739
    for header in headers:
        fast = ethernet_fields(header, 0, len(header))
        tagged = parse_ethernet(header[:12] + b"\x81\x00\x00\x07" + header[12:])
        assert tagged._replace(vlan=None) == PacketHeader(*fast)
        assert tagged.vlan == 7
        bare = parse_ip(header, 14)
        assert tuple(bare)[5:] == fast[5:]


UNTAGGED = [c for c in CASES if not c.name.startswith(("dot1q", "qinq", "double"))]


@pytest.mark.parametrize("case", UNTAGGED, ids=[c.name for c in UNTAGGED])
def test_every_path_agrees_on_the_hand_built_frames(case: Case) -> None:
    """The untagged fast path, the tagged general path and the bare-IP path give the same fields."""
    untagged = parse_ethernet(case.frame)
    tagged = parse_ethernet(case.frame[:12] + b"\x81\x00\x00\x07" + case.frame[12:])
    assert tagged == untagged._replace(vlan=7)
    if untagged.ip_version is not None:
        assert tuple(parse_ip(case.frame, 14))[5:] == tuple(untagged)[5:]
