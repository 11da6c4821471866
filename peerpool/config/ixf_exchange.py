"""A whole :class:`Exchange` from an IX-F import: merged into a base file, or a marked skeleton.

IX-F describes members and where they connect; it says nothing of SNMP, border routers,
transit contracts or fees. With a base configuration those come from the base, and the
base's curated members and ports win over the export's (the export only adds members the
base lacks). Without one, a skeleton is made whose every invented value is written as a
``TODO`` comment next to it, so ``config check`` passes and the user sees what to replace.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from peerpool.config.ixf import IxfImport, IxfSwitch
from peerpool.config.model import Billing, Exchange, Member, MemberPort, PortFee, Site, SnmpSettings, Switch

SKELETON_SNMP = SnmpSettings(version="2c", community_env="PEERPOOL_SNMP_COMMUNITY", profile="default")
UNKNOWN_SITE = "unknown-site"
_SAFE = re.compile(r"[^A-Za-z0-9._/-]+")


@dataclass
class Built:
    exchange: Exchange
    notes: dict[str, str] = field(default_factory=dict)  # dump_exchange notes: entry key -> comment
    todo: list[str] = field(default_factory=list)  # what the user must fill in, one line each
    warnings: list[str] = field(default_factory=list)  # merge decisions worth knowing


def _safe(text: str, fallback: str) -> str:
    return _SAFE.sub("-", text.strip()).strip("-") or fallback


def _placeholder_address(n: int) -> str:
    """Management addresses for invented switches: 192.0.2.0/24 is documentation space (RFC 5737)."""
    return f"192.0.2.{n}"


def _site_for(sw: IxfSwitch) -> tuple[str, Site]:
    if not sw.known or not (sw.colo or sw.city):
        return UNKNOWN_SITE, Site(id=UNKNOWN_SITE, name="unknown site (ix-f export names none)")
    sid = _safe(sw.colo or sw.city, "site")
    return sid, Site(id=sid, name=sw.colo or sw.city, city=sw.city)


def exchange_from_ixf(imported: IxfImport, base: Exchange | None = None) -> Built:
    """Combine ``imported`` with ``base`` (or a skeleton) into an exchange plus its TODO notes."""
    built = Built(exchange=base if base is not None else _skeleton_head(imported))
    ex = built.exchange
    sites = list(ex.sites)
    switches = list(ex.switches)
    snmp = switches[0].snmp if switches else SKELETON_SNMP
    switch_ids = {s.id for s in switches}
    used_addresses = {s.sflow_agent_address or s.management_address for s in switches}

    # members: the base's win; the export adds the ones it lacks
    base_ids = {m.id for m in ex.members}
    members: list[Member] = list(ex.members)
    new_ids: set[str] = set()
    for m in imported.members:
        if m.id in base_ids:
            continue
        members.append(m)
        new_ids.add(m.id)
        marks = imported.placeholders.get(f"member:{m.id}", [])
        if marks:
            built.notes[f"member:{m.id}"] = "TODO from ix-f, check: " + ", ".join(marks)
    if base is not None:
        exported = {m.id for m in imported.members}
        gone = sorted(m for m in base_ids if m not in exported)
        if gone:
            built.warnings.append(
                f"{len(gone)} member(s) of the base are not in the export and were kept: {', '.join(gone)}; "
                "set left = <date> on those that left"
            )
        kept = len(base_ids & exported)
        if kept:
            built.warnings.append(f"{kept} member(s) are in both; the base's entries and ports were kept")

    # ports: only for members new to the base, so curated ports are never replaced by placeholders
    new_ports = [p for p in imported.ports if p.member in new_ids]
    needed = {p.switch for p in new_ports}
    n_address = 0
    for sw in imported.switches:
        if sw.id not in needed or sw.id in switch_ids:
            continue
        site_id, site = _site_for(sw)
        if site_id not in {s.id for s in sites}:
            sites.append(site)
            if site_id == UNKNOWN_SITE:
                built.notes[f"site:{site_id}"] = "TODO the export does not say where these switches are"
        n_address += 1
        while _placeholder_address(n_address) in used_addresses:
            n_address += 1
        address = _placeholder_address(n_address)
        used_addresses.add(address)
        switches.append(Switch(id=sw.id, site=site_id, management_address=address, snmp=snmp))
        switch_ids.add(sw.id)
        what = f"ix-f switch {sw.ixf_name!r}" if sw.known else "a switch the export does not describe"
        built.notes[f"switch:{sw.id}"] = (
            f"TODO {what}: management_address is a placeholder (documentation range), "
            "set it and sflow_agent_address"
        )
    ports = _without_conflicts(list(ex.ports), new_ports, built.warnings)
    for p in ports:
        marks = imported.placeholders.get(f"port:{p.id}", []) if p.member in new_ids else []
        if marks:
            built.notes[f"port:{p.id}"] = "TODO placeholders (ix-f has none): " + ", ".join(marks)

    fees = list(ex.port_fees)
    priced = {f.speed_mbps for f in fees}
    for speed in sorted({p.speed_mbps for p in ports} - priced):
        fees.append(PortFee(speed_mbps=speed, monthly_fee=Decimal("0.00")))
        built.notes[f"port_fee:{speed}"] = "TODO set the monthly fee of this port speed"
        built.todo.append(f"[[port_fees]] speed_mbps = {speed}: monthly_fee is 0.00, set the real fee")

    built.exchange = replace(
        ex,
        sites=tuple(sites),
        switches=tuple(switches),
        members=tuple(members),
        ports=tuple(ports),
        port_fees=tuple(fees),
        source="",
    )
    _summarise_todo(built)
    return built


def _skeleton_head(imported: IxfImport) -> Exchange:
    name = imported.ixp_names[0] if imported.ixp_names else "imported exchange"
    return Exchange(
        name=name,
        sites=(),
        switches=(),
        members=(),
        ports=(),
        border_routers=(),
        transit_contracts=(),
        port_fees=(),
        billing=Billing(),
    )


def _without_conflicts(
    base: list[MemberPort], new: list[MemberPort], warnings: list[str]
) -> list[MemberPort]:
    """``base + new``, with MACs and addresses of new ports that the base already gives away dropped."""
    owner_mac: dict[str, str] = {}
    owner_ip: dict[str, str] = {}
    for p in base:
        for mac in p.macs:
            owner_mac.setdefault(mac, p.member)
        for ip in p.ipv4 + p.ipv6:
            owner_ip.setdefault(ip, p.member)
    out = list(base)
    for p in new:
        macs = tuple(m for m in p.macs if m not in owner_mac)
        ipv4 = tuple(a for a in p.ipv4 if a not in owner_ip)
        ipv6 = tuple(a for a in p.ipv6 if a not in owner_ip)
        for m in sorted(set(p.macs) - set(macs)):
            warnings.append(
                f"mac {m} of {p.member} (port '{p.id}') belongs to {owner_mac[m]} in the base; dropped"
            )
        for a in sorted(set(p.ipv4 + p.ipv6) - set(ipv4 + ipv6)):
            warnings.append(
                f"address {a} of {p.member} (port '{p.id}') belongs to {owner_ip[a]} in the base; dropped"
            )
        out.append(replace(p, macs=macs, ipv4=ipv4, ipv6=ipv6))
    return out


def _summarise_todo(built: Built) -> None:
    counts: dict[str, int] = defaultdict(int)
    for key, note in built.notes.items():
        if note.startswith("TODO") and not key.startswith("port_fee:"):
            counts[key.split(":", 1)[0]] += 1
    order = [
        ("switch", "switch(es): placeholder management_address in 192.0.2.0/24; set the real addresses"),
        ("site", "site: switches whose location the export does not give"),
        (
            "member",
            "member(s): billing_entity copied from the name (and name/joined where the export lacks them)",
        ),
        ("port", "port(s): placeholder interface and ifindex (and switch/speed/vlan where marked)"),
    ]
    head = [f"{counts[k]} {text}" for k, text in order if counts.get(k)]
    built.todo[:0] = head
    if not built.exchange.border_routers:
        built.todo.append("no [[border_routers]] or [[transit_contracts]]: add them to bill transit")
