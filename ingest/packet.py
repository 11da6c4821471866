"""Parse the first bytes of a sampled frame: Ethernet, VLAN tags, IPv4/IPv6, TCP/UDP/ICMP.

sFlow's raw packet header record (and IPFIX ``dataLinkFrameSection``) carries a copy of the first
bytes of a frame, usually 64 to 128 of them, so the copy may end anywhere, even inside the MAC
addresses. The parser therefore never raises on short input: it returns every field it could read
before the bytes ran out and ``None`` for the rest. It never looks beyond ``end`` either, so a caller
can parse a header in place inside a larger datagram without slicing it out first.

What goes where (documented because the flow lake depends on it):

* ``vlan`` is the outer tag (802.1Q 0x8100, 802.1ad 0x88a8 or the pre-standard 0x9100),
  ``inner_vlan`` the second one (QinQ); further tags are skipped. ``ethertype`` is the type *after*
  the tags; an 802.3 length field (below 0x0600, LLC/SNAP frames) gives ``ethertype = None``.
* ``ip_protocol`` is the upper-layer protocol. For IPv6 the extension headers hop-by-hop (0),
  routing (43), fragment (44), destination options (60) and AH (51) are walked; ESP (50), no next
  header (59) and anything unknown stop the walk and are reported as the protocol. If the copy ends
  inside the extension chain, ``ip_protocol`` is ``None`` (the upper layer is not known).
* ``src_port`` / ``dst_port`` are read for TCP, UDP, DCCP, SCTP and UDP-Lite, and only from the first
  fragment (a later fragment has no transport header).
* ICMP and ICMPv6 follow the NetFlow v5 / IPFIX ``icmpTypeCodeIPv4`` convention used by flow tools:
  ``src_port = 0`` and ``dst_port = type * 256 + code``. (tshark shows ``icmp.type`` and ``icmp.code``;
  the tests check ``dst_port == icmp.type * 256 + icmp.code``.)
* ``tos`` is the IPv4 type-of-service byte or the IPv6 traffic class (DSCP << 2 | ECN);
  ``ip_length`` is the IPv4 total length or the IPv6 payload length plus the 40-byte fixed header,
  both as written in the packet (the copy itself is usually shorter).
* Addresses are formatted with ``socket.inet_ntop`` (compressed IPv6, as tshark and ``ipaddress``
  print them); MACs as lower-case ``aa:bb:cc:dd:ee:ff``.

Speed matters (this runs once per sFlow flow sample), so the fast functions return a plain tuple in
``PacketHeader`` field order; ``parse_ethernet`` / ``parse_ip`` wrap it in the named tuple for
everybody else.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100  # IEEE 802.1Q
ETHERTYPE_QINQ = 0x88A8  # IEEE 802.1ad service tag
ETHERTYPE_QINQ_OLD = 0x9100  # pre-standard QinQ
VLAN_TPIDS = frozenset((ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD))
MAX_VLAN_TAGS = 8  # more tags than this is garbage; stop instead of walking on

IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_DCCP = 33
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136

PORT_PROTOCOLS = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_UDPLITE))
ICMP_PROTOCOLS = frozenset((IPPROTO_ICMP, IPPROTO_ICMPV6))
# extension headers laid out as (next header, length in 8-octet units not counting the first 8, ...)
_IPV6_EXT_8 = frozenset((IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS))
MAX_IPV6_EXTENSION_HEADERS = 16
MAC_PAIR_CACHE_SIZE = 1 << 16
_MAC_PAIRS: dict[bytes, tuple[str, str]] = {}

_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_ntop = socket.inet_ntop
_IPV4 = struct.Struct("!BBH4xBBH4s4s")  # ver/ihl, tos, total length, (id, frag), ttl, proto, csum, src, dst
# Ethernet + IPv4 with IHL 5 + the 4 port bytes: MAC pair, ethertype, version/IHL, tos, total length,
# flags/fragment, protocol, the addresses as 16-bit halves, ports
_ETH_IPV4_FAST = struct.Struct("!12sHBBH2xHxB2xHHHHHH")
# IPv6 and the 4 port bytes: version/class, class/flow, payload length, next header, src, dst, ports
_IPV6_FAST = struct.Struct("!BB2xHBx16s16sHH")
# Dotted-quad text of every 16-bit half of an IPv4 address ("192.168" and ".0.1"): two list lookups
# and one concatenation format an address about four times faster than socket.inet_ntop (~9 MB).
_DOTTED_HI = [f"{i >> 8}.{i & 0xFF}" for i in range(1 << 16)]
_DOTTED_LO = ["." + s for s in _DOTTED_HI]
_FRAG = struct.Struct("!H")
_PORTS = struct.Struct("!HH")
_IPV6 = struct.Struct("!BB2xHBB16s16s")  # ver/tc, tc/flow, (flow), payload length, next header, hops, ..

# (ip_version, src_ip, dst_ip, ip_protocol, src_port, dst_port, tos, ip_length)
_NO_IP: IpFields = (None, None, None, None, None, None, None, None)
# the full field tuple when nothing at all could be read
EMPTY_FIELDS: HeaderFields = (None, None, None, None, None, *_NO_IP)


class PacketHeader(NamedTuple):
    """The fields of one sampled frame header; ``None`` where the copy ended or the field does not apply."""

    src_mac: str | None
    dst_mac: str | None
    vlan: int | None  # outer VLAN id
    inner_vlan: int | None  # second VLAN id (QinQ)
    ethertype: int | None  # after the VLAN tags
    ip_version: int | None  # 4 or 6
    src_ip: str | None
    dst_ip: str | None
    ip_protocol: int | None
    src_port: int | None  # ICMP/ICMPv6: 0
    dst_port: int | None  # ICMP/ICMPv6: type * 256 + code
    tos: int | None  # IPv4 TOS byte / IPv6 traffic class
    ip_length: int | None  # IPv4 total length / IPv6 payload length + 40


# The plain-tuple form of PacketHeader that the hot paths pass around.
HeaderFields = tuple[
    str | None,
    str | None,
    int | None,
    int | None,
    int | None,
    int | None,
    str | None,
    str | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
]
IpFields = tuple[
    int | None, str | None, str | None, int | None, int | None, int | None, int | None, int | None
]


def parse_ethernet(buf: bytes, start: int = 0, end: int | None = None) -> PacketHeader:
    """Parse an Ethernet frame (possibly truncated) found in ``buf[start:end]``."""
    stop = len(buf) if end is None else min(end, len(buf))
    return PacketHeader._make(ethernet_fields(buf, start, stop))


def parse_ip(buf: bytes, start: int = 0, end: int | None = None) -> PacketHeader:
    """Parse a bare IPv4 or IPv6 packet (no link layer; the version nibble decides)."""
    stop = len(buf) if end is None else min(end, len(buf))
    return PacketHeader._make((None, None, None, None, None, *ip_fields(buf, start, stop)))


def mac_pair(key: bytes) -> tuple[str, str]:
    """(dst_mac, src_mac) text of the first 12 bytes of a frame, memoised.

    An exchange LAN has a few thousand active MAC pairs, so formatting each pair once and looking it
    up afterwards saves two ``bytes.hex`` calls per sample. The memo is cleared when it grows past
    ``MAC_PAIR_CACHE_SIZE`` entries, which bounds its memory (about 200 bytes an entry).
    """
    pair = _MAC_PAIRS.get(key)
    if pair is None:
        if len(_MAC_PAIRS) >= MAC_PAIR_CACHE_SIZE:
            _MAC_PAIRS.clear()
        pair = _MAC_PAIRS[key] = (key[0:6].hex(":"), key[6:12].hex(":"))
    return pair


def ethernet_fields(buf: bytes, start: int, end: int) -> HeaderFields:
    """``PacketHeader`` fields as a plain tuple; ``end`` must not exceed ``len(buf)``."""
    # fast paths, one struct call each: untagged IPv4 without options and untagged IPv6 straight to
    # the transport header, with the four port bytes present (most sampled frames)
    if end - start >= 38:
        key, ethertype, ver_ihl, tos, length, frag, proto, s_hi, s_lo, d_hi, d_lo, sport, dport = (
            _ETH_IPV4_FAST.unpack_from(buf, start)
        )
        if ethertype == ETHERTYPE_IPV4 and ver_ihl == 0x45:
            pair = _MAC_PAIRS.get(key)
            dst_mac, src_mac = pair if pair is not None else mac_pair(key)
            if frag & 0x1FFF:
                sport = dport = None
            elif proto not in PORT_PROTOCOLS:
                if proto == IPPROTO_ICMP:
                    sport, dport = 0, sport  # the first 16 bits of ICMP are type * 256 + code
                else:
                    sport = dport = None
            return (
                src_mac, dst_mac, None, None, ethertype, 4, _DOTTED_HI[s_hi] + _DOTTED_LO[s_lo],
                _DOTTED_HI[d_hi] + _DOTTED_LO[d_lo], proto, sport, dport, tos, length,
            )  # fmt: skip
        if ethertype == ETHERTYPE_IPV6 and end - start >= 58:
            b0, b1, plen, nh, src, dst, sport, dport = _IPV6_FAST.unpack_from(buf, start + 14)
            if b0 >> 4 == 6 and (nh in PORT_PROTOCOLS or nh == IPPROTO_ICMPV6):
                pair = _MAC_PAIRS.get(key)
                dst_mac, src_mac = pair if pair is not None else mac_pair(key)
                if nh == IPPROTO_ICMPV6:
                    sport, dport = 0, sport
                return (
                    src_mac, dst_mac, None, None, ethertype, 6, _ntop(_AF_INET6, src), _ntop(_AF_INET6, dst),
                    nh, sport, dport, ((b0 & 0x0F) << 4) | (b1 >> 4), plen + 40,
                )  # fmt: skip
    elif end - start < 14:
        return _short_ethernet(buf, start, end)
    key = buf[start : start + 12]
    pair = _MAC_PAIRS.get(key)
    dst_mac, src_mac = pair if pair is not None else mac_pair(key)
    ethertype = (buf[start + 12] << 8) | buf[start + 13]
    pos = start + 14
    if ethertype == ETHERTYPE_IPV4:
        return (src_mac, dst_mac, None, None, ethertype, *ipv4_fields(buf, pos, end))
    if ethertype == ETHERTYPE_IPV6:
        return (src_mac, dst_mac, None, None, ethertype, *ipv6_fields(buf, pos, end))
    vlan = inner_vlan = None
    if ethertype in VLAN_TPIDS:
        tags = 0
        while ethertype in VLAN_TPIDS:
            if pos + 4 > end or tags == MAX_VLAN_TAGS:
                # the copy ends inside a tag (or the tags never end): what follows is unknown
                if pos + 2 <= end and tags < MAX_VLAN_TAGS:
                    vid = ((buf[pos] << 8) | buf[pos + 1]) & 0x0FFF
                    if tags == 0:
                        vlan = vid
                    elif tags == 1:
                        inner_vlan = vid
                return (src_mac, dst_mac, vlan, inner_vlan, None, *_NO_IP)
            vid = ((buf[pos] << 8) | buf[pos + 1]) & 0x0FFF
            if tags == 0:
                vlan = vid
            elif tags == 1:
                inner_vlan = vid
            ethertype = (buf[pos + 2] << 8) | buf[pos + 3]
            pos += 4
            tags += 1
    if ethertype == ETHERTYPE_IPV4:
        return (src_mac, dst_mac, vlan, inner_vlan, ethertype, *ipv4_fields(buf, pos, end))
    if ethertype == ETHERTYPE_IPV6:
        return (src_mac, dst_mac, vlan, inner_vlan, ethertype, *ipv6_fields(buf, pos, end))
    if ethertype is not None and ethertype < 0x0600:
        ethertype = None  # 802.3 length field: an LLC frame, no ethertype
    return (src_mac, dst_mac, vlan, inner_vlan, ethertype, *_NO_IP)


def _short_ethernet(buf: bytes, start: int, end: int) -> HeaderFields:
    n = end - start
    dst_mac = buf[start : start + 6].hex(":") if n >= 6 else None
    src_mac = buf[start + 6 : start + 12].hex(":") if n >= 12 else None
    return (src_mac, dst_mac, None, None, None, *_NO_IP)


def ip_fields(buf: bytes, start: int, end: int) -> IpFields:
    """IP fields of a bare IP packet at ``start`` (sFlow header_protocol 11 or 12)."""
    if start >= end:
        return _NO_IP
    version = buf[start] >> 4
    if version == 4:
        return ipv4_fields(buf, start, end)
    if version == 6:
        return ipv6_fields(buf, start, end)
    return _NO_IP


def ipv4_fields(buf: bytes, pos: int, end: int) -> IpFields:
    """(ip_version, src_ip, dst_ip, ip_protocol, src_port, dst_port, tos, ip_length) of IPv4 at ``pos``."""
    if end - pos < 20:
        return _short_ipv4(buf, pos, end)
    ver_ihl, tos, length, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(buf, pos)
    if ver_ihl >> 4 != 4:
        return _NO_IP
    src_ip = _ntop(_AF_INET, src)
    dst_ip = _ntop(_AF_INET, dst)
    ihl = (ver_ihl & 0x0F) << 2
    l4 = pos + ihl
    if ihl < 20 or (buf[pos + 6] & 0x1F) or buf[pos + 7]:
        # bogus header length, or a non-first fragment: no transport header here
        return (4, src_ip, dst_ip, proto, None, None, tos, length)
    if proto in PORT_PROTOCOLS:
        if l4 + 4 <= end:
            sport, dport = _PORTS.unpack_from(buf, l4)
            return (4, src_ip, dst_ip, proto, sport, dport, tos, length)
    elif proto == IPPROTO_ICMP and l4 + 2 <= end:
        return (4, src_ip, dst_ip, proto, 0, (buf[l4] << 8) | buf[l4 + 1], tos, length)
    return (4, src_ip, dst_ip, proto, None, None, tos, length)


def _short_ipv4(buf: bytes, pos: int, end: int) -> IpFields:
    n = end - pos
    if n < 1 or buf[pos] >> 4 != 4:
        return _NO_IP
    tos = buf[pos + 1] if n >= 2 else None
    length = _FRAG.unpack_from(buf, pos + 2)[0] if n >= 4 else None
    proto = buf[pos + 9] if n >= 10 else None
    src_ip = _ntop(_AF_INET, buf[pos + 12 : pos + 16]) if n >= 16 else None
    return (4, src_ip, None, proto, None, None, tos, length)


def ipv6_fields(buf: bytes, pos: int, end: int) -> IpFields:
    """The same fields for IPv6 at ``pos``, walking the extension headers to the upper layer."""
    if end - pos < 40:
        return _short_ipv6(buf, pos, end)
    b0, b1, plen, nh, _hops, src, dst = _IPV6.unpack_from(buf, pos)
    if b0 >> 4 != 6:
        return _NO_IP
    tclass = ((b0 & 0x0F) << 4) | (b1 >> 4)
    src_ip = _ntop(_AF_INET6, src)
    dst_ip = _ntop(_AF_INET6, dst)
    q = pos + 40
    if nh in PORT_PROTOCOLS:
        if q + 4 <= end:
            sport, dport = _PORTS.unpack_from(buf, q)
            return (6, src_ip, dst_ip, nh, sport, dport, tclass, plen + 40)
        return (6, src_ip, dst_ip, nh, None, None, tclass, plen + 40)
    proto: int | None = nh
    first_fragment = True
    walked = 0
    while True:
        if proto in _IPV6_EXT_8 or proto == IPPROTO_AH:
            if q + 2 > end or walked == MAX_IPV6_EXTENSION_HEADERS:
                proto = None
                break
            size = (buf[q + 1] + 2) << 2 if proto == IPPROTO_AH else (buf[q + 1] + 1) << 3
            proto = buf[q]
            q += size
        elif proto == IPPROTO_FRAGMENT:
            if q + 4 > end or walked == MAX_IPV6_EXTENSION_HEADERS:
                proto = None
                break
            if _FRAG.unpack_from(buf, q + 2)[0] & 0xFFF8:
                first_fragment = False
            proto = buf[q]
            q += 8
        else:
            break
        walked += 1
    if proto is None or not first_fragment:
        return (6, src_ip, dst_ip, proto, None, None, tclass, plen + 40)
    if proto in PORT_PROTOCOLS:
        if q + 4 <= end:
            sport, dport = _PORTS.unpack_from(buf, q)
            return (6, src_ip, dst_ip, proto, sport, dport, tclass, plen + 40)
    elif proto == IPPROTO_ICMPV6 and q + 2 <= end:
        return (6, src_ip, dst_ip, proto, 0, (buf[q] << 8) | buf[q + 1], tclass, plen + 40)
    return (6, src_ip, dst_ip, proto, None, None, tclass, plen + 40)


def _short_ipv6(buf: bytes, pos: int, end: int) -> IpFields:
    n = end - pos
    if n < 1 or buf[pos] >> 4 != 6:
        return _NO_IP
    tclass = ((buf[pos] & 0x0F) << 4) | (buf[pos + 1] >> 4) if n >= 2 else None
    length = _FRAG.unpack_from(buf, pos + 4)[0] + 40 if n >= 6 else None
    # only the upper-layer protocol counts; a next header that is an extension header is not one
    nh = buf[pos + 6] if n >= 7 else None
    if nh in _IPV6_EXT_8 or nh in (IPPROTO_AH, IPPROTO_FRAGMENT):
        nh = None
    src_ip = _ntop(_AF_INET6, buf[pos + 8 : pos + 24]) if n >= 24 else None
    return (6, src_ip, None, nh, None, None, tclass, length)
