"""``peerpool config``: show, check and import the exchange configuration.

Thin commands over :mod:`peerpool.config.load` and :mod:`peerpool.config.ixf`. Nothing here
prints a secret: SNMP settings only name environment variables, and ``show`` says whether
each is set, never its value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import click

from peerpool.config.dump import dump_exchange
from peerpool.config.ixf import exchange_members_from_ixf
from peerpool.config.ixf_exchange import exchange_from_ixf
from peerpool.config.load import ConfigProblems, load_exchange, loads_exchange
from peerpool.config.model import Exchange, SnmpSettings
from peerpool.errors import InputError, PeerpoolError

_ENV_FIELDS = ("community_env", "auth_key_env", "priv_key_env")


def _fail(exc: PeerpoolError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _load(path: Path | None) -> Exchange:
    try:
        return load_exchange(path)
    except PeerpoolError as exc:
        _fail(exc)


@click.group()
def config() -> None:
    """Show, check and import the exchange configuration (exchange.toml).

    Commands that take an optional PATH read $PEERPOOL_CONFIG when it is not given.
    """


# --- show ---------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _snmp_json(s: SnmpSettings) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(dataclasses.asdict(s))
    for key in _ENV_FIELDS:
        name = getattr(s, key)
        if name:
            out[key + "_is_set"] = bool(os.environ.get(name))
    return out


def exchange_as_json(ex: Exchange) -> dict[str, Any]:
    """The effective configuration as plain JSON values (money as strings, dates ISO)."""
    out: dict[str, Any] = {"source": ex.source, "name": ex.name}
    out["billing"] = _jsonable(dataclasses.asdict(ex.billing))
    out["sites"] = [_jsonable(dataclasses.asdict(s)) for s in ex.sites]
    out["switches"] = []
    for sw in ex.switches:
        row = _jsonable({f.name: getattr(sw, f.name) for f in dataclasses.fields(sw) if f.name != "snmp"})
        row["sflow_agent_address_effective"] = sw.sflow_agent_address or sw.management_address
        row["snmp"] = _snmp_json(sw.snmp)
        out["switches"].append(row)
    out["members"] = [_jsonable(dataclasses.asdict(m)) for m in ex.members]
    out["ports"] = [_jsonable(dataclasses.asdict(p)) for p in ex.ports]
    out["border_routers"] = []
    for r in ex.border_routers:
        row = _jsonable(
            {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name not in ("snmp", "ports")}
        )
        row["snmp"] = _snmp_json(r.snmp)
        row["ports"] = [_jsonable(dataclasses.asdict(p)) for p in r.ports]
        out["border_routers"].append(row)
    out["transit_contracts"] = [_jsonable(dataclasses.asdict(c)) for c in ex.transit_contracts]
    out["port_fees"] = [_jsonable(dataclasses.asdict(f)) for f in ex.port_fees]
    out["one_off_fees"] = [_jsonable(dataclasses.asdict(f)) for f in ex.one_off_fees]
    return out


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Iterator[str]:
    """Aligned plain-text columns: stable to read, to grep and to test."""
    yield ""
    yield f"{title} ({len(rows)})"
    if not rows:
        return
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, r in enumerate(cells):
        yield "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        if n == 0:
            yield "  " + "  ".join("-" * w for w in widths)


def _env_state(s: SnmpSettings) -> str:
    parts = []
    for key in _ENV_FIELDS:
        name = getattr(s, key)
        if name:
            parts.append(f"{name} ({'set' if os.environ.get(name) else 'NOT SET'})")
    return ", ".join(parts) or "-"


def _snmp_label(s: SnmpSettings) -> str:
    auth = f" {s.auth_protocol}/{s.priv_protocol or '-'}" if s.version == "3" else ""
    return f"v{s.version}{auth}, port {s.port}"


def render_exchange(ex: Exchange) -> str:
    b = ex.billing
    lines = [
        f"exchange: {ex.name}   (from {ex.source or '-'})",
        f"billing: currency {b.currency}, vat {b.vat_rate}, time zone {b.timezone}, "
        f"transit allocation {b.transit_allocation}, member visibility {b.member_visibility}",
    ]
    lines += _table("sites", ("id", "name", "city"), [(s.id, s.name, s.city) for s in ex.sites])
    profiles: dict[str, SnmpSettings] = {}
    for s in [sw.snmp for sw in ex.switches] + [r.snmp for r in ex.border_routers]:
        profiles.setdefault(s.profile or "-", s)
    lines += _table(
        "snmp profiles (secrets come from these environment variables)",
        ("profile", "settings", "timeout_s", "retries", "environment"),
        [(name, _snmp_label(s), s.timeout_s, s.retries, _env_state(s)) for name, s in profiles.items()],
    )
    lines += _table(
        "switches",
        ("id", "site", "management", "sflow agent", "sampling", "snmp"),
        [
            (
                sw.id,
                sw.site,
                sw.management_address,
                sw.sflow_agent_address or f"{sw.management_address} (management)",
                f"1:{sw.sampling_rate}",
                sw.snmp.profile or "-",
            )
            for sw in ex.switches
        ],
    )
    lines += _table(
        "members",
        ("id", "asn", "name", "billing entity", "kind", "joined", "left", "prefixes"),
        [
            (m.id, m.asn, m.name, m.billing_entity, m.kind, m.joined, m.left or "", len(m.prefixes))
            for m in ex.members
        ],
    )
    lines += _table(
        "ports",
        (
            "id",
            "member",
            "ifindex",
            "mbps",
            "vlan",
            "macs",
            "ipv4",
            "ipv6",
            "connected",
            "disconnected",
            "bundle",
        ),
        [
            (
                p.id,
                p.member,
                p.ifindex,
                p.speed_mbps,
                p.vlan,
                " ".join(p.macs),
                " ".join(p.ipv4),
                " ".join(p.ipv6),
                p.connected,
                p.disconnected or "",
                p.bundle,
            )
            for p in ex.ports
        ],
    )
    lines += _table(
        "border routers",
        ("id", "site", "management", "flow exporter", "snmp", "ports (ifindex, mbps)"),
        [
            (
                r.id,
                r.site,
                r.management_address,
                r.flow_exporter_address,
                r.snmp.profile or "-",
                ", ".join(f"{p.id} ({p.ifindex}, {p.speed_mbps})" for p in r.ports),
            )
            for r in ex.border_routers
        ],
    )
    lines += _table(
        "transit contracts",
        ("id", "provider", "ports", "commit mbps", "price/mbps", "burst/mbps", "billing", "term"),
        [
            (
                c.id,
                c.provider,
                " ".join(c.ports),
                c.commit_mbps,
                f"{c.price_per_mbps} {c.currency}",
                f"{c.burst_price_per_mbps} {c.currency}",
                f"p{c.percentile} {c.direction_rule}, {c.gap_policy} gaps, {c.billing_timezone}",
                f"{c.term_start} .. {c.term_end or 'open'}",
            )
            for c in ex.transit_contracts
        ],
    )
    lines += _table(
        "port fees (monthly, net)",
        ("speed mbps", "fee"),
        [(f.speed_mbps, f"{f.monthly_fee} {b.currency}") for f in ex.port_fees],
    )
    lines += _table(
        "one-off fees",
        ("member", "month", "amount", "description"),
        [(f.member, f.month, f"{f.amount} {b.currency}", f.description) for f in ex.one_off_fees],
    )
    return "\n".join(lines) + "\n"


@config.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(path: Path | None, as_json: bool) -> None:
    """Print the effective configuration (never secrets: only which variables are set)."""
    ex = _load(path)
    if as_json:
        click.echo(json.dumps(exchange_as_json(ex), indent=2))
    else:
        click.echo(render_exchange(ex), nl=False)


# --- check --------------------------------------------------------------------------------
def _unset_env(ex: Exchange) -> list[str]:
    needed: dict[str, list[str]] = {}
    devices = [(sw.id, sw.snmp) for sw in ex.switches] + [(r.id, r.snmp) for r in ex.border_routers]
    for device, s in devices:
        for key in _ENV_FIELDS:
            name = getattr(s, key)
            if name and not os.environ.get(name):
                needed.setdefault(name, []).append(device)
    return [f"{name} is not set (needed to poll {', '.join(who)})" for name, who in needed.items()]


@config.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
def check(path: Path | None) -> None:
    """Validate the configuration; exit non-zero listing every problem."""
    ex = _load(path)
    click.echo(
        f"{ex.source}: ok: {len(ex.sites)} sites, {len(ex.switches)} switches, {len(ex.members)} members, "
        f"{len(ex.ports)} ports, {len(ex.border_routers)} border routers, "
        f"{len(ex.transit_contracts)} transit contracts, {len(ex.port_fees)} port fees"
    )
    for note in _unset_env(ex):
        click.echo(f"note: {note}", err=True)


# --- from-ixf -----------------------------------------------------------------------------
def _grouped(warnings: list[str]) -> list[str]:
    """Warnings that differ only in list indices or quoted values, shown once with a count."""
    groups: dict[str, list[str]] = {}
    for w in warnings:
        key = re.sub(r"'[^']*'", "'…'", re.sub(r"\[\d+\]", "[*]", w))
        groups.setdefault(key, []).append(w)
    out = []
    for items in groups.values():
        more = f" (and {len(items) - 1} more like it)" if len(items) > 1 else ""
        out.append(items[0] + more)
    return out


@config.command("from-ixf")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout)."
)
@click.option(
    "--base", type=click.Path(path_type=Path), help="Take sites, switches, contracts, fees from this file."
)
@click.option("--ixp-id", type=int, help="Import only this ixp_id of a multi-IXP export.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--all-warnings", is_flag=True, help="Print every warning instead of grouping similar ones.")
def from_ixf(
    file: Path, out: Path | None, base: Path | None, ixp_id: int | None, force: bool, all_warnings: bool
) -> None:
    """Build exchange.toml members and ports from an IX-F member export (JSON, 0.5 to 1.0)."""
    try:
        base_ex = load_exchange(base) if base is not None else None
        imported = exchange_members_from_ixf(file, ixp_id=ixp_id)
        if out is not None and out.exists() and not force:
            raise InputError(f"{out}: already exists; choose another --out or pass --force")
    except PeerpoolError as exc:
        _fail(exc)
    built = exchange_from_ixf(imported, base_ex)
    warnings = imported.warnings + built.warnings
    for w in warnings if all_warnings else _grouped(warnings):
        click.echo(f"warning: {file}: {w}", err=True)
    stamp = imported.timestamp.isoformat() if imported.timestamp else "no timestamp"
    header = [
        f"Generated by 'peerpool config from-ixf' from {file.name} (ix-f {imported.version}, {stamp})",
        f"with {len(imported.members)} members and {len(imported.ports)} ports"
        + (f", merged into {base}." if base else "; sites, switches and fees are a skeleton."),
        f"{len(warnings)} import warnings were printed when it was made.",
        "Fill in before use (entries are marked TODO below):",
        *[f"  - {t}" for t in built.todo],
    ]
    text = dump_exchange(built.exchange, header="\n".join(header), notes=built.notes)
    source = str(out) if out is not None else "<stdout>"
    try:
        loads_exchange(text, source=source)
        valid: ConfigProblems | None = None
    except ConfigProblems as exc:
        valid = exc
    if out is None:
        click.echo(text, nl=False)
    else:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, "utf-8")
        tmp.replace(out)
        click.echo(
            f"wrote {out}: {len(built.exchange.members)} members, {len(built.exchange.ports)} ports, "
            f"{len(built.todo)} things to fill in (see the top of the file)",
            err=True,
        )
    for t in built.todo:
        click.echo(f"todo: {t}", err=True)
    if valid is not None:
        _fail(valid)
