"""Members and ports from an IX-F member export (Euro-IX JSON schema 0.6, 0.7 and 1.0).

An exchange already publishes its member list in this format, so importing it saves typing
hundreds of entries by hand. Real exports break the schema in small ways (a null ``url``,
no ``timestamp``, IXP Manager's 0.5 output with nested ``vlan_list`` arrays), so the import
is lenient where nothing downstream depends on the broken part and says exactly what it
let through and where (``member_list[17].url is null``). It refuses what it cannot use
safely: text that is not JSON, no ``member_list``, a member without a usable ``asnum``.

IX-F has no SNMP ifIndex and no interface names. Ports get deterministic placeholders
(interface ``ixf-as<asn>-c<n>``, ifindex ``1000001 + n`` per switch in export order) and
the warnings say so; ``peerpool config from-ixf`` marks them for the user to replace.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema

from peerpool.config.fields import normalise_mac
from peerpool.config.model import Member, MemberPort
from peerpool.errors import ConfigError, InputError

SCHEMA_DIR_ENV = "PEERPOOL_IXF_SCHEMAS"
SUPPORTED_VERSIONS = ("0.6", "0.7", "1.0")
# versions read with the schema of a later one (IXP Manager still writes 0.5)
COMPATIBLE_VERSIONS = {"0.5": "0.6"}
PLACEHOLDER_IFINDEX_BASE = 1_000_000
PLACEHOLDER_SPEED_MBPS = 1000
PLACEHOLDER_VLAN = 1
UNKNOWN_SWITCH = "ixf-switch-unknown"
_NO_DATE = dt.date(
    1, 1, 1
)  # a port whose connection has no connected_since, until the member's date is known
_SWITCH_ID = re.compile(r"[^A-Za-z0-9._/-]+")


@dataclass(frozen=True)
class IxfSwitch:
    """A switch named by the export (``ixp_list[].switch[]``) or invented for an unknown ``switch_id``."""

    id: str  # peerpool switch id (the IX-F name, made safe for port ids)
    ixf_name: str
    ixp_id: int | None
    ixf_switch_id: int | None
    colo: str = ""
    city: str = ""
    country: str = ""
    known: bool = True  # False: placeholder for a switch_id the export does not describe


@dataclass
class IxfImport:
    """What an export yields: members, their ports, the switches they sit on, and every warning."""

    source: str
    version: str
    timestamp: dt.datetime | None
    ixp_names: tuple[str, ...]
    members: tuple[Member, ...]
    ports: tuple[MemberPort, ...]
    switches: tuple[IxfSwitch, ...]
    warnings: list[str] = field(default_factory=list)
    # "member:<id>" / "port:<id>" -> names of fields holding placeholders, not data from the export
    placeholders: dict[str, list[str]] = field(default_factory=dict)


def default_schema_dir() -> Path:
    """``$PEERPOOL_IXF_SCHEMAS``, else the Euro-IX schemas of the shared real-data folder."""
    env = os.environ.get(SCHEMA_DIR_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "realdata" / "ixf" / "euro-ix-json-schemas" / "versions"


def _path(parts: Iterable[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _schema_warning(error: jsonschema.ValidationError) -> str:
    """One schema violation as ``<json path> <what is wrong>``, in lower case."""
    where = _path(error.absolute_path)
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else "a required property"
        prefix = f"{where}." if error.absolute_path else ""
        return f"{prefix}{name} is missing"
    if error.validator == "type":
        if error.instance is None:
            return f"{where} is null"
        wanted = error.validator_value
        got = type(error.instance).__name__.replace("list", "array").replace("dict", "object")
        return f"{where} is {'an' if got[0] in 'aeiou' else 'a'} {got}, not {wanted}"
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"{where} is {error.instance!r}, not one of {allowed}"
    return f"{where}: {error.message.lower()}"


def _load_schema(version: str, schema_dir: Path) -> dict[str, Any] | None:
    """The Euro-IX schema of ``version``, or None when the folder does not have it.

    The schemas are not shipped with peerpool (their repository states no licence); without
    them the import still runs its own structural checks and says validation was skipped.
    """
    path = schema_dir / f"ixp-member-list-{version}.schema.json"
    try:
        schema = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return schema if isinstance(schema, dict) else None


def _date(value: object) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None


def _safe_switch_id(name: str) -> str:
    return _SWITCH_ID.sub("-", name.strip()).strip("-") or "switch"


class _Importer:
    def __init__(self, source: str, data: dict[str, Any], ixp_id: int | None) -> None:
        self.source = source
        self.data = data
        self.ixp_filter = ixp_id
        self.warnings: list[str] = []
        self.fatal: list[str] = []
        self.switches: dict[tuple[int | None, int], IxfSwitch] = {}
        self.unknown_switches: dict[str, IxfSwitch] = {}
        self.placeholder_ifindex: dict[str, int] = defaultdict(int)
        self.placeholders: dict[str, list[str]] = defaultdict(list)

    # --- ixp_list -----------------------------------------------------------------------
    def read_ixps(self) -> tuple[str, ...]:
        ixps = self.data.get("ixp_list")
        if not isinstance(ixps, list):
            self.warnings.append("ixp_list is missing; switches are unknown")
            return ()
        names: list[str] = []
        used: set[str] = set()
        for i, ixp in enumerate(ixps):
            if not isinstance(ixp, dict):
                continue
            ixp_id = ixp.get("ixp_id") if isinstance(ixp.get("ixp_id"), int) else None
            if self.ixp_filter is not None and ixp_id != self.ixp_filter:
                continue
            names.append(str(ixp.get("shortname") or ixp.get("name") or f"ixp {ixp_id}"))
            for j, sw in enumerate(ixp.get("switch") or []):
                if not isinstance(sw, dict) or not isinstance(sw.get("id"), int):
                    self.warnings.append(f"ixp_list[{i}].switch[{j}] has no integer id; skipped")
                    continue
                raw = str(sw.get("name") or f"switch-{sw['id']}")
                sid = _safe_switch_id(raw)
                if sid in used:
                    sid = f"{sid}-{sw['id']}"
                if sid != raw:
                    self.warnings.append(
                        f"ixp_list[{i}].switch[{j}].name {raw!r} is not usable in port ids; "
                        f"switch id set to {sid!r}"
                    )
                used.add(sid)
                self.switches[(ixp_id, sw["id"])] = IxfSwitch(
                    id=sid,
                    ixf_name=raw,
                    ixp_id=ixp_id,
                    ixf_switch_id=sw["id"],
                    colo=str(sw.get("colo") or ""),
                    city=str(sw.get("city") or ""),
                    country=str(sw.get("country") or ""),
                )
        return tuple(names)

    def switch_for(self, ixp_id: int | None, switch_id: object, where: str) -> IxfSwitch:
        """The switch of an if_list entry; a placeholder (said in a warning) when the export lacks it."""
        known = self.switches.get((ixp_id, switch_id)) if isinstance(switch_id, int) else None
        if known is not None and known.known:
            return known
        if isinstance(switch_id, int):
            sid = f"ixf-switch-{switch_id}"
            self.warnings.append(
                f"{where}.switch_id {switch_id} is not in ixp_list[].switch; placeholder switch {sid!r}"
            )
        else:
            sid = UNKNOWN_SWITCH
            if where:
                self.warnings.append(f"{where}.switch_id is missing; placeholder switch {sid!r}")
        if sid not in self.unknown_switches:
            ixf_id = switch_id if isinstance(switch_id, int) else None
            self.unknown_switches[sid] = IxfSwitch(
                id=sid, ixf_name="", ixp_id=ixp_id, ixf_switch_id=ixf_id, known=False
            )
        return self.unknown_switches[sid]

    # --- member_list ----------------------------------------------------------------
    def read_members(self, fallback_joined: dt.date) -> tuple[list[Member], list[MemberPort]]:
        raw_members = self.data.get("member_list")
        members: dict[int, Member] = {}
        ports: list[MemberPort] = []
        assert isinstance(raw_members, list)
        for i, m in enumerate(raw_members):
            where = f"member_list[{i}]"
            if not isinstance(m, dict):
                self.fatal.append(f"{where} is not an object")
                continue
            asn = m.get("asnum")
            if isinstance(asn, bool) or not isinstance(asn, int) or not 1 <= asn <= 2**32 - 1:
                shown = "missing" if asn is None else f"{asn!r}, not an as number"
                self.fatal.append(f"{where}.asnum is {shown}; every member needs its asn")
                continue
            connections = m.get("connection_list")
            if not isinstance(connections, list):
                self.warnings.append(f"{where}.connection_list is missing; member imported without ports")
                connections = []
            if self.ixp_filter is not None and not any(
                isinstance(c, dict) and c.get("ixp_id") == self.ixp_filter for c in connections
            ):
                continue  # a member of another IXP of this export
            member_ports = self.read_connections(asn, connections, where)
            name = m.get("name")
            marks = self.placeholders[f"member:AS{asn}"]
            marks.append("billing_entity")
            if not isinstance(name, str) or not name.strip():
                name = f"AS{asn}"
                marks.append("name")
                self.warnings.append(f"{where}.name is missing; member named {name!r}")
            joined = _date(m.get("member_since"))
            if joined is None:
                if "member_since" in m:
                    self.warnings.append(f"{where}.member_since {m['member_since']!r} is not a date-time")
                since = [p.connected for p in member_ports if p.connected != _NO_DATE]
                joined = min(since) if since else fallback_joined
                marks.append("joined")
                source = "its earliest connected_since" if since else f"{fallback_joined}"
                self.warnings.append(f"{where}.member_since is missing; joined set to {source}")
            member = Member(
                id=f"AS{asn}",
                asn=asn,
                name=name.strip(),
                billing_entity=name.strip(),
                joined=joined,
                kind="other",
            )
            if asn in members:
                self.warnings.append(f"{where}.asnum {asn} appears twice; its connections are merged")
                first = members[asn]
                member = first if first.joined <= member.joined else member
            members[asn] = member
            ports.extend(p if p.connected != _NO_DATE else replace(p, connected=joined) for p in member_ports)
        return list(members.values()), ports

    def read_connections(self, asn: int, connections: list[Any], where_member: str) -> list[MemberPort]:
        out: list[MemberPort] = []
        for ci, conn in enumerate(connections):
            where = f"{where_member}.connection_list[{ci}]"
            if not isinstance(conn, dict):
                self.warnings.append(f"{where} is not an object; skipped")
                continue
            ixp_id = conn.get("ixp_id") if isinstance(conn.get("ixp_id"), int) else None
            if self.ixp_filter is not None and ixp_id != self.ixp_filter:
                continue
            state = conn.get("state")
            if isinstance(state, str) and state != "active":
                self.warnings.append(f"{where}.state is {state!r}; imported as a connected port, check it")
            links = [x for x in (conn.get("if_list") or []) if isinstance(x, dict)]
            vlans = self.read_vlans(conn.get("vlan_list"), where)
            if not links and not vlans:
                self.warnings.append(f"{where} has no if_list and no vlan_list; no port created")
                continue
            if not links:
                self.warnings.append(
                    f"{where}.if_list is missing; one port on switch {UNKNOWN_SWITCH!r} "
                    f"at a placeholder {PLACEHOLDER_SPEED_MBPS} mbps"
                )
                links = [{}]
            if not vlans:
                self.warnings.append(f"{where}.vlan_list is missing; port has no vlan, mac or address")
                vlans = {None: _Vlan()}
            connected = _date(conn.get("connected_since"))
            for li, link in enumerate(links):
                lwhere = f"{where}.if_list[{li}]"
                switch = self.switch_for(ixp_id, link.get("switch_id"), lwhere if link else "")
                speed = link.get("if_speed")
                marks = ["interface", "ifindex"] + ([] if switch.known else ["switch"])
                if connected is None:
                    marks.append("connected")
                if isinstance(speed, bool) or not isinstance(speed, int) or speed <= 0:
                    marks.append("speed_mbps")
                    if link:
                        self.warnings.append(
                            f"{lwhere}.if_speed is {speed!r}; placeholder {PLACEHOLDER_SPEED_MBPS} mbps"
                        )
                    speed = PLACEHOLDER_SPEED_MBPS
                for vlan_key, vlan in vlans.items():
                    interface = f"ixf-as{asn}-c{ci + 1}"
                    if len(links) > 1:
                        interface += f"-l{li + 1}"
                    if len(vlans) > 1:
                        interface += f".{vlan_key}"
                    tag = (
                        vlan_key if isinstance(vlan_key, int) and 1 <= vlan_key <= 4094 else PLACEHOLDER_VLAN
                    )
                    if tag != vlan_key and vlan_key is not None:
                        self.warnings.append(
                            f"{where}.vlan_list vlan_id {vlan_key} is not an 802.1q tag; "
                            f"vlan set to {PLACEHOLDER_VLAN}, set the real tag"
                        )
                    self.placeholder_ifindex[switch.id] += 1
                    self.placeholders[f"port:{switch.id}:{interface}"] = marks + (
                        ["vlan"] if tag != vlan_key else []
                    )
                    out.append(
                        MemberPort(
                            id=f"{switch.id}:{interface}",
                            switch=switch.id,
                            interface=interface,
                            ifindex=PLACEHOLDER_IFINDEX_BASE + self.placeholder_ifindex[switch.id],
                            speed_mbps=speed,
                            vlan=tag,
                            member=f"AS{asn}",
                            macs=tuple(vlan.macs),
                            ipv4=tuple(vlan.ipv4),
                            ipv6=tuple(vlan.ipv6),
                            connected=connected or _NO_DATE,
                            bundle=f"as{asn}-c{ci + 1}" if len(links) > 1 else "",
                        )
                    )
        return out

    def read_vlans(self, vlan_list: object, where: str) -> dict[int | None, _Vlan]:
        if not isinstance(vlan_list, list):
            return {}
        entries: list[tuple[str, dict[str, Any]]] = []
        for vi, item in enumerate(vlan_list):
            if isinstance(item, list):  # IXP Manager 0.5: an array of vlan entries inside the array
                self.warnings.append(
                    f"{where}.vlan_list[{vi}] is an array inside vlan_list (ixp manager 0.5 output); "
                    "its entries were read as vlan entries"
                )
                entries += [
                    (f"{where}.vlan_list[{vi}][{k}]", x) for k, x in enumerate(item) if isinstance(x, dict)
                ]
            elif isinstance(item, dict):
                entries.append((f"{where}.vlan_list[{vi}]", item))
        vlans: dict[int | None, _Vlan] = {}
        for vwhere, entry in entries:
            vid = entry.get("vlan_id") if isinstance(entry.get("vlan_id"), int) else None
            vlan = vlans.setdefault(vid, _Vlan())
            for family in ("ipv4", "ipv6"):
                detail = entry.get(family)
                if isinstance(detail, dict):
                    self._read_family(vlan, family, detail, f"{vwhere}.{family}")
        return vlans

    def _read_family(self, vlan: _Vlan, family: str, detail: dict[str, Any], where: str) -> None:
        address = detail.get("address")
        if isinstance(address, str) and address:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                self.warnings.append(f"{where}.address {address!r} is not an ip address; skipped")
            else:
                if f"ipv{ip.version}" != family:
                    self.warnings.append(f"{where}.address {address!r} is not an {family} address; skipped")
                else:
                    target = vlan.ipv4 if ip.version == 4 else vlan.ipv6
                    if str(ip) not in target:
                        target.append(str(ip))
        macs = detail.get("mac_addresses")
        if macs is None and "mac_address" in detail:
            macs = detail["mac_address"]
            self.warnings.append(f"{where}.mac_address is not a schema key (mac_addresses); read as such")
        if isinstance(macs, str):
            macs = [macs]
        for mac_text in macs if isinstance(macs, list) else []:
            mac = normalise_mac(mac_text) if isinstance(mac_text, str) else None
            if mac is None or mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
                self.warnings.append(
                    f"{where}.mac_addresses entry {mac_text!r} is not a unicast mac; skipped"
                )
                continue
            if mac not in vlan.macs:
                vlan.macs.append(mac)


@dataclass
class _Vlan:
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)


def _resolve_conflicts(ports: list[MemberPort], warnings: list[str]) -> list[MemberPort]:
    """Drop MACs and addresses that would make ``config check`` refuse the result, saying which.

    A MAC or an address claimed by two members cannot be attributed: it is dropped from both.
    One member's MAC on two ports of one VLAN that are not one bundle is kept on the first port.
    """
    mac_members: dict[str, set[str]] = defaultdict(set)
    ip_members: dict[str, set[str]] = defaultdict(set)
    for p in ports:
        for mac in p.macs:
            mac_members[mac].add(p.member)
        for ip in p.ipv4 + p.ipv6:
            ip_members[ip].add(p.member)
    shared_macs = {m for m, who in mac_members.items() if len(who) > 1}
    shared_ips = {a for a, who in ip_members.items() if len(who) > 1}
    for mac in sorted(shared_macs):
        warnings.append(
            f"mac {mac} is listed for {', '.join(sorted(mac_members[mac]))}; dropped from all of them"
        )
    for ip in sorted(shared_ips):
        warnings.append(
            f"address {ip} is listed for {', '.join(sorted(ip_members[ip]))}; dropped from all of them"
        )
    seen: dict[tuple[str, int], MemberPort] = {}
    out: list[MemberPort] = []
    for p in ports:
        macs: list[str] = []
        for mac in p.macs:
            if mac in shared_macs:
                continue
            first = seen.get((mac, p.vlan))
            if first is not None and not (first.bundle and first.bundle == p.bundle):
                warnings.append(
                    f"mac {mac} of {p.member} is on ports '{first.id}' and '{p.id}' in vlan {p.vlan}; "
                    f"kept on '{first.id}' only (give both ports one bundle if they are one lag)"
                )
                continue
            seen.setdefault((mac, p.vlan), p)
            macs.append(mac)
        out.append(
            replace(
                p,
                macs=tuple(macs),
                ipv4=tuple(a for a in p.ipv4 if a not in shared_ips),
                ipv6=tuple(a for a in p.ipv6 if a not in shared_ips),
            )
        )
    return out


def exchange_members_from_ixf(
    path: str | Path, *, ixp_id: int | None = None, schema_dir: Path | None = None
) -> IxfImport:
    """Read an IX-F member export into members, ports and switches, with warnings.

    ``ixp_id`` keeps one IXP of a multi-IXP export. Raises :class:`InputError` when the file is
    missing or not JSON and :class:`ConfigError` listing every unusable entry when it cannot be
    imported safely.
    """
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{file}: ix-f export not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: cannot read the ix-f export ({exc}); check the file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{file}: not json ({exc.msg.lower()} at line {exc.lineno}, column {exc.colno}); "
            "give an ix-f member export (.json)"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level is not an object; give an ix-f member export")
    if not isinstance(data.get("member_list"), list):
        raise ConfigError(
            f"{file}: no member_list array; this is not an ix-f member export (or an empty one)"
        )
    version = data.get("version")
    if not isinstance(version, str):
        raise ConfigError(f'{file}: no version; an ix-f export declares "version" (0.6, 0.7 or 1.0)')
    warnings: list[str] = []
    if version in SUPPORTED_VERSIONS:
        schema_version = version
    elif version in COMPATIBLE_VERSIONS:
        schema_version = COMPATIBLE_VERSIONS[version]
        warnings.append(f"version {version} has no published schema; checked against {schema_version}")
    else:
        raise ConfigError(
            f"{file}: ix-f version {version!r} is not supported; supported are "
            f"{', '.join(SUPPORTED_VERSIONS)} (and 0.5 read as 0.6)"
        )
    folder = schema_dir or default_schema_dir()
    schema = _load_schema(schema_version, folder)
    if schema is None:
        warnings.append(
            f"schema validation skipped: {folder}/ixp-member-list-{schema_version}.schema.json not found "
            f"(set {SCHEMA_DIR_ENV} to the folder of the euro-ix schemas)"
        )
    else:
        validator_cls = jsonschema.validators.validator_for(schema)
        errors = validator_cls(schema).iter_errors(data)
        ordered = sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
        warnings += [_schema_warning(e) for e in ordered]

    timestamp: dt.datetime | None = None
    if isinstance(data.get("timestamp"), str):
        try:
            timestamp = dt.datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
        except ValueError:
            warnings.append(f"timestamp {data['timestamp']!r} is not a date-time")
    importer = _Importer(str(file), data, ixp_id)
    ixp_names = importer.read_ixps()
    fallback = timestamp.date() if timestamp else dt.date(1970, 1, 1)
    members, ports = importer.read_members(fallback)
    if importer.fatal:
        count = len(importer.fatal)
        raise ConfigError(
            f"{file}: {count} member entr{'ies' if count != 1 else 'y'} cannot be imported; fix the export:\n"
            + "\n".join(f"{file}: {msg}" for msg in importer.fatal)
        )
    warnings += importer.warnings
    ports = _resolve_conflicts(ports, warnings)
    if any(p.ifindex > PLACEHOLDER_IFINDEX_BASE for p in ports):
        warnings.append(
            f"ix-f has no ifindex or interface names: {len(ports)} ports got placeholder interfaces "
            f"'ixf-as<asn>-c<n>' and ifindex {PLACEHOLDER_IFINDEX_BASE + 1}.. per switch; replace them"
        )
    used = {p.switch for p in ports}
    switches = tuple(importer.switches.values()) + tuple(
        s for s in importer.unknown_switches.values() if s.id in used
    )
    return IxfImport(
        source=str(file),
        version=version,
        timestamp=timestamp,
        ixp_names=ixp_names,
        members=tuple(members),
        ports=tuple(ports),
        switches=switches,
        warnings=warnings,
        placeholders={k: v for k, v in importer.placeholders.items() if v},
    )
