"""Read UDP datagrams out of classic pcap files (libpcap format, either byte order, us or ns).

Only what a flow collector needs: Ethernet (with 802.1Q/QinQ), Linux cooked (SLL),
raw IP and loopback link types; IPv4 and IPv6 (without fragments); UDP payloads.
Anything else in the file is skipped and counted in ``PcapStats``.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from peerpool.errors import InputError

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    timestamp_ns: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes


@dataclass
class PcapStats:
    frames: int = 0
    udp_datagrams: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def read_udp_datagrams(path: Path | str, stats: PcapStats | None = None) -> Iterator[UdpDatagram]:
    """Yield every UDP datagram of a pcap file in file order."""
    path = Path(path)
    stats = stats if stats is not None else PcapStats()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read pcap file ({exc.strerror}); check the path") from exc
    if len(data) < 24 or data[:4] not in _MAGIC:
        if data[:4] == b"\x0a\x0d\x0d\x0a":
            raise InputError(f"{path}: is pcapng; convert it with 'editcap -F pcap {path} out.pcap'")
        raise InputError(f"{path}: not a pcap file (bad magic); give a libpcap capture")
    endian, ns_per_unit = _MAGIC[data[:4]]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    offset = 24
    record = struct.Struct(endian + "IIII")
    while offset + 16 <= len(data):
        ts_sec, ts_frac, incl_len, _orig_len = record.unpack_from(data, offset)
        offset += 16
        frame = data[offset : offset + incl_len]
        offset += incl_len
        if len(frame) < incl_len:
            stats.skip("truncated record")
            break
        stats.frames += 1
        datagram = _udp_from_frame(frame, linktype, ts_sec * 1_000_000_000 + ts_frac * ns_per_unit, stats)
        if datagram is not None:
            stats.udp_datagrams += 1
            yield datagram


def _udp_from_frame(frame: bytes, linktype: int, ts_ns: int, stats: PcapStats) -> UdpDatagram | None:
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            stats.skip("short ethernet frame")
            return None
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        pos = 14
        while ethertype in (0x8100, 0x88A8, 0x9100) and len(frame) >= pos + 4:
            ethertype = struct.unpack_from("!H", frame, pos + 2)[0]
            pos += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            stats.skip("short sll frame")
            return None
        ethertype = struct.unpack_from("!H", frame, 14)[0]
        pos = 16
    elif linktype == LINKTYPE_NULL:
        family = struct.unpack_from("<I", frame, 0)[0] if len(frame) >= 4 else -1
        ethertype = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
        pos = 4
    elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        version = frame[0] >> 4 if frame else 0
        ethertype = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
        pos = 0
    else:
        stats.skip(f"link type {linktype}")
        return None
    if ethertype == 0x0800:
        if len(frame) < pos + 20:
            stats.skip("short ipv4 header")
            return None
        ihl = (frame[pos] & 0x0F) * 4
        total_length = struct.unpack_from("!H", frame, pos + 2)[0]
        flags_frag = struct.unpack_from("!H", frame, pos + 6)[0]
        if flags_frag & 0x3FFF:
            stats.skip("ipv4 fragment")
            return None
        if frame[pos + 9] != 17:
            stats.skip("not udp")
            return None
        src = socket.inet_ntop(socket.AF_INET, frame[pos + 12 : pos + 16])
        dst = socket.inet_ntop(socket.AF_INET, frame[pos + 16 : pos + 20])
        end = pos + total_length if total_length else len(frame)
        pos += ihl
    elif ethertype == 0x86DD:
        if len(frame) < pos + 40:
            stats.skip("short ipv6 header")
            return None
        payload_length = struct.unpack_from("!H", frame, pos + 4)[0]
        if frame[pos + 6] != 17:
            stats.skip("not udp (or ipv6 extension header)")
            return None
        src = socket.inet_ntop(socket.AF_INET6, frame[pos + 8 : pos + 24])
        dst = socket.inet_ntop(socket.AF_INET6, frame[pos + 24 : pos + 40])
        end = pos + 40 + payload_length
        pos += 40
    else:
        stats.skip(f"ethertype 0x{ethertype:04x}")
        return None
    if len(frame) < pos + 8:
        stats.skip("short udp header")
        return None
    sport, dport, udp_length = struct.unpack_from("!HHH", frame, pos)
    payload_end = min(pos + udp_length, end, len(frame)) if udp_length >= 8 else min(end, len(frame))
    return UdpDatagram(ts_ns, src, sport, dst, dport, bytes(frame[pos + 8 : payload_end]))
