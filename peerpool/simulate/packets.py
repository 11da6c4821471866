"""Packet sizes and the first bytes of a sampled frame.

Why a discrete mix: traffic at an exchange is bimodal (TCP ACKs near the minimum frame,
full-MTU data frames) with some QUIC, DNS and mid-size frames in between, averaging about
900 bytes. The same mix decides the true byte counts (the sum of the packets' sizes) and the
frame lengths of sFlow samples and flow records, so sampled estimates are unbiased.

Sizes are frame lengths on the exchange LAN: Ethernet header (14) + 802.1Q tag (4) + IP packet
+ FCS (4), which is what ``ifInOctets`` counts and what sFlow reports as ``frame_length``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TCP = 6
UDP = 17
ETH_TAGGED_OVERHEAD = 22  # 14 Ethernet + 4 802.1Q + 4 FCS
ETH_UNTAGGED_OVERHEAD = 18  # transit links: 14 Ethernet + 4 FCS
SFLOW_MAX_HEADER = 128
FCS = 4
SMALL_COUNT = 64  # below this many packets, sizes are drawn one by one (exact mix)


@dataclass(frozen=True)
class SizeMix:
    """Frame lengths (tagged, with FCS) of one IP version, with their protocol and probability."""

    ip_version: int
    frame_lengths: npt.NDArray[np.int64]
    protocols: npt.NDArray[np.int64]
    probs: npt.NDArray[np.float64]

    @property
    def mean(self) -> float:
        return float(np.dot(self.frame_lengths, self.probs))

    @property
    def variance(self) -> float:
        return float(np.dot(self.frame_lengths.astype(np.float64) ** 2, self.probs) - self.mean**2)

    @property
    def ip_lengths(self) -> npt.NDArray[np.int64]:
        return self.frame_lengths - ETH_TAGGED_OVERHEAD

    @property
    def ip_mean(self) -> float:
        return self.mean - ETH_TAGGED_OVERHEAD


def _mix(ip_version: int, rows: list[tuple[int, int, float]]) -> SizeMix:
    probs = np.array([r[2] for r in rows], dtype=np.float64)
    return SizeMix(
        ip_version=ip_version,
        frame_lengths=np.array([r[0] for r in rows], dtype=np.int64),
        protocols=np.array([r[1] for r in rows], dtype=np.int64),
        probs=probs / probs.sum(),
    )


# (frame length, protocol, share). IPv6 small frames are 20 bytes longer (40-byte header).
MIX_V4 = _mix(
    4,
    [
        (74, TCP, 0.30),  # ACK with timestamps: 20 IP + 32 TCP
        (86, TCP, 0.04),  # ACK with SACK blocks
        (104, UDP, 0.05),  # DNS, QUIC ACK
        (598, TCP, 0.04),  # 576-byte IP packets
        (1300, TCP, 0.04),  # tunnelled / reduced MSS
        (1400, UDP, 0.10),  # QUIC
        (1522, TCP, 0.43),  # full 1500-byte MTU
    ],
)
MIX_V6 = _mix(
    6,
    [
        (94, TCP, 0.30),
        (106, TCP, 0.04),
        (124, UDP, 0.05),
        (618, TCP, 0.04),
        (1300, TCP, 0.04),
        (1400, UDP, 0.10),
        (1522, TCP, 0.43),
    ],
)
MIXES = {4: MIX_V4, 6: MIX_V6}


def draw_total_bytes(
    rng: np.random.Generator, packets: npt.NDArray[np.int64], mix: SizeMix, *, overhead_delta: int = 0
) -> npt.NDArray[np.int64]:
    """Total size of ``packets[i]`` packets drawn from ``mix`` (each size shifted by ``overhead_delta``).

    Small counts are drawn packet by packet (multinomial over the sizes); large counts use the
    normal limit of the sum (mean n*mu, variance n*sigma^2), clipped to the possible range.
    """
    sizes = mix.frame_lengths + overhead_delta
    out = np.zeros(packets.shape, dtype=np.int64)
    small = (packets > 0) & (packets < SMALL_COUNT)
    big = packets >= SMALL_COUNT
    if small.any():
        counts = rng.multinomial(packets[small], mix.probs)
        out[small] = counts @ sizes
    if big.any():
        n = packets[big].astype(np.float64)
        mean = float(np.dot(sizes, mix.probs))
        z = rng.standard_normal(n.shape[0])
        total = np.rint(n * mean + np.sqrt(n * mix.variance) * z)
        total = np.clip(total, n * float(sizes.min()), n * float(sizes.max()))
        out[big] = total.astype(np.int64)
    return out


# --- sampled headers ----------------------------------------------------------------------

_ETH_TAG = struct.Struct("!6s6sHHH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_TCP_TS_OPTION = b"\x01\x01\x08\x0a" + bytes(8)  # NOP NOP timestamps(10)
_UDP = struct.Struct("!HHHH")


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def sampled_header(
    *,
    dst_mac: bytes,
    src_mac: bytes,
    vlan: int,
    frame_length: int,
    ip_version: int,
    protocol: int,
    src_ip: bytes,
    dst_ip: bytes,
    src_port: int,
    dst_port: int,
    ident: int,
    tagged: bool = True,
) -> bytes:
    """The first ``min(128, frame_length - 4)`` bytes of the frame a switch would copy into a sample.

    The payload after the L4 header is zeros; the IPv4 header checksum is right, the TCP/UDP
    checksums cover the whole original packet, which a truncated copy cannot, so they are left 0.
    """
    overhead = ETH_TAGGED_OVERHEAD if tagged else ETH_UNTAGGED_OVERHEAD
    ip_length = frame_length - overhead
    ethertype = 0x0800 if ip_version == 4 else 0x86DD
    if tagged:
        eth = _ETH_TAG.pack(dst_mac, src_mac, 0x8100, vlan & 0x0FFF, ethertype)
    else:
        eth = dst_mac + src_mac + struct.pack("!H", ethertype)
    if protocol == TCP:
        l4 = (
            _TCP.pack(
                src_port,
                dst_port,
                ident * 7919 & 0xFFFFFFFF,
                ident * 104729 & 0xFFFFFFFF,
                8 << 4,
                0x10,
                502,
                0,
                0,
            )
            + _TCP_TS_OPTION
        )
    else:
        udp_length = ip_length - (20 if ip_version == 4 else 40)
        l4 = _UDP.pack(src_port, dst_port, udp_length, 0)
    if ip_version == 4:
        head = _IPV4.pack(0x45, 0, ip_length, ident & 0xFFFF, 0x4000, 57, protocol, 0, src_ip, dst_ip)
        checksum = ipv4_checksum(head)
        ip = head[:10] + struct.pack("!H", checksum) + head[12:]
    else:
        ip = _IPV6.pack(0x60000000 | (ident & 0xFFFFF), ip_length - 40, protocol, 57, src_ip, dst_ip)
    frame = eth + ip + l4
    keep = min(SFLOW_MAX_HEADER, frame_length - FCS)
    if len(frame) >= keep:
        return frame[:keep]
    return frame + bytes(keep - len(frame))
