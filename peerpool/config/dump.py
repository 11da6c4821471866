"""Write an :class:`Exchange` back as ``exchange.toml`` text, in the format the loader reads.

The simulator and ``peerpool config from-ixf`` produce configuration files with this, so
``loads_exchange(dump_exchange(x), source=x.source) == x`` holds for every valid exchange
(tests check it). Written by hand because the standard library reads TOML but does not
write it, and the format is small: strings, integers, dates, decimals as strings, arrays.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

from peerpool.config.model import Exchange, SnmpSettings

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}

Value = str | int | float | Decimal | dt.date | tuple[str, ...] | None


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(value: Value) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not part of the exchange.toml format")
    if isinstance(value, Decimal):
        return toml_string(format(value, "f"))  # money and rates stay exact: written as strings
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eEn") else text + ".0"
    if isinstance(value, dt.datetime):
        raise TypeError("date-times are not part of the exchange.toml format")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_string(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to exchange.toml")


class _Writer:
    def __init__(self, notes: Mapping[str, str]) -> None:
        self.lines: list[str] = []
        self.notes = notes

    def table(self, header: str, rows: Iterable[tuple[str, Value]], note_key: str = "") -> None:
        if self.lines:
            self.lines.append("")
        note = self.notes.get(note_key, "") if note_key else ""
        for line in note.splitlines():
            self.lines.append(f"# {line}".rstrip())
        self.lines.append(header)
        for key, value in rows:
            if value is None:
                continue
            self.lines.append(f"{toml_key(key)} = {toml_value(value)}")


def _profile_names(exchange: Exchange) -> dict[SnmpSettings, str]:
    """A name per distinct SNMP settings: its own ``profile`` when set and free, else a made-up one."""
    names: dict[SnmpSettings, str] = {}
    used: set[str] = set()
    devices = [s.snmp for s in exchange.switches] + [r.snmp for r in exchange.border_routers]
    for settings in devices:
        if settings in names:
            continue
        base = settings.profile or "default"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}-{n}"
        names[settings] = name
        used.add(name)
    return names


def _snmp_rows(s: SnmpSettings) -> list[tuple[str, Value]]:
    rows: list[tuple[str, Value]] = [("version", s.version), ("port", s.port)]
    if s.version == "2c" or s.community_env:
        rows.append(("community_env", s.community_env))
    for key, value in (
        ("user", s.user),
        ("auth_protocol", s.auth_protocol),
        ("auth_key_env", s.auth_key_env),
        ("priv_protocol", s.priv_protocol),
        ("priv_key_env", s.priv_key_env),
    ):
        if value:
            rows.append((key, value))
    rows += [("timeout_s", s.timeout_s), ("retries", s.retries)]
    return rows


def _opt(value: str) -> str | None:
    return value or None


def _opt_tuple(value: tuple[str, ...]) -> tuple[str, ...] | None:
    return value or None


def dump_exchange(exchange: Exchange, *, header: str = "", notes: Mapping[str, str] | None = None) -> str:
    """The TOML text of ``exchange``.

    ``header`` is written first as ``#`` comment lines. ``notes`` adds comment lines before
    single entries, keyed ``site:<id>``, ``switch:<id>``, ``member:<id>``, ``port:<port id>``,
    ``border_router:<id>``, ``transit_contract:<id>``, ``port_fee:<speed_mbps>``; the
    ``from-ixf`` import uses them to mark placeholders the user must replace.
    """
    w = _Writer(notes or {})
    for line in header.splitlines():
        w.lines.append(f"# {line}".rstrip())
    w.table("[exchange]", [("name", exchange.name)])
    b = exchange.billing
    w.table(
        "[billing]",
        [
            ("currency", b.currency),
            ("vat_rate", b.vat_rate),
            ("timezone", b.timezone),
            ("transit_allocation", b.transit_allocation),
            ("member_visibility", b.member_visibility),
        ],
    )
    for site in exchange.sites:
        w.table(
            "[[sites]]", [("id", site.id), ("name", site.name), ("city", _opt(site.city))], f"site:{site.id}"
        )
    profiles = _profile_names(exchange)
    for settings, name in profiles.items():
        w.table(f"[snmp.{toml_key(name)}]", _snmp_rows(settings))
    for sw in exchange.switches:
        w.table(
            "[[switches]]",
            [
                ("id", sw.id),
                ("site", sw.site),
                ("management_address", sw.management_address),
                ("snmp", profiles[sw.snmp]),
                ("sflow_agent_address", _opt(sw.sflow_agent_address)),
                ("sampling_rate", sw.sampling_rate),
            ],
            f"switch:{sw.id}",
        )
    for m in exchange.members:
        w.table(
            "[[members]]",
            [
                ("id", m.id),
                ("asn", m.asn),
                ("name", m.name),
                ("billing_entity", m.billing_entity),
                ("joined", m.joined),
                ("left", m.left),
                ("kind", m.kind),
                ("prefixes", _opt_tuple(m.prefixes)),
            ],
            f"member:{m.id}",
        )
    for p in exchange.ports:
        w.table(
            "[[ports]]",
            [
                ("switch", p.switch),
                ("interface", p.interface),
                ("ifindex", p.ifindex),
                ("speed_mbps", p.speed_mbps),
                ("vlan", p.vlan),
                ("member", p.member),
                ("macs", p.macs),
                ("ipv4", _opt_tuple(p.ipv4)),
                ("ipv6", _opt_tuple(p.ipv6)),
                ("connected", p.connected),
                ("disconnected", p.disconnected),
                ("bundle", _opt(p.bundle)),
                ("counter_bits", p.counter_bits),
            ],
            f"port:{p.id}",
        )
    for r in exchange.border_routers:
        w.table(
            "[[border_routers]]",
            [
                ("id", r.id),
                ("site", r.site),
                ("management_address", r.management_address),
                ("flow_exporter_address", r.flow_exporter_address),
                ("snmp", profiles[r.snmp]),
                ("sampling_rate_override", r.sampling_rate_override),
            ],
            f"border_router:{r.id}",
        )
        for bp in r.ports:
            w.table(
                "[[border_routers.ports]]",
                [("interface", bp.interface), ("ifindex", bp.ifindex), ("speed_mbps", bp.speed_mbps)],
            )
    for c in exchange.transit_contracts:
        w.table(
            "[[transit_contracts]]",
            [
                ("id", c.id),
                ("provider", c.provider),
                ("ports", c.ports),
                ("commit_mbps", c.commit_mbps),
                ("price_per_mbps", c.price_per_mbps),
                ("burst_price_per_mbps", c.burst_price_per_mbps),
                ("currency", c.currency),
                ("percentile", c.percentile),
                ("direction_rule", c.direction_rule),
                ("billing_timezone", c.billing_timezone),
                ("gap_policy", c.gap_policy),
                ("term_start", c.term_start),
                ("term_end", c.term_end),
            ],
            f"transit_contract:{c.id}",
        )
    for fee in exchange.port_fees:
        w.table(
            "[[port_fees]]",
            [("speed_mbps", fee.speed_mbps), ("monthly_fee", fee.monthly_fee)],
            f"port_fee:{fee.speed_mbps}",
        )
    for one in exchange.one_off_fees:
        w.table(
            "[[one_off_fees]]",
            [
                ("member", one.member),
                ("month", one.month),
                ("description", one.description),
                ("amount", one.amount),
            ],
        )
    return "\n".join(w.lines) + "\n"
