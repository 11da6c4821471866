"""Read ``exchange.toml`` into :class:`peerpool.config.model.Exchange`, checking everything.

Every part of peerpool trusts the objects this returns, so the loader refuses a file with
any mistake and lists all of them at once (one per line, with a count): fixing a file
one error per run is slow and hides patterns. Messages name the file, the entry and the
fix. The format is documented in ``docs/configuration.md``; ``dump_exchange`` writes it back.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

from peerpool.config.dump import dump_exchange
from peerpool.config.fields import Entry, Problems, closest
from peerpool.config.model import (
    CURRENCIES,
    AllocationMethod,
    Billing,
    BorderRouter,
    BorderRouterPort,
    DirectionRule,
    Exchange,
    GapPolicy,
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
from peerpool.errors import ConfigError, InputError

__all__ = ["ENV_CONFIG", "ConfigProblems", "dump_exchange", "load_exchange", "loads_exchange"]

ENV_CONFIG = "PEERPOOL_CONFIG"

TOP_LEVEL = (
    "exchange",
    "billing",
    "sites",
    "snmp",
    "switches",
    "members",
    "ports",
    "border_routers",
    "transit_contracts",
    "port_fees",
    "one_off_fees",
)
SNMP_KEYS = (
    "version",
    "port",
    "community_env",
    "user",
    "auth_protocol",
    "auth_key_env",
    "priv_protocol",
    "priv_key_env",
    "timeout_s",
    "retries",
)
# keys people write by habit that would put a secret in the file
SNMP_SECRETS = {
    "community": "community_env",
    "auth_key": "auth_key_env",
    "priv_key": "priv_key_env",
    "auth_password": "auth_key_env",
    "priv_password": "priv_key_env",
    "password": "auth_key_env",
    "authkey": "auth_key_env",
    "privkey": "priv_key_env",
}
_IFINDEX_MAX = 2**31 - 1
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


class ConfigProblems(ConfigError):
    """A configuration file with one or more problems; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        count = len(problems)
        head = f"{source}: {count} problem{'s' if count != 1 else ''} in the exchange configuration"
        super().__init__(head + "\n" + "\n".join(problems))
        self.source = source
        self.problems = problems


def load_exchange(path: str | os.PathLike[str] | None = None) -> Exchange:
    """Load and validate the exchange configuration.

    ``path`` falls back to the ``PEERPOOL_CONFIG`` environment variable. Raises
    :class:`InputError` when the file is missing or unreadable and :class:`ConfigError`
    (a :class:`ConfigProblems`) listing every problem when its content is wrong.
    """
    if path is None:
        env = os.environ.get(ENV_CONFIG, "")
        if not env:
            raise InputError(
                f"no configuration file given; pass its path or set {ENV_CONFIG} to the path of exchange.toml"
            )
        path = env
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{file}: configuration file not found; check the path (or {ENV_CONFIG})") from None
    except IsADirectoryError:
        raise InputError(f"{file}: is a directory; give the path of the exchange.toml file") from None
    except OSError as exc:
        raise InputError(
            f"{file}: cannot read the configuration file ({exc.strerror}); check its permissions"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: is not utf-8 text (byte {exc.start}); save it as utf-8") from None
    return loads_exchange(text, source=str(file))


def loads_exchange(text: str, *, source: str = "exchange.toml") -> Exchange:
    """Parse and validate configuration text; ``source`` names it in messages and in ``Exchange.source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)"
        raise ConfigError(f"{source}: invalid toml: {str(exc).lower()}; fix the syntax there") from None
    return _Reader(source, data).read()


class _Reader:
    def __init__(self, source: str, data: dict[str, Any]) -> None:
        self.source = source
        self.data = data
        self.problems = Problems(source)

    # --- helpers -------------------------------------------------------------------
    def _tables(self, key: str) -> list[dict[str, Any]]:
        """The entries of an array of tables ``[[key]]``; reports a wrong shape."""
        value = self.data.get(key, [])
        if isinstance(value, dict):
            self.problems.add(f"[{key}] is a single table; write each entry as [[{key}]]")
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.add(f"{key} must be an array of tables written as [[{key}]] entries")
            return []
        return value

    def _table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.problems.add(f"{key} must be a table written as [{key}]")
            return {}
        return value

    def _check_id(self, entry: Entry, value: str, key: str = "id") -> None:
        if value and not _ID.match(value):
            entry.fail(
                f"has {key} '{value}' with characters that break references; "
                "use letters, digits and . _ / - (no spaces or colons)"
            )

    def _duplicates(self, kind: str, ids: list[str], fix: str) -> None:
        seen: set[str] = set()
        for item in ids:
            if item and item in seen:
                self.problems.add(f"{kind} '{item}' is defined twice; {fix}")
            seen.add(item)

    # --- sections ------------------------------------------------------------------
    def read(self) -> Exchange:
        for key in self.data:
            if key not in TOP_LEVEL:
                self.problems.add(
                    f"unknown table '{key}'; {closest(key, TOP_LEVEL).replace('keys', 'tables')}"
                )
        head = Entry(self.problems, "[exchange]", self._table("exchange"), ("name",))
        head.check_keys()
        name = head.text("name", required=True, example='"Example IX"')
        billing = self._billing()
        sites = self._sites()
        snmp = self._snmp()
        switches = self._switches(sites, snmp)
        members = self._members()
        ports = self._ports(switches, members)
        routers = self._border_routers(sites, snmp, switches)
        contracts = self._contracts(routers)
        fees = self._port_fees(ports)
        one_offs = self._one_off_fees(members)
        if self.problems:
            raise ConfigProblems(self.source, self.problems.items)
        return Exchange(
            name=name,
            sites=sites,
            switches=switches,
            members=members,
            ports=ports,
            border_routers=routers,
            transit_contracts=contracts,
            port_fees=fees,
            one_off_fees=one_offs,
            billing=billing,
            source=self.source,
        )

    def _timezone(self, entry: Entry, key: str, default: str) -> str:
        zone = entry.text(key, default=default, example='"Europe/Warsaw"')
        if zone != default or key in entry.table:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                entry.fail(f"has unknown time zone '{zone}'; use an iana name such as \"Europe/Warsaw\"")
                return default
        return zone

    def _currency(self, entry: Entry, default: str | None) -> str:
        currency = entry.text("currency", required=default is None, default=default or "", example='"PLN"')
        if "currency" in entry.table and currency == "" and default is not None:
            entry.fail(f'has an empty currency; write currency = "{default}" or remove the key')
            return ""
        if currency and currency not in CURRENCIES:
            hint = (
                f" (write it in upper case: '{currency.upper()}')" if currency.upper() in CURRENCIES else ""
            )
            entry.fail(f"has unknown currency '{currency}'; use one of {', '.join(sorted(CURRENCIES))}{hint}")
            return ""
        return currency

    def _billing(self) -> Billing:
        fields = ("currency", "vat_rate", "timezone", "transit_allocation", "member_visibility")
        entry = Entry(self.problems, "[billing]", self._table("billing"), fields)
        entry.check_keys()
        base = Billing()
        currency = self._currency(entry, base.currency)
        vat = entry.decimal("vat_rate", default=base.vat_rate, maximum=Decimal(1), example='"0.23"')
        timezone = self._timezone(entry, "timezone", base.timezone)
        allocation = entry.choice(
            "transit_allocation", get_args(AllocationMethod), default=base.transit_allocation
        )
        visibility = entry.choice("member_visibility", ("none", "totals"), default=base.member_visibility)
        return Billing(
            currency=currency or base.currency,
            vat_rate=vat if vat is not None else base.vat_rate,
            timezone=timezone,
            transit_allocation=allocation,  # type: ignore[arg-type]
            member_visibility=visibility,  # type: ignore[arg-type]
        )

    def _sites(self) -> tuple[Site, ...]:
        out: list[Site] = []
        for n, table in enumerate(self._tables("sites"), 1):
            sid = table.get("id")
            label = f"site '{sid}'" if isinstance(sid, str) and sid else f"[[sites]] entry {n}"
            entry = Entry(self.problems, label, table, ("id", "name", "city"))
            entry.check_keys()
            site_id = entry.text("id", required=True, example='"KTW"')
            self._check_id(entry, site_id)
            out.append(
                Site(
                    id=site_id,
                    name=entry.text("name", required=True, example='"Katowice"'),
                    city=entry.text("city"),
                )
            )
        self._duplicates("site", [s.id for s in out], "give each [[sites]] entry its own id")
        return tuple(out)

    def _snmp(self) -> dict[str, SnmpSettings]:
        profiles: dict[str, SnmpSettings] = {}
        for name, table in self._table("snmp").items():
            label = f"snmp profile '{name}'"
            if not isinstance(table, dict):
                self.problems.add(f"{label} must be a table written as [snmp.{name}]")
                continue
            entry = Entry(self.problems, label, table, SNMP_KEYS)
            for key in table:
                if key.lower() in SNMP_SECRETS:
                    env_key = SNMP_SECRETS[key.lower()]
                    entry.fail(
                        f"writes the secret '{key}' inline; secrets never go in the file: remove it, put the "
                        f'value in an environment variable and name it with {env_key} = "PEERPOOL_SNMP_..."'
                    )
            entry.table = {k: v for k, v in table.items() if k.lower() not in SNMP_SECRETS}
            entry.check_keys()
            version = entry.choice("version", ("2c", "3"), default="2c", what="snmp version")
            settings = SnmpSettings(
                version=version,  # type: ignore[arg-type]
                port=entry.integer("port", default=161, minimum=1, maximum=65535, example="161"),
                community_env=entry.env_name("community_env"),
                user=entry.text("user"),
                auth_protocol=entry.choice(  # type: ignore[arg-type]
                    "auth_protocol", ("SHA", "SHA256", "MD5"), default="", what="auth protocol"
                ),
                auth_key_env=entry.env_name("auth_key_env"),
                priv_protocol=entry.choice(  # type: ignore[arg-type]
                    "priv_protocol", ("AES", "DES"), default="", what="privacy protocol"
                ),
                priv_key_env=entry.env_name("priv_key_env"),
                timeout_s=entry.number("timeout_s", default=2.0, minimum=0.001, example="2.0"),
                retries=entry.integer("retries", default=2, minimum=0, maximum=20, example="2"),
                profile=name,
            )
            self._check_snmp(entry, settings)
            profiles[name] = settings
        return profiles

    @staticmethod
    def _check_snmp(entry: Entry, s: SnmpSettings) -> None:
        if s.version == "2c":
            if not entry.table.get("community_env"):
                entry.fail(
                    'uses snmp v2c but has no community_env; add community_env = "PEERPOOL_SNMP_COMMUNITY"'
                )
            for key in ("user", "auth_protocol", "auth_key_env", "priv_protocol", "priv_key_env"):
                if key in entry.table:
                    entry.fail(f'uses snmp v2c but sets {key}, a v3 setting; remove it or set version = "3"')
            return
        if not s.user:
            entry.fail('uses snmp v3 but has no user; add user = "peerpool"')
        if "community_env" in entry.table:
            entry.fail('uses snmp v3 but sets community_env, a v2c setting; remove it or set version = "2c"')
        if s.auth_protocol and not s.auth_key_env:
            entry.fail('sets auth_protocol but no auth_key_env; add auth_key_env = "PEERPOOL_SNMP_AUTH_KEY"')
        if s.auth_key_env and not s.auth_protocol:
            entry.fail('sets auth_key_env but no auth_protocol; add auth_protocol = "SHA"')
        if s.priv_protocol and not s.priv_key_env:
            entry.fail('sets priv_protocol but no priv_key_env; add priv_key_env = "PEERPOOL_SNMP_PRIV_KEY"')
        if s.priv_key_env and not s.priv_protocol:
            entry.fail('sets priv_key_env but no priv_protocol; add priv_protocol = "AES"')
        if s.priv_protocol and not s.auth_protocol:
            entry.fail("sets privacy without authentication, which snmp v3 does not allow; add auth_protocol")

    def _profile(self, entry: Entry, profiles: Mapping[str, SnmpSettings]) -> SnmpSettings:
        name = entry.text("snmp", required=True, example='"default"')
        if not name:
            return SnmpSettings()
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            entry.fail(
                f"names snmp profile '{name}', which is not defined ({known}); "
                f"add [snmp.{name}] or fix the name"
            )
            return SnmpSettings()
        return profiles[name]

    def _site_ref(self, entry: Entry, sites: tuple[Site, ...], kind: str) -> str:
        site = entry.text("site", required=True, example='"KTW"')
        if site and site not in {s.id for s in sites}:
            entry.fail(f"names site '{site}', which is not in [[sites]]; add the site or fix the {kind}")
        return site

    def _switches(self, sites: tuple[Site, ...], profiles: Mapping[str, SnmpSettings]) -> tuple[Switch, ...]:
        keys = ("id", "site", "management_address", "snmp", "sflow_agent_address", "sampling_rate")
        out: list[Switch] = []
        for n, table in enumerate(self._tables("switches"), 1):
            sid = table.get("id")
            label = f"switch '{sid}'" if isinstance(sid, str) and sid else f"[[switches]] entry {n}"
            entry = Entry(self.problems, label, table, keys)
            entry.check_keys()
            switch_id = entry.text("id", required=True, example='"ktw-sw1"')
            self._check_id(entry, switch_id)
            out.append(
                Switch(
                    id=switch_id,
                    site=self._site_ref(entry, sites, "switch"),
                    management_address=entry.address("management_address", required=True),
                    snmp=self._profile(entry, profiles),
                    sflow_agent_address=entry.address("sflow_agent_address"),
                    sampling_rate=entry.integer(
                        "sampling_rate", default=16384, minimum=1, example="16384", what="1 in n packets"
                    ),
                )
            )
        self._duplicates("switch", [s.id for s in out], "give each [[switches]] entry its own id")
        agents: dict[str, str] = {}
        for s in out:
            agent = s.sflow_agent_address or s.management_address
            if agent and agent in agents and s.id != agents[agent]:
                self.problems.add(
                    f"switch '{s.id}' has sflow agent address {agent}, "
                    f"already used by switch '{agents[agent]}'; "
                    "each switch needs its own sflow_agent_address"
                )
            agents.setdefault(agent, s.id)
        return tuple(out)

    def _members(self) -> tuple[Member, ...]:
        keys = ("id", "asn", "name", "billing_entity", "joined", "left", "kind", "prefixes")
        out: list[Member] = []
        for n, table in enumerate(self._tables("members"), 1):
            mid = table.get("id")
            label = f"member '{mid}'" if isinstance(mid, str) and mid else f"[[members]] entry {n}"
            entry = Entry(self.problems, label, table, keys)
            entry.check_keys()
            member_id = entry.text("id", required=True, example='"AS64500"')
            self._check_id(entry, member_id)
            asn = entry.integer("asn", required=True, minimum=1, maximum=2**32 - 1, example="64500")
            if asn and re.fullmatch(r"AS\d+", member_id) and int(member_id[2:]) != asn:
                entry.fail(
                    f'has asn = {asn}, which does not match its id; write id = "AS{asn}" or fix the asn'
                )
            joined = entry.date("joined", required=True)
            left = entry.date("left")
            if joined and left and left < joined:
                entry.fail(f"left ({left}) before it joined ({joined}); fix one of the dates")
            out.append(
                Member(
                    id=member_id,
                    asn=asn,
                    name=entry.text("name", required=True, example='"Eyeball Net"'),
                    billing_entity=entry.text(
                        "billing_entity", required=True, example='"Eyeball Net Sp. z o.o."'
                    ),
                    joined=joined or dt.date(1970, 1, 1),
                    left=left,
                    kind=entry.choice("kind", get_args(MemberKind), default="other", what="member kind"),  # type: ignore[arg-type]
                    prefixes=entry.prefixes("prefixes"),
                )
            )
        self._duplicates("member", [m.id for m in out], "give each [[members]] entry its own id")
        by_asn: dict[int, str] = {}
        for m in out:
            if m.asn and m.asn in by_asn and by_asn[m.asn] != m.id:
                self.problems.add(
                    f"member '{m.id}' has asn {m.asn}, already used by member '{by_asn[m.asn]}'; "
                    "one member per asn (list its ports under one member)"
                )
            by_asn.setdefault(m.asn, m.id)
        return tuple(out)

    def _ports(self, switches: tuple[Switch, ...], members: tuple[Member, ...]) -> tuple[MemberPort, ...]:
        keys = (
            "switch",
            "interface",
            "ifindex",
            "speed_mbps",
            "vlan",
            "member",
            "macs",
            "ipv4",
            "ipv6",
            "connected",
            "disconnected",
            "bundle",
            "counter_bits",
        )
        hints = {
            "id": "the port id is derived as '<switch>:<interface>'; remove id and set switch and interface"
        }
        switch_ids = {s.id for s in switches}
        member_ids = {m.id for m in members}
        out: list[MemberPort] = []
        for n, table in enumerate(self._tables("ports"), 1):
            sw, ifname = table.get("switch"), table.get("interface")
            named = isinstance(sw, str) and isinstance(ifname, str) and sw and ifname
            label = f"port '{sw}:{ifname}'" if named else f"[[ports]] entry {n}"
            entry = Entry(self.problems, label, table, keys)
            entry.check_keys(hints)
            switch = entry.text("switch", required=True, example='"ktw-sw1"')
            interface = entry.text("interface", required=True, example='"et-0/0/1"')
            if switch and switch not in switch_ids:
                entry.fail(
                    f"is on switch '{switch}', which is not in [[switches]]; add the switch or fix the port"
                )
            member = entry.text("member", required=True, example='"AS64500"')
            if member and member not in member_ids:
                entry.fail(
                    f"names member '{member}', which is not in [[members]]; add the member or fix the port"
                )
            connected = entry.date("connected", default=dt.date(1970, 1, 1))
            disconnected = entry.date("disconnected")
            if connected and disconnected and disconnected < connected:
                entry.fail(
                    f"was disconnected ({disconnected}) before it was connected ({connected}); "
                    "fix one of the dates"
                )
            bits = entry.integer("counter_bits", default=64, example="64")
            if bits not in (32, 64):
                entry.fail(f"has counter_bits = {bits}; use 32 or 64")
                bits = 64
            out.append(
                MemberPort(
                    id=f"{switch}:{interface}",
                    switch=switch,
                    interface=interface,
                    ifindex=entry.integer(
                        "ifindex",
                        required=True,
                        minimum=1,
                        maximum=_IFINDEX_MAX,
                        example="1001",
                        what="snmp ifIndex",
                    ),
                    speed_mbps=entry.integer("speed_mbps", required=True, minimum=1, example="10000"),
                    vlan=entry.integer("vlan", required=True, minimum=1, maximum=4094, example="100"),
                    member=member,
                    macs=entry.macs("macs"),
                    ipv4=entry.addresses("ipv4", 4, '"192.0.2.10"'),
                    ipv6=entry.addresses("ipv6", 6, '"2001:db8::10"'),
                    connected=connected or dt.date(1970, 1, 1),
                    disconnected=disconnected,
                    bundle=entry.text("bundle"),
                    counter_bits=bits,  # type: ignore[arg-type]
                )
            )
        self._duplicates(
            "port", [p.id for p in out if p.switch and p.interface], "remove the duplicate [[ports]] entry"
        )
        self._check_ifindexes("switch", [(p.switch, p.ifindex, p.id) for p in out])
        self._check_macs(out)
        self._check_ips(out)
        return tuple(out)

    def _check_ifindexes(self, kind: str, rows: list[tuple[str, int, str]]) -> None:
        seen: dict[tuple[str, int], str] = {}
        for device, ifindex, pid in rows:
            if not device or ifindex <= 0:
                continue
            other = seen.get((device, ifindex))
            if other is not None and other != pid:
                self.problems.add(
                    f"port '{pid}' has ifindex {ifindex}, "
                    f"already used by port '{other}' on {kind} '{device}'; "
                    "each interface of a device has its own ifindex"
                )
            seen.setdefault((device, ifindex), pid)

    def _check_macs(self, ports: list[MemberPort]) -> None:
        """A MAC identifies one member: two members never share one. Within one member, the same
        MAC on two ports of one VLAN is accepted only when both ports are links of the same bundle
        (a LAG sends from one router MAC over all its links) or when their service periods do not
        overlap (a port upgrade keeps the router); otherwise a sample could not be placed on a port."""
        by_mac: dict[str, list[MemberPort]] = defaultdict(list)
        for p in ports:
            for mac in p.macs:
                by_mac[mac].append(p)
        for mac, holders in by_mac.items():
            for i, a in enumerate(holders):
                for b in holders[:i]:
                    if a.member and b.member and a.member != b.member:
                        self.problems.add(
                            f"mac {mac} is on port '{b.id}' of member '{b.member}' and on port '{a.id}' of "
                            f"member '{a.member}'; a mac identifies one member: "
                            "fix the mac on one of the ports"
                        )
                    elif a.vlan == b.vlan and not (a.bundle and a.bundle == b.bundle) and _overlap(a, b):
                        self.problems.add(
                            f"mac {mac} is on ports '{b.id}' and '{a.id}' "
                            f"of member '{a.member}' in vlan {a.vlan} "
                            "at the same time; give both ports the same bundle if they are one lag, "
                            "or set disconnected on the old port"
                        )

    def _check_ips(self, ports: list[MemberPort]) -> None:
        seen: dict[str, MemberPort] = {}
        for p in ports:
            for ip in p.ipv4 + p.ipv6:
                other = seen.get(ip)
                if other is not None and other.member != p.member and _overlap(p, other):
                    self.problems.add(
                        f"ip address {ip} is on port '{other.id}' of member '{other.member}' and on port "
                        f"'{p.id}' of member '{p.member}'; an exchange address belongs to one member"
                    )
                seen.setdefault(ip, p)

    def _border_routers(
        self, sites: tuple[Site, ...], profiles: Mapping[str, SnmpSettings], switches: tuple[Switch, ...]
    ) -> tuple[BorderRouter, ...]:
        keys = (
            "id",
            "site",
            "management_address",
            "flow_exporter_address",
            "snmp",
            "sampling_rate_override",
            "ports",
        )
        out: list[BorderRouter] = []
        switch_ids = {s.id for s in switches}
        for n, table in enumerate(self._tables("border_routers"), 1):
            rid = table.get("id")
            label = (
                f"border router '{rid}'" if isinstance(rid, str) and rid else f"[[border_routers]] entry {n}"
            )
            entry = Entry(self.problems, label, table, keys)
            entry.check_keys()
            router_id = entry.text("id", required=True, example='"ktw-br1"')
            self._check_id(entry, router_id)
            if router_id in switch_ids:
                entry.fail(
                    f"has id '{router_id}', which is also a switch id; port ids would clash, rename one"
                )
            override = None
            if "sampling_rate_override" in table:
                override = entry.integer("sampling_rate_override", minimum=1, example="1000") or None
            out.append(
                BorderRouter(
                    id=router_id,
                    site=self._site_ref(entry, sites, "border router"),
                    management_address=entry.address("management_address", required=True),
                    flow_exporter_address=entry.address("flow_exporter_address", required=True),
                    snmp=self._profile(entry, profiles),
                    ports=self._router_ports(router_id, table.get("ports", []), entry),
                    sampling_rate_override=override,
                )
            )
        self._duplicates(
            "border router", [r.id for r in out], "give each [[border_routers]] entry its own id"
        )
        exporters: dict[str, str] = {}
        for r in out:
            addr = r.flow_exporter_address
            if addr and addr in exporters:
                self.problems.add(
                    f"border router '{r.id}' has flow_exporter_address {addr}, already used by border router "
                    f"'{exporters[addr]}'; each router needs its own exporter address"
                )
            exporters.setdefault(addr, r.id)
        self._duplicates(
            "border router port",
            [p.id for r in out for p in r.ports if p.interface],
            "remove the duplicate entry",
        )
        self._check_ifindexes("border router", [(r.id, p.ifindex, p.id) for r in out for p in r.ports])
        return tuple(out)

    def _router_ports(self, router_id: str, tables: object, parent: Entry) -> tuple[BorderRouterPort, ...]:
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            parent.fail(
                "has ports that are not [[border_routers.ports]] entries; write each port as such an entry"
            )
            return ()
        out: list[BorderRouterPort] = []
        for n, table in enumerate(tables, 1):
            ifname = table.get("interface")
            named = isinstance(ifname, str) and ifname
            label = (
                f"border router port '{router_id}:{ifname}'"
                if named
                else f"border router '{router_id}' port {n}"
            )
            entry = Entry(self.problems, label, table, ("interface", "ifindex", "speed_mbps"))
            entry.check_keys()
            interface = entry.text("interface", required=True, example='"xe-0/0/0"')
            out.append(
                BorderRouterPort(
                    id=f"{router_id}:{interface}",
                    router=router_id,
                    interface=interface,
                    ifindex=entry.integer(
                        "ifindex",
                        required=True,
                        minimum=1,
                        maximum=_IFINDEX_MAX,
                        example="501",
                        what="snmp ifIndex",
                    ),
                    speed_mbps=entry.integer("speed_mbps", required=True, minimum=1, example="100000"),
                )
            )
        return tuple(out)

    def _contracts(self, routers: tuple[BorderRouter, ...]) -> tuple[TransitContract, ...]:
        keys = (
            "id",
            "provider",
            "ports",
            "commit_mbps",
            "price_per_mbps",
            "burst_price_per_mbps",
            "currency",
            "percentile",
            "direction_rule",
            "billing_timezone",
            "gap_policy",
            "term_start",
            "term_end",
        )
        port_ids = {p.id for r in routers for p in r.ports}
        out: list[TransitContract] = []
        for n, table in enumerate(self._tables("transit_contracts"), 1):
            cid = table.get("id")
            label = (
                f"transit contract '{cid}'"
                if isinstance(cid, str) and cid
                else f"[[transit_contracts]] entry {n}"
            )
            entry = Entry(self.problems, label, table, keys)
            entry.check_keys()
            contract_id = entry.text("id", required=True, example='"arelion-2026"')
            self._check_id(entry, contract_id)
            ports = entry.string_list("ports", required=True, example='["ktw-br1:xe-0/0/0"]')
            if "ports" in table and not ports:
                entry.fail(
                    "has no ports; list the border-router ports it is billed on, "
                    'e.g. ports = ["ktw-br1:xe-0/0/0"]'
                )
            for pid in ports:
                if pid not in port_ids:
                    entry.fail(
                        f"names port '{pid}', which is not a [[border_routers.ports]] entry "
                        "('<router>:<interface>'); add the port to its border router or fix the contract"
                    )
            if len(set(ports)) != len(ports):
                entry.fail("lists a port twice; each port once (the bill sums the ports per interval)")
            start = entry.date("term_start", default=dt.date(1970, 1, 1))
            end = entry.date("term_end")
            if start and end and end < start:
                entry.fail(f"ends ({end}) before it starts ({start}); fix term_start or term_end")
            out.append(
                TransitContract(
                    id=contract_id,
                    provider=entry.text("provider", required=True, example='"Arelion"'),
                    ports=tuple(ports),
                    commit_mbps=entry.decimal("commit_mbps", required=True, positive=True, example='"20000"')
                    or Decimal(0),
                    price_per_mbps=entry.decimal("price_per_mbps", required=True, example='"0.80"')
                    or Decimal(0),
                    burst_price_per_mbps=entry.decimal(
                        "burst_price_per_mbps", required=True, example='"1.00"'
                    )
                    or Decimal(0),
                    currency=self._currency(entry, None),
                    percentile=entry.integer("percentile", default=95, minimum=1, maximum=100, example="95"),
                    direction_rule=entry.choice(  # type: ignore[arg-type]
                        "direction_rule", get_args(DirectionRule), default="max", what="direction_rule"
                    ),
                    billing_timezone=self._timezone(entry, "billing_timezone", "Europe/Warsaw"),
                    gap_policy=entry.choice(  # type: ignore[arg-type]
                        "gap_policy", get_args(GapPolicy), default="exclude", what="gap_policy"
                    ),
                    term_start=start or dt.date(1970, 1, 1),
                    term_end=end,
                )
            )
        self._duplicates("transit contract", [c.id for c in out], "give each contract its own id")
        for i, a in enumerate(out):
            for b in out[:i]:
                shared = sorted(set(a.ports) & set(b.ports))
                if shared and _terms_overlap(a, b):
                    self.problems.add(
                        f"transit contracts '{b.id}' and '{a.id}' both bill port '{shared[0]}' "
                        "in overlapping terms; "
                        "a port is billed by one contract at a time: fix the ports or the terms"
                    )
        return tuple(out)

    def _port_fees(self, ports: tuple[MemberPort, ...]) -> tuple[PortFee, ...]:
        out: list[PortFee] = []
        for n, table in enumerate(self._tables("port_fees"), 1):
            speed_raw = table.get("speed_mbps")
            label = (
                f"port fee for {speed_raw} mbps" if isinstance(speed_raw, int) else f"[[port_fees]] entry {n}"
            )
            entry = Entry(self.problems, label, table, ("speed_mbps", "monthly_fee"))
            entry.check_keys()
            speed = entry.integer("speed_mbps", required=True, minimum=1, example="10000")
            fee = entry.decimal("monthly_fee", required=True, example='"900.00"')
            if speed:
                out.append(PortFee(speed_mbps=speed, monthly_fee=fee if fee is not None else Decimal(0)))
        self._duplicates("port fee for speed", [str(f.speed_mbps) for f in out], "keep one fee per speed")
        priced = {f.speed_mbps for f in out}
        missing: dict[int, list[str]] = defaultdict(list)
        for p in ports:
            if p.speed_mbps > 0 and p.speed_mbps not in priced:
                missing[p.speed_mbps].append(p.id)
        for speed, ids in sorted(missing.items()):
            more = f" and {len(ids) - 1} more" if len(ids) > 1 else ""
            self.problems.add(
                f"port '{ids[0]}'{more} runs at {speed} mbps, which has no [[port_fees]] entry; "
                f'add [[port_fees]] speed_mbps = {speed} monthly_fee = "..."'
            )
        return tuple(out)

    def _one_off_fees(self, members: tuple[Member, ...]) -> tuple[OneOffFee, ...]:
        member_ids = {m.id for m in members}
        out: list[OneOffFee] = []
        for n, table in enumerate(self._tables("one_off_fees"), 1):
            entry = Entry(
                self.problems,
                f"[[one_off_fees]] entry {n}",
                table,
                ("member", "month", "description", "amount"),
            )
            entry.check_keys()
            member = entry.text("member", required=True, example='"AS64500"')
            if member and member not in member_ids:
                entry.fail(
                    f"names member '{member}', which is not in [[members]]; add the member or fix the fee"
                )
            month = entry.text("month", required=True, example='"2026-10"')
            if month and not _MONTH.match(month):
                entry.fail(f'has month = "{month}"; write the billing month as "YYYY-MM", e.g. "2026-10"')
            amount = entry.decimal("amount", required=True, non_negative=False, example='"250.00"')
            out.append(
                OneOffFee(
                    member=member,
                    month=month,
                    description=entry.text(
                        "description", required=True, example='"cross-connect installation"'
                    ),
                    amount=amount if amount is not None else Decimal(0),
                )
            )
        return tuple(out)


def _overlap(a: MemberPort, b: MemberPort) -> bool:
    """Whether two ports served on a common day (``disconnected`` is the first day out of service)."""
    a_end = a.disconnected or dt.date.max
    b_end = b.disconnected or dt.date.max
    return a.connected < b_end and b.connected < a_end


def _terms_overlap(a: TransitContract, b: TransitContract) -> bool:
    a_end = a.term_end or dt.date.max
    b_end = b.term_end or dt.date.max
    return a.term_start <= b_end and b.term_start <= a_end
