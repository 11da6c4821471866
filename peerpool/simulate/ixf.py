"""The exchange's IX-F member export (Euro-IX JSON schema 1.0), as IXP Manager publishes it.

One IXP entry with its switches and the peering VLAN; one member entry per member with one
connection per bundle or single port, each with its interfaces and its addresses and MACs in
the peering VLAN. Names say "(simulated)"; the export time is the run's start, so the file is
the same for the same seed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from peerpool.simulate.topology import PEERING_LAN_V4, PEERING_LAN_V6, PEERING_VLAN, Topology

IXP_ID = 1


def _stamp(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def export(topo: Topology, timestamp: dt.datetime) -> dict[str, Any]:
    ex = topo.exchange
    switch_ids = {s.id: n for n, s in enumerate(ex.switches, 1)}
    sites = {s.id: s for s in ex.sites}
    ixp = {
        "ixp_id": IXP_ID,
        "ixf_id": 9999,
        "shortname": "SIM-IX",
        "name": ex.name,
        "country": "PL",
        "url": "https://sim-ix.invalid/",
        "peering_policy_list": ["open", "selective"],
        "switch": [
            {
                "id": switch_ids[s.id],
                "name": s.id,
                "colo": f"{sites[s.site].name} data centre (simulated)",
                "city": sites[s.site].city,
                "country": "PL",
                "manufacturer": "Simulated",
                "model": "peerpool-sim",
            }
            for s in ex.switches
        ],
        "vlan": [
            {
                "id": PEERING_VLAN,
                "name": "peering",
                "ipv4": {
                    "prefix": str(PEERING_LAN_V4.network_address),
                    "mask_length": PEERING_LAN_V4.prefixlen,
                },
                "ipv6": {
                    "prefix": str(PEERING_LAN_V6.network_address),
                    "mask_length": PEERING_LAN_V6.prefixlen,
                },
            }
        ],
    }
    members = []
    for m in topo.members:
        ports = [ex.ports[p] for p in m.ports]
        groups: dict[str, list[Any]] = {}
        for port in ports:
            groups.setdefault(port.bundle or port.id, []).append(port)
        connections = []
        for group in groups.values():
            first = group[0]
            vlan: dict[str, Any] = {"vlan_id": first.vlan}
            for family, addresses in (("ipv4", first.ipv4), ("ipv6", first.ipv6)):
                if addresses:
                    vlan[family] = {
                        "address": addresses[0],
                        "routeserver": True,
                        "max_prefix": 100 if family == "ipv4" else 50,
                        "mac_addresses": sorted({mac for p in group for mac in p.macs}),
                    }
            connections.append(
                {
                    "ixp_id": IXP_ID,
                    "state": "active",
                    "connected_since": _stamp(min(p.connected for p in group)),
                    "if_list": [
                        {"switch_id": switch_ids[p.switch], "if_speed": p.speed_mbps, "if_type": "Ethernet"}
                        for p in group
                    ],
                    "vlan_list": [vlan],
                }
            )
        members.append(
            {
                "asnum": m.config.asn,
                "member_type": "peering",
                "name": m.config.name,
                "peering_policy": "open" if m.kind in ("content", "hosting") else "selective",
                "member_since": _stamp(m.config.joined),
                "connection_list": connections,
            }
        )
    return {
        "version": "1.0",
        "timestamp": timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ixp_list": [ixp],
        "member_list": members,
    }


def write_ixf(path: Path, topo: Topology, timestamp: dt.datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(export(topo, timestamp), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
