"""Typed objects of the exchange configuration (``exchange.toml``).

This module is the contract between the configuration file and every other part of
peerpool. It holds only the shapes; ``peerpool.config.load`` reads and validates a file
into them. Money is ``Decimal`` (written as strings in the file), never ``float``.
Dates are ``datetime.date``; a missing end date means "still active".

Secrets are never in the file: SNMP settings name environment variables
(``community_env``, ``auth_key_env``, ``priv_key_env``) that hold them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

DirectionRule = Literal["max", "sum", "in", "out"]
GapPolicy = Literal["exclude", "zero"]
SnmpVersion = Literal["2c", "3"]
AllocationMethod = Literal["proportional_p95", "capacity_share", "peak_contribution", "shapley"]
MemberKind = Literal["eyeball", "hosting", "content", "transit", "other"]

CURRENCIES = frozenset({"PLN", "EUR", "USD", "GBP", "CHF", "CZK"})


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    city: str = ""


@dataclass(frozen=True)
class SnmpSettings:
    """How to poll a device. Secrets live in the named environment variables."""

    version: SnmpVersion = "2c"
    port: int = 161
    community_env: str = ""  # v2c: env var holding the community
    user: str = ""  # v3 user name (not secret)
    auth_protocol: Literal["SHA", "SHA256", "MD5", ""] = ""
    auth_key_env: str = ""  # v3: env var holding the auth key
    priv_protocol: Literal["AES", "DES", ""] = ""
    priv_key_env: str = ""  # v3: env var holding the privacy key
    timeout_s: float = 2.0
    retries: int = 2
    profile: str = ""  # name of the [snmp.<name>] table it was read from ("" when built in code)


@dataclass(frozen=True)
class Switch:
    """An exchange switch: exports sFlow (ingress, edge ports) and answers SNMP."""

    id: str
    site: str
    management_address: str
    snmp: SnmpSettings
    sflow_agent_address: str = ""  # the agent address in its sFlow datagrams (defaults to management)
    sampling_rate: int = 16384  # configured sFlow sampling rate (the datagrams carry their own)


@dataclass(frozen=True)
class MemberPort:
    """A member's port on an exchange switch. ``id`` is ``<switch>:<interface>``."""

    id: str
    switch: str
    interface: str
    ifindex: int
    speed_mbps: int
    vlan: int
    member: str  # Member.id
    macs: tuple[str, ...]  # router MAC addresses, lower case, colon separated
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    connected: dt.date = dt.date(1970, 1, 1)
    disconnected: dt.date | None = None
    bundle: str = ""  # LAG name; ports with the same bundle are billed as one service
    counter_bits: Literal[32, 64] = 64


@dataclass(frozen=True)
class Member:
    id: str  # stable key, by convention "AS<asn>"
    asn: int
    name: str
    billing_entity: str
    joined: dt.date
    left: dt.date | None = None
    kind: MemberKind = "other"
    prefixes: tuple[str, ...] = ()  # announced prefixes (v4 and v6), for transit attribution


@dataclass(frozen=True)
class BorderRouterPort:
    """A port of a border router towards a transit provider. ``id`` is ``<router>:<interface>``."""

    id: str
    router: str
    interface: str
    ifindex: int
    speed_mbps: int


@dataclass(frozen=True)
class BorderRouter:
    id: str
    site: str
    management_address: str
    flow_exporter_address: str  # source address of its IPFIX / NetFlow v9 datagrams
    snmp: SnmpSettings
    ports: tuple[BorderRouterPort, ...]
    sampling_rate_override: int | None = None  # used when the exporter sends no sampling rate


@dataclass(frozen=True)
class TransitContract:
    id: str
    provider: str
    ports: tuple[str, ...]  # BorderRouterPort.id values; billed on the per-interval sum over them
    commit_mbps: Decimal
    price_per_mbps: Decimal  # per Mbps of commit, per month
    burst_price_per_mbps: Decimal  # per Mbps of billed percentile above commit
    currency: str
    percentile: int = 95
    direction_rule: DirectionRule = "max"
    billing_timezone: str = "Europe/Warsaw"
    gap_policy: GapPolicy = "exclude"
    term_start: dt.date = dt.date(1970, 1, 1)
    term_end: dt.date | None = None


@dataclass(frozen=True)
class PortFee:
    """Monthly fee of one member port of the given speed (net, in the exchange currency)."""

    speed_mbps: int
    monthly_fee: Decimal


@dataclass(frozen=True)
class OneOffFee:
    member: str
    month: str  # YYYY-MM
    description: str
    amount: Decimal


@dataclass(frozen=True)
class Billing:
    currency: str = "PLN"
    vat_rate: Decimal = Decimal("0.23")
    timezone: str = "Europe/Warsaw"
    transit_allocation: AllocationMethod = "proportional_p95"
    # cooperative-wide figures members may see: "none", "totals" (exchange totals only)
    member_visibility: Literal["none", "totals"] = "totals"


@dataclass(frozen=True)
class Exchange:
    name: str
    sites: tuple[Site, ...]
    switches: tuple[Switch, ...]
    members: tuple[Member, ...]
    ports: tuple[MemberPort, ...]
    border_routers: tuple[BorderRouter, ...]
    transit_contracts: tuple[TransitContract, ...]
    port_fees: tuple[PortFee, ...]
    one_off_fees: tuple[OneOffFee, ...] = ()
    billing: Billing = field(default_factory=Billing)
    source: str = ""  # the file this was loaded from, for messages

    # --- lookups used everywhere -------------------------------------------------
    def member(self, member_id: str) -> Member:
        for m in self.members:
            if m.id == member_id:
                return m
        raise KeyError(member_id)

    def switch(self, switch_id: str) -> Switch:
        for s in self.switches:
            if s.id == switch_id:
                return s
        raise KeyError(switch_id)

    def mac_table(self) -> dict[tuple[str, int], MemberPort]:
        """(mac, vlan) -> port, for every MAC of every port (disconnected ports included)."""
        return {(mac, p.vlan): p for p in self.ports for mac in p.macs}

    def port_fee(self, speed_mbps: int) -> Decimal:
        for fee in self.port_fees:
            if fee.speed_mbps == speed_mbps:
                return fee.monthly_fee
        raise KeyError(speed_mbps)
