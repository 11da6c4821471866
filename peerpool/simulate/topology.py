"""The simulated exchange itself: members, their ports and addresses, switches, border routers,
transit contracts and fees, as a :class:`peerpool.config.model.Exchange` plus the numbers the
traffic model needs (sizes, profiles, port weights).

Sizes are log-normal per member kind (a handful of 100G content networks, many 1G/10G eyeball
networks). Ports are sized from the traffic each member actually gets in the fitted matrix
(peak at most half the capacity), so no port ever runs above its speed. Everything here is
drawn from one random stream of the seed, so the same seed gives the same exchange.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from peerpool.config.model import (
    Billing,
    BorderRouter,
    BorderRouterPort,
    Exchange,
    Member,
    MemberKind,
    MemberPort,
    OneOffFee,
    PortFee,
    Site,
    SnmpSettings,
    Switch,
    TransitContract,
)
from peerpool.simulate.matrix import PairMatrix, choose_sessions, fit_matrix
from peerpool.simulate.timegrid import TimeGrid

PEERING_VLAN = 100
PEERING_LAN_V4 = ipaddress.IPv4Network("10.100.0.0/20")
PEERING_LAN_V6 = ipaddress.IPv6Network("2001:db8:100::/64")
MEMBER_V4_BASE = ipaddress.IPv4Address("185.16.0.0")
FIRST_ASN = 200000
MAX_MEMBERS = 2000  # address plans below (LAN, prefixes, switch addresses) are sized for this
SIZE_CAP_GBPS = 95.0
HEADROOM = 2.0  # port capacity >= 2 x the member's peak (members upgrade at ~50-60 % utilisation)
PORTS_PER_SWITCH = 96
WRAP_PORT_MAX_GBPS = 0.04  # the 32-bit port carries < 114 Mbps per 5 min, so it wraps at most once a poll

KINDS: tuple[MemberKind, ...] = ("eyeball", "hosting", "content", "transit", "other")
KIND_SHARE = (0.55, 0.18, 0.08, 0.06, 0.13)
# median peak Gbps and log-normal sigma of a member's size (max of sent and received at peak)
KIND_SIZE = {
    "eyeball": (2.0, 1.6),
    "hosting": (2.5, 1.5),
    "content": (20.0, 1.3),
    "transit": (8.0, 1.2),
    "other": (0.6, 1.3),
}
# share of the size sent to / received from the exchange
KIND_DIRECTION = {
    "eyeball": (0.22, 1.0),
    "hosting": (1.0, 0.45),
    "content": (1.0, 0.08),
    "transit": (0.85, 0.8),
    "other": (0.6, 0.6),
}
KIND_V6 = {"eyeball": 0.35, "hosting": 0.25, "content": 0.45, "transit": 0.3, "other": 0.2}
# chance of buying transit through the cooperative, then transit in/out at peak as a share of size
KIND_TRANSIT = {
    "eyeball": (0.9, 0.35, 0.05),
    "hosting": (0.7, 0.08, 0.25),
    "content": (0.3, 0.03, 0.15),
    "transit": (0.5, 0.25, 0.2),
    "other": (0.8, 0.2, 0.1),
}
SITES = (
    Site("KTW", "Katowice", "Katowice"),
    Site("WAW", "Warszawa", "Warszawa"),
    Site("POZ", "Poznań", "Poznań"),
)
SITE_SHARE = (0.4, 0.4, 0.2)
EXPANDED_SITES = frozenset({"POZ"})  # another vendor there: expanded sFlow samples, other ifName style

SWITCH_SNMP = SnmpSettings(version="2c", community_env="PEERPOOL_SNMP_COMMUNITY", profile="switches")
ROUTER_SNMP = SnmpSettings(
    version="3",
    user="peerpool",
    auth_protocol="SHA",
    auth_key_env="PEERPOOL_SNMP_AUTH_KEY",
    priv_protocol="AES",
    priv_key_env="PEERPOOL_SNMP_PRIV_KEY",
    profile="routers",
)
PORT_FEES = (
    PortFee(1000, Decimal("300.00")),
    PortFee(10000, Decimal("900.00")),
    PortFee(100000, Decimal("4500.00")),
)
# provider, ASN, share of members' transit, price per Mbps of commit, burst price per Mbps
PROVIDERS = (
    ("arelion", "Arelion", 1299, 0.45, "0.80", "1.00"),
    ("cogent", "Cogent", 174, 0.35, "0.55", "0.75"),
    ("he", "Hurricane Electric", 6939, 0.20, "0.45", "0.60"),
)
ROUTERS = (
    # id, site, protocol, management, exporter address, core-facing ifindex
    ("ktw-br1", "KTW", "ipfix", "10.254.1.1", "10.255.1.1", 600),
    ("waw-br1", "WAW", "netflow9", "10.254.1.2", "10.255.1.2", 10),
)
PRIVATE_ORIGIN_ASN = 65010
PRIVATE_PREFIXES = ("185.255.255.0/24", "2a0e:ffff::/48")


@dataclass
class SimMember:
    index: int
    config: Member
    kind: str
    v6_share: float
    phase_h: float
    growth_per_month: float
    v4_nets: list[ipaddress.IPv4Network]
    v6_nets: list[ipaddress.IPv6Network]
    transit_in_gbps: float = 0.0
    transit_out_gbps: float = 0.0
    active_from_ns: int = 0
    ports: list[int] = field(default_factory=list)


@dataclass
class SimPort:
    """A port whose counters are polled: a member port on a switch, or a router's transit port."""

    index: int
    id: str
    device_id: str
    device_address: str
    ifindex: int
    speed_mbps: int
    if_name: str
    if_alias: str
    member_index: int  # -1 for transit ports
    base_weight: float
    active_from_ns: int
    counter_bits: int
    mac: bytes
    site: str
    contract_id: str = ""
    router_id: str = ""

    @property
    def is_transit(self) -> bool:
        return self.member_index < 0


@dataclass(frozen=True)
class RemoteNet:
    name: str
    asn: int
    v4: ipaddress.IPv4Network
    v6: ipaddress.IPv6Network
    weight: float


@dataclass(frozen=True)
class RouterSpec:
    id: str
    site: str
    protocol: str  # ipfix | netflow9
    management_address: str
    exporter_address: str
    core_ifindex: int


@dataclass
class Topology:
    exchange: Exchange
    members: list[SimMember]
    ports: list[SimPort]  # member ports first, then transit ports
    matrix: PairMatrix
    remotes: list[RemoteNet]
    routers: list[RouterSpec]
    transit_share: npt.NDArray[np.float64]  # members x transit ports, rows sum to 1 (or 0)
    wrap_port: int
    joiner: int | None
    late_port: int | None
    switch_sites: dict[str, str]
    member_port_count: int

    @property
    def transit_ports(self) -> list[SimPort]:
        return self.ports[self.member_port_count :]

    def expanded(self, switch_id: str) -> bool:
        return self.switch_sites[switch_id] in EXPANDED_SITES


def _mac(member: int, link: int) -> bytes:
    return bytes([0x02, 0x50, (member >> 8) & 0xFF, member & 0xFF, link & 0xFF, 0x01])


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def _interface(site: str, speed: int, n: int) -> tuple[str, int]:
    if site in EXPANDED_SITES:  # Arista-like naming and ifIndex
        slot, lane = n // 4 + 1, n % 4 + 1
        return f"Ethernet{slot}/{lane}", slot * 1000 + lane
    prefix = {1000: "ge", 10000: "xe"}.get(speed, "et")
    return f"{prefix}-{n // 48}/0/{n % 48}", 513 + n


def _port_plan(peak_gbps: float) -> tuple[list[int], bool]:
    """Port speeds for a member and whether they form one bundle."""
    need = peak_gbps * 1000.0 * HEADROOM
    if need <= 1000:
        return [1000], False
    if need <= 10000:
        return [10000], False
    if need <= 20000:
        return [10000, 10000], True
    if need <= 100000:
        return [100000], False
    return [100000, 100000], True


class _Allocator:
    """Hands out aligned IPv4 prefixes from 185.16.0.0 upwards."""

    def __init__(self) -> None:
        self.cursor = int(MEMBER_V4_BASE)

    def take(self, length: int) -> ipaddress.IPv4Network:
        size = 1 << (32 - length)
        self.cursor = (self.cursor + size - 1) // size * size
        net = ipaddress.IPv4Network((self.cursor, length))
        self.cursor += size
        return net


def build_topology(
    seed: int, members: int, grid: TimeGrid, sampling_rate: int, traffic_scale: float
) -> Topology:
    rng = np.random.default_rng([seed, 0])
    n = members
    start_date = grid.local_start.date()

    # --- members: kind and size -------------------------------------------------------------
    kinds = list(rng.choice(len(KINDS), size=n, p=np.array(KIND_SHARE)))
    if n >= 3:  # every exchange has eyeballs, content and hosting, even a tiny one
        for pos, forced in zip(rng.permutation(n)[:3], (0, 2, 1), strict=True):
            kinds[int(pos)] = forced
    kind_names = [KINDS[int(k)] for k in kinds]
    raw = np.array([float(rng.lognormal(math.log(KIND_SIZE[k][0]), KIND_SIZE[k][1])) for k in kind_names])
    sizes = np.maximum(0.01, SIZE_CAP_GBPS * -np.expm1(-raw / SIZE_CAP_GBPS))  # a soft cap, no pile-up
    sizes *= traffic_scale
    eligible = [i for i, k in enumerate(kind_names) if k in ("eyeball", "other")] or list(range(n))
    wrap_member = min(eligible, key=lambda i: float(sizes[i]))
    sizes[wrap_member] = min(float(sizes[wrap_member]), WRAP_PORT_MAX_GBPS * 0.7)
    out_t = np.array([sizes[i] * KIND_DIRECTION[k][0] for i, k in enumerate(kind_names)])
    in_t = np.array([sizes[i] * KIND_DIRECTION[k][1] for i, k in enumerate(kind_names)])

    # --- the matrix ------------------------------------------------------------------------
    sessions = choose_sessions(rng, sizes)
    matrix = fit_matrix(rng, sessions, out_t, in_t)
    peak = np.maximum(matrix.sent(n), matrix.received(n))
    if peak[wrap_member] > WRAP_PORT_MAX_GBPS:
        factor = WRAP_PORT_MAX_GBPS / float(peak[wrap_member])
        touch = (matrix.src == wrap_member) | (matrix.dst == wrap_member)
        matrix.gbps[touch] *= factor
        peak = np.maximum(matrix.sent(n), matrix.received(n))

    # --- who joins or grows mid-period -------------------------------------------------------
    joiner: int | None = None
    late_member: int | None = None
    if grid.days >= 2:
        joiner = int(rng.choice([i for i in range(n) if i != wrap_member]))
    join_date = start_date + dt.timedelta(days=grid.days // 2)
    late_date = start_date + dt.timedelta(days=max(1, (2 * grid.days) // 3))

    asns = sorted(
        int(a) for a in rng.choice(np.arange(FIRST_ASN, FIRST_ASN + max(1000, 10 * n)), n, replace=False)
    )
    v4 = _Allocator()
    sim_members: list[SimMember] = []
    config_members: list[Member] = []
    for i in range(n):
        kind = kind_names[i]
        asn = asns[i]
        v6_share = 0.0 if rng.random() < 0.12 else float(rng.beta(4.0, 4.0 / KIND_V6[kind] - 4.0))
        if i == wrap_member:
            v6_share = 0.0
        length = 22 if peak[i] < 1 else 21 if peak[i] < 10 else 20 if peak[i] < 50 else 19
        v4_nets = [v4.take(length)]
        if peak[i] >= 10:
            v4_nets.append(v4.take(22))
        v6_nets = [ipaddress.IPv6Network(f"2a0e:{0x1000 + i:x}::/32")] if v6_share > 0 else []
        title = kind.capitalize()
        name = f"Sim {title} {i + 1:03d} (simulated)"
        if i == joiner:
            joined = join_date
        else:
            joined = dt.date(2009, 1, 1) + dt.timedelta(
                days=int(rng.integers(0, max(1, (start_date - dt.date(2009, 1, 1)).days - 60)))
            )
        buys, t_in, t_out = KIND_TRANSIT[kind]
        transit = rng.random() < buys
        member = Member(
            id=f"AS{asn}",
            asn=asn,
            name=name,
            billing_entity=f"Sim {title} {i + 1:03d} Sp. z o.o. (simulated)",
            joined=joined,
            kind=kind,
            prefixes=tuple(str(p) for p in v4_nets) + tuple(str(p) for p in v6_nets),
        )
        config_members.append(member)
        sim_members.append(
            SimMember(
                index=i,
                config=member,
                kind=kind,
                v6_share=v6_share,
                phase_h=float(rng.uniform(-0.75, 0.75)),
                growth_per_month=float(np.clip(rng.normal(0.02, 0.015), -0.01, 0.06)),
                v4_nets=v4_nets,
                v6_nets=v6_nets,
                transit_in_gbps=float(sizes[i] * t_in) if transit else 0.0,
                transit_out_gbps=float(sizes[i] * t_out) if transit else 0.0,
                active_from_ns=grid.local_midnight_ns(joined) if i == joiner else 0,
            )
        )
    buyers = [m for m in sim_members if m.transit_in_gbps > 0]
    if len(buyers) < 2:  # the pooled bill needs at least two members to share
        for m in sorted(sim_members, key=lambda m: -float(sizes[m.index]))[:2]:
            _, t_in, t_out = KIND_TRANSIT[m.kind]
            m.transit_in_gbps, m.transit_out_gbps = (
                float(sizes[m.index] * t_in),
                float(sizes[m.index] * t_out),
            )

    # --- ports -------------------------------------------------------------------------------
    plans: list[tuple[int, list[int], bool, bool]] = []  # member, speeds, bundle, late second port
    for i in range(n):
        speeds, bundle = _port_plan(float(peak[i]))
        redundant = len(speeds) == 1 and i != wrap_member and rng.random() < 0.55
        plans.append((i, speeds + ([speeds[0]] if redundant else []), bundle, False))
    if grid.days >= 2:
        candidates = [i for i, speeds, _, _ in plans if len(speeds) == 1 and i not in (wrap_member, joiner)]
        if candidates:
            late_member = int(rng.choice(candidates))
            i, speeds, bundle, _ = plans[late_member]
            plans[late_member] = (i, [*speeds, speeds[0]], False, True)

    total_ports = sum(len(p[1]) for p in plans)
    per_site = max(2, math.ceil(total_ports / len(SITES) / PORTS_PER_SWITCH * 1.25))
    switches: list[Switch] = []
    switch_sites: dict[str, str] = {}
    load: dict[str, int] = {}
    for s_i, site_def in enumerate(SITES):
        for j in range(1, per_site + 1):
            sid = f"{site_def.id.lower()}-sw{j}"
            switches.append(
                Switch(
                    id=sid,
                    site=site_def.id,
                    management_address=f"10.254.0.{s_i * 16 + j}",
                    snmp=SWITCH_SNMP,
                    sflow_agent_address=f"10.255.0.{s_i * 16 + j}",
                    sampling_rate=sampling_rate,
                )
            )
            switch_sites[sid] = site_def.id
            load[sid] = 0
    site_ids = [s.id for s in SITES]

    def least_loaded(site: str) -> str:
        return min((s for s in load if switch_sites[s] == site), key=lambda s: (load[s], s))

    sim_ports: list[SimPort] = []
    config_ports: list[MemberPort] = []
    wrap_port = -1
    late_port: int | None = None
    lan_v4 = iter(PEERING_LAN_V4.hosts())
    for i, speeds, bundle, late in plans:
        m = sim_members[i]
        home = site_ids[i] if i < len(site_ids) else str(rng.choice(site_ids, p=np.array(SITE_SHARE)))
        ip4 = str(next(lan_v4))
        ip6 = (
            str(PEERING_LAN_V6.network_address + ((m.config.asn % 65536) << 16) + 1) if m.v6_share > 0 else ""
        )
        for link, speed in enumerate(speeds):
            second = link == 1
            if second and not bundle:
                site = site_ids[(site_ids.index(home) + 1) % len(site_ids)]
                switch_id = least_loaded(site)
                ip4 = str(next(lan_v4))
                ip6 = (
                    str(PEERING_LAN_V6.network_address + ((m.config.asn % 65536) << 16) + 2)
                    if m.v6_share > 0
                    else ""
                )
            elif second:
                switch_id = sim_ports[-1].device_id
            else:
                switch_id = least_loaded(home)
            site = switch_sites[switch_id]
            interface, ifindex = _interface(site, speed, load[switch_id])
            load[switch_id] += 1
            mac = _mac(i, 0 if bundle else link)
            bundle_name = ""
            if bundle:
                bundle_name = f"Port-Channel{i + 1}" if site in EXPANDED_SITES else f"ae{i + 1}"
            is_late = late and second
            connected = late_date if is_late else m.config.joined
            bits = 32 if i == wrap_member else 64
            port = MemberPort(
                id=f"{switch_id}:{interface}",
                switch=switch_id,
                interface=interface,
                ifindex=ifindex,
                speed_mbps=speed,
                vlan=PEERING_VLAN,
                member=m.config.id,
                macs=(mac_text(mac),),
                ipv4=(ip4,),
                ipv6=(ip6,) if ip6 else (),
                connected=connected,
                bundle=bundle_name,
                counter_bits=bits,  # type: ignore[arg-type]
            )
            config_ports.append(port)
            index = len(sim_ports)
            weight = 0.5 if bundle else (0.6 if link == 0 else 0.4) if len(speeds) > 1 else 1.0
            sim_ports.append(
                SimPort(
                    index=index,
                    id=port.id,
                    device_id=switch_id,
                    device_address=next(s.management_address for s in switches if s.id == switch_id),
                    ifindex=ifindex,
                    speed_mbps=speed,
                    if_name=interface,
                    if_alias=f"{m.config.id} {m.config.name}" + (f" [{bundle_name}]" if bundle_name else ""),
                    member_index=i,
                    base_weight=weight,
                    active_from_ns=grid.local_midnight_ns(connected) if connected > start_date else 0,
                    counter_bits=bits,
                    mac=mac,
                    site=site,
                )
            )
            m.ports.append(index)
            if bits == 32:
                wrap_port = index
            if is_late:
                late_port = index
    member_port_count = len(sim_ports)

    # --- remote networks, border routers, contracts ------------------------------------------
    remotes = []
    for r in range(10 + n // 10):
        remotes.append(
            RemoteNet(
                name=f"Remote Net {r + 1:02d} (simulated)",
                asn=210000 + 7 * r,
                v4=ipaddress.IPv4Network(f"{91 + r // 256}.{r % 256}.0.0/16"),
                v6=ipaddress.IPv6Network(f"2a0f:{0x1000 + r:x}::/32"),
                weight=1.0 / (r + 1) ** 1.1,
            )
        )
    routers = [RouterSpec(*row) for row in ROUTERS]
    demand = sum(max(m.transit_in_gbps, m.transit_out_gbps) for m in sim_members)
    router_ports: dict[str, list[BorderRouterPort]] = {r.id: [] for r in routers}
    contracts: list[TransitContract] = []
    contract_port_index: list[list[int]] = []
    year = start_date.year
    for key, provider, _asn, share, price, burst in PROVIDERS:
        contract_peak = demand * share
        speed = 10000 if contract_peak * 1.6 <= 10 else 100000
        count = max(1, math.ceil(contract_peak * 1.6 * 1000 / speed))
        homes = (
            ["ktw-br1"] if key == "arelion" else ["waw-br1"] if key == "cogent" else ["ktw-br1", "waw-br1"]
        )
        count = max(count, len(homes))
        ids: list[str] = []
        indices: list[int] = []
        for c in range(count):
            router = next(r for r in routers if r.id == homes[c % len(homes)])
            k = len(router_ports[router.id])
            if router.protocol == "ipfix":
                interface = f"{'xe' if speed == 10000 else 'et'}-1/0/{k}"
                ifindex = 520 + k
            else:
                interface = f"{'TenGigE' if speed == 10000 else 'HundredGigE'}0/0/0/{k}"
                ifindex = 20 + k
            router_ports[router.id].append(
                BorderRouterPort(f"{router.id}:{interface}", router.id, interface, ifindex, speed)
            )
            ids.append(f"{router.id}:{interface}")
            index = len(sim_ports)
            indices.append(index)
            sim_ports.append(
                SimPort(
                    index=index,
                    id=f"{router.id}:{interface}",
                    device_id=router.id,
                    device_address=router.management_address,
                    ifindex=ifindex,
                    speed_mbps=speed,
                    if_name=interface,
                    if_alias=f"Transit: {provider} ({key}-{year})",
                    member_index=-1,
                    base_weight=1.0 / count,
                    active_from_ns=0,
                    counter_bits=64,
                    mac=bytes([0x02, 0x51, 0, 0, len(contracts), c]),
                    site=router.site,
                    contract_id=f"{key}-{year}",
                    router_id=router.id,
                )
            )
        contract_port_index.append(indices)
        p95_in = sum(m.transit_in_gbps for m in sim_members) * share * 0.9 * 1000
        commit = max(Decimal(100), Decimal(int(p95_in * 0.6) // 100 * 100))
        contracts.append(
            TransitContract(
                id=f"{key}-{year}",
                provider=provider,
                ports=tuple(ids),
                commit_mbps=commit,
                price_per_mbps=Decimal(price),
                burst_price_per_mbps=Decimal(burst),
                currency="PLN",
                percentile=95,
                direction_rule="max",
                billing_timezone="Europe/Warsaw",
                gap_policy="exclude",
                term_start=dt.date(year, 1, 1),
                term_end=dt.date(year + 1, 12, 31),
            )
        )
    transit_share = np.zeros((n, len(sim_ports) - member_port_count))
    base_shares = np.array([p[3] for p in PROVIDERS])
    for m in sim_members:
        if m.transit_in_gbps <= 0 and m.transit_out_gbps <= 0:
            continue
        shares = base_shares * rng.lognormal(0.0, 0.3, base_shares.shape[0])
        shares /= shares.sum()
        for c, indices in enumerate(contract_port_index):
            for index in indices:
                transit_share[m.index, index - member_port_count] = shares[c] / len(indices)

    border_routers = tuple(
        BorderRouter(
            id=r.id,
            site=r.site,
            management_address=r.management_address,
            flow_exporter_address=r.exporter_address,
            snmp=ROUTER_SNMP,
            ports=tuple(router_ports[r.id]),
        )
        for r in routers
    )
    fee_member = sim_members[joiner] if joiner is not None else sim_members[wrap_member]
    fee_date = join_date if joiner is not None else start_date
    one_off = [
        OneOffFee(
            fee_member.config.id, fee_date.strftime("%Y-%m"), "cross-connect installation", Decimal("250.00")
        )
    ]
    if late_member is not None:
        one_off.append(
            OneOffFee(
                sim_members[late_member].config.id,
                late_date.strftime("%Y-%m"),
                "second port installation",
                Decimal("400.00"),
            )
        )
    exchange = Exchange(
        name=f"Simulated IX (peerpool simulate, seed {seed})",
        sites=SITES,
        switches=tuple(switches),
        members=tuple(config_members),
        ports=tuple(config_ports),
        border_routers=border_routers,
        transit_contracts=tuple(contracts),
        port_fees=PORT_FEES,
        one_off_fees=tuple(one_off),
        billing=Billing(),
    )
    return Topology(
        exchange=exchange,
        members=sim_members,
        ports=sim_ports,
        matrix=matrix,
        remotes=remotes,
        routers=routers,
        transit_share=transit_share,
        wrap_port=wrap_port,
        joiner=joiner,
        late_port=late_port,
        switch_sites=switch_sites,
        member_port_count=member_port_count,
    )
