"""An MRT RIB dump (RFC 6396, TABLE_DUMP_V2) of the routes the exchange sees.

A PEER_INDEX_TABLE names the peers (every member's route-server session, the transit
providers and one internal session), then one RIB_IPV4_UNICAST / RIB_IPV6_UNICAST record per
prefix with a RIB entry per peer that announced it: ORIGIN, AS_PATH (always 4-byte ASNs in
TABLE_DUMP_V2) and NEXT_HOP (IPv4) or the abbreviated MP_REACH_NLRI next hop (IPv6, section
4.3.4). Member prefixes originate at the member's ASN, remote networks' prefixes at theirs
(seen through every provider); two prefixes originate at a private ASN on purpose, because
pyasn's converter stops on a prefix whose only origin is private.

The file is plain (uncompressed) MRT; pyasn's own converter only opens bz2/gzip archives.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from peerpool.simulate.topology import PRIVATE_ORIGIN_ASN, PRIVATE_PREFIXES, PROVIDERS, Topology

TABLE_DUMP_V2 = 13
PEER_INDEX_TABLE = 1
RIB_IPV4_UNICAST = 2
RIB_IPV6_UNICAST = 4
ATTR_ORIGIN = 1
ATTR_AS_PATH = 2
ATTR_NEXT_HOP = 3
ATTR_MP_REACH_NLRI = 14
AS_SEQUENCE = 2
FLAG_TRANSITIVE = 0x40
FLAG_OPTIONAL = 0x80
FLAG_EXTENDED = 0x10
COLLECTOR_ID = "10.255.255.1"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Peer:
    bgp_id: str
    address: str
    asn: int
    v6_next_hop: str


def _attribute(flags: int, code: int, value: bytes) -> bytes:
    if len(value) > 255:
        return struct.pack("!BBH", flags | FLAG_EXTENDED, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def attributes(path: list[int], next_hop: str, ip_version: int) -> bytes:
    origin = _attribute(FLAG_TRANSITIVE, ATTR_ORIGIN, b"\x00")  # IGP
    segment = struct.pack("!BB", AS_SEQUENCE, len(path)) + b"".join(struct.pack("!I", a) for a in path)
    as_path = _attribute(FLAG_TRANSITIVE, ATTR_AS_PATH, segment)
    if ip_version == 4:
        hop = _attribute(FLAG_TRANSITIVE, ATTR_NEXT_HOP, socket.inet_aton(next_hop))
    else:
        address = socket.inet_pton(socket.AF_INET6, next_hop)
        hop = _attribute(FLAG_OPTIONAL, ATTR_MP_REACH_NLRI, struct.pack("!B", len(address)) + address)
    return origin + as_path + hop


def _record(timestamp: int, subtype: int, body: bytes) -> bytes:
    return struct.pack("!IHHI", timestamp, TABLE_DUMP_V2, subtype, len(body)) + body


def _peer_index(peers: list[Peer]) -> bytes:
    view = b"peerpool-sim"
    body = (
        socket.inet_aton(COLLECTOR_ID) + struct.pack("!H", len(view)) + view + struct.pack("!H", len(peers))
    )
    for p in peers:
        body += struct.pack("!B", 0x02) + socket.inet_aton(p.bgp_id) + socket.inet_aton(p.address)
        body += struct.pack("!I", p.asn)
    return body


def routes(topo: Topology) -> tuple[list[Peer], list[tuple[Network, list[tuple[int, list[int]]]]]]:
    """The peers and, per prefix, its (peer index, AS path) entries."""
    peers: list[Peer] = []
    table: dict[Network, list[tuple[int, list[int]]]] = {}
    for m in topo.members:
        first = topo.exchange.ports[m.ports[0]]
        v6 = first.ipv6[0] if first.ipv6 else "::"
        peers.append(Peer(first.ipv4[0], first.ipv4[0], m.config.asn, v6))
        nets: list[Network] = [*m.v4_nets, *m.v6_nets]
        for net in nets:
            table.setdefault(net, []).append((len(peers) - 1, [m.config.asn]))
    provider_peers = []
    for i, (_key, _name, asn, *_rest) in enumerate(PROVIDERS):
        address = f"198.51.100.{i + 1}"
        peers.append(Peer(address, address, asn, f"2001:db8:ffff::{i + 1}"))
        provider_peers.append((len(peers) - 1, asn))
    for remote in topo.remotes:
        for net in (remote.v4, remote.v6):
            for index, asn in provider_peers:
                table.setdefault(net, []).append((index, [asn, remote.asn]))
    peers.append(Peer("10.255.2.1", "10.255.2.1", PRIVATE_ORIGIN_ASN, "2001:db8:ffff::ff"))
    for text in PRIVATE_PREFIXES:
        table.setdefault(ipaddress.ip_network(text), []).append((len(peers) - 1, [PRIVATE_ORIGIN_ASN]))
    ordered = sorted(
        table.items(), key=lambda item: (item[0].version, item[0].network_address, item[0].prefixlen)
    )
    return peers, ordered


def write_rib(path: Path, topo: Topology, timestamp: int) -> int:
    """Write the dump; returns the number of RIB records."""
    peers, table = routes(topo)
    out = [_record(timestamp, PEER_INDEX_TABLE, _peer_index(peers))]
    for seq, (net, entries) in enumerate(table):
        prefix_bytes = net.network_address.packed[: (net.prefixlen + 7) // 8]
        body = struct.pack("!IB", seq, net.prefixlen) + prefix_bytes + struct.pack("!H", len(entries))
        for peer_index, as_path in entries:
            peer = peers[peer_index]
            hop = peer.address if net.version == 4 else peer.v6_next_hop
            attrs = attributes(as_path, hop, net.version)
            body += struct.pack("!HIH", peer_index, timestamp, len(attrs)) + attrs
        out.append(_record(timestamp, RIB_IPV4_UNICAST if net.version == 4 else RIB_IPV6_UNICAST, body))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(out))
    tmp.replace(path)
    return len(table)
