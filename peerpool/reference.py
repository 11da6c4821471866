"""Export the exchange configuration as reference Parquet tables for the dbt models.

``peerpool build`` writes one file per table to ``LAKE/reference/<table>.parquet`` before dbt
runs, so every model reads the configuration the same way it reads traffic: as a dbt source.
Money is ``DECIMAL(18,4)`` (exact; a value with more than four decimals is refused rather than
rounded), dates are dates, lists stay lists (a port's MACs, a member's prefixes).

Member prefixes are also expanded to numeric ranges (``member_prefixes``) so SQL can match an
address to the longest prefix without an IP extension: an address is held as two unsigned
64-bit halves (IPv4 in the low half), and a prefix as the first and last address it covers.

PeeringDB ``netixlan`` objects (an API dump in JSON) can be added with
:func:`import_peeringdb_netixlan`; the models use them when present and do without otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from peerpool.config.model import Exchange
from peerpool.errors import ConfigError, InputError

MONEY = pa.decimal128(18, 4)
_FOUR_PLACES = Decimal("0.0001")
_MASK64 = (1 << 64) - 1

SCHEMAS: dict[str, pa.Schema] = {
    "sites": pa.schema([("site_id", pa.string()), ("name", pa.string()), ("city", pa.string())]),
    "switches": pa.schema(
        [
            ("switch_id", pa.string()),
            ("site_id", pa.string()),
            ("management_address", pa.string()),
            ("sflow_agent_address", pa.string()),
            ("sampling_rate", pa.int64()),
        ]
    ),
    "members": pa.schema(
        [
            ("member_id", pa.string()),
            ("asn", pa.int64()),
            ("name", pa.string()),
            ("billing_entity", pa.string()),
            ("kind", pa.string()),
            ("joined_date", pa.date32()),
            ("left_date", pa.date32()),
            ("prefixes", pa.list_(pa.string())),
        ]
    ),
    "member_prefixes": pa.schema(
        [
            ("member_id", pa.string()),
            ("prefix", pa.string()),
            ("ip_version", pa.int8()),
            ("prefix_length", pa.int16()),
            ("first_hi", pa.uint64()),
            ("first_lo", pa.uint64()),
            ("last_hi", pa.uint64()),
            ("last_lo", pa.uint64()),
        ]
    ),
    "ports": pa.schema(
        [
            ("port_id", pa.string()),
            ("switch_id", pa.string()),
            ("interface", pa.string()),
            ("ifindex", pa.int64()),
            ("speed_mbps", pa.int64()),
            ("vlan", pa.int32()),
            ("member_id", pa.string()),
            ("macs", pa.list_(pa.string())),
            ("ipv4", pa.list_(pa.string())),
            ("ipv6", pa.list_(pa.string())),
            ("connected_date", pa.date32()),
            ("disconnected_date", pa.date32()),
            ("bundle", pa.string()),
            ("counter_bits", pa.int8()),
        ]
    ),
    "border_routers": pa.schema(
        [
            ("router_id", pa.string()),
            ("site_id", pa.string()),
            ("management_address", pa.string()),
            ("flow_exporter_address", pa.string()),
            ("sampling_rate_override", pa.int64()),
        ]
    ),
    "border_router_ports": pa.schema(
        [
            ("port_id", pa.string()),
            ("router_id", pa.string()),
            ("interface", pa.string()),
            ("ifindex", pa.int64()),
            ("speed_mbps", pa.int64()),
        ]
    ),
    "transit_contracts": pa.schema(
        [
            ("contract_id", pa.string()),
            ("provider", pa.string()),
            ("commit_mbps", MONEY),
            ("price_per_mbps", MONEY),
            ("burst_price_per_mbps", MONEY),
            ("currency", pa.string()),
            ("percentile", pa.int32()),
            ("direction_rule", pa.string()),
            ("billing_timezone", pa.string()),
            ("gap_policy", pa.string()),
            ("term_start_date", pa.date32()),
            ("term_end_date", pa.date32()),
        ]
    ),
    "transit_contract_ports": pa.schema([("contract_id", pa.string()), ("port_id", pa.string())]),
    "port_fees": pa.schema([("speed_mbps", pa.int64()), ("monthly_fee", MONEY)]),
    "one_off_fees": pa.schema(
        [
            ("member_id", pa.string()),
            ("month", pa.string()),
            ("description", pa.string()),
            ("amount", MONEY),
        ]
    ),
    "billing": pa.schema(
        [
            ("exchange_name", pa.string()),
            ("currency", pa.string()),
            ("vat_rate", MONEY),
            ("timezone", pa.string()),
            ("transit_allocation", pa.string()),
            ("member_visibility", pa.string()),
        ]
    ),
}

NETIXLAN = pa.schema(
    [
        ("netixlan_id", pa.int64()),
        ("net_id", pa.int64()),
        ("ix_id", pa.int64()),
        ("ixlan_id", pa.int64()),
        ("ix_name", pa.string()),
        ("asn", pa.int64()),
        ("speed_mbps", pa.int64()),
        ("ipaddr4", pa.string()),
        ("ipaddr6", pa.string()),
        ("is_rs_peer", pa.bool_()),
        ("is_operational", pa.bool_()),
    ]
)


def money(value: Decimal, what: str) -> Decimal:
    """``value`` with exactly four decimals; more precision than that is a configuration error."""
    quantized = value.quantize(_FOUR_PLACES)
    if quantized != value:
        raise ConfigError(
            f"{what}: {value} has more than 4 decimal places; write it with at most 4 (for example "
            f"'{quantized}')"
        )
    if abs(quantized) >= Decimal(10) ** 14:
        raise ConfigError(f"{what}: {value} is too large for DECIMAL(18,4); check the amount")
    return quantized


def prefix_range(prefix: str) -> dict[str, Any]:
    """First and last address of ``prefix`` as (hi, lo) unsigned 64-bit halves, IPv4 in the low half."""
    net = ipaddress.ip_network(prefix, strict=False)
    first = int(net.network_address)
    last = int(net.broadcast_address)
    return {
        "prefix": str(net),
        "ip_version": net.version,
        "prefix_length": net.prefixlen,
        "first_hi": first >> 64,
        "first_lo": first & _MASK64,
        "last_hi": last >> 64,
        "last_lo": last & _MASK64,
    }


def tables(exchange: Exchange) -> dict[str, pa.Table]:
    """Every reference table of ``exchange`` as an Arrow table with the schema in :data:`SCHEMAS`."""
    src = exchange.source or "exchange configuration"
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SCHEMAS}
    rows["sites"] = [{"site_id": s.id, "name": s.name, "city": s.city} for s in exchange.sites]
    rows["switches"] = [
        {
            "switch_id": s.id,
            "site_id": s.site,
            "management_address": s.management_address,
            "sflow_agent_address": s.sflow_agent_address or s.management_address,
            "sampling_rate": s.sampling_rate,
        }
        for s in exchange.switches
    ]
    for m in exchange.members:
        rows["members"].append(
            {
                "member_id": m.id,
                "asn": m.asn,
                "name": m.name,
                "billing_entity": m.billing_entity,
                "kind": m.kind,
                "joined_date": m.joined,
                "left_date": m.left,
                "prefixes": list(m.prefixes),
            }
        )
        for prefix in m.prefixes:
            try:
                rows["member_prefixes"].append({"member_id": m.id, **prefix_range(prefix)})
            except ValueError as exc:
                raise ConfigError(
                    f"{src}: member '{m.id}' has prefix {prefix!r} that is not an IP prefix ({exc}); "
                    "write it like '198.51.100.0/24'"
                ) from exc
    rows["ports"] = [
        {
            "port_id": p.id,
            "switch_id": p.switch,
            "interface": p.interface,
            "ifindex": p.ifindex,
            "speed_mbps": p.speed_mbps,
            "vlan": p.vlan,
            "member_id": p.member,
            "macs": [mac.lower() for mac in p.macs],
            "ipv4": list(p.ipv4),
            "ipv6": list(p.ipv6),
            "connected_date": p.connected,
            "disconnected_date": p.disconnected,
            "bundle": p.bundle,
            "counter_bits": p.counter_bits,
        }
        for p in exchange.ports
    ]
    for r in exchange.border_routers:
        rows["border_routers"].append(
            {
                "router_id": r.id,
                "site_id": r.site,
                "management_address": r.management_address,
                "flow_exporter_address": r.flow_exporter_address,
                "sampling_rate_override": r.sampling_rate_override,
            }
        )
        for bp in r.ports:
            rows["border_router_ports"].append(
                {
                    "port_id": bp.id,
                    "router_id": r.id,
                    "interface": bp.interface,
                    "ifindex": bp.ifindex,
                    "speed_mbps": bp.speed_mbps,
                }
            )
    for c in exchange.transit_contracts:
        what = f"{src}: transit contract '{c.id}'"
        rows["transit_contracts"].append(
            {
                "contract_id": c.id,
                "provider": c.provider,
                "commit_mbps": money(c.commit_mbps, f"{what} commit_mbps"),
                "price_per_mbps": money(c.price_per_mbps, f"{what} price_per_mbps"),
                "burst_price_per_mbps": money(c.burst_price_per_mbps, f"{what} burst_price_per_mbps"),
                "currency": c.currency,
                "percentile": c.percentile,
                "direction_rule": c.direction_rule,
                "billing_timezone": c.billing_timezone,
                "gap_policy": c.gap_policy,
                "term_start_date": c.term_start,
                "term_end_date": c.term_end,
            }
        )
        rows["transit_contract_ports"].extend({"contract_id": c.id, "port_id": p} for p in c.ports)
    rows["port_fees"] = [
        {
            "speed_mbps": f.speed_mbps,
            "monthly_fee": money(f.monthly_fee, f"{src}: port fee for {f.speed_mbps} Mbps"),
        }
        for f in exchange.port_fees
    ]
    rows["one_off_fees"] = [
        {
            "member_id": f.member,
            "month": f.month,
            "description": f.description,
            "amount": money(f.amount, f"{src}: one-off fee '{f.description}' of {f.member}"),
        }
        for f in exchange.one_off_fees
    ]
    b = exchange.billing
    rows["billing"] = [
        {
            "exchange_name": exchange.name,
            "currency": b.currency,
            "vat_rate": money(b.vat_rate, f"{src}: billing vat_rate"),
            "timezone": b.timezone,
            "transit_allocation": b.transit_allocation,
            "member_visibility": b.member_visibility,
        }
    ]
    return {name: pa.Table.from_pylist(rows[name], schema=schema) for name, schema in SCHEMAS.items()}


def write_atomic(table: pa.Table, final: Path) -> None:
    """Write ``table`` to ``final`` through a temporary file and a rename (readers never see half)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def export(exchange: Exchange, lake: Path) -> dict[str, int]:
    """Write every reference table to ``lake/reference/<table>.parquet``; return row counts.

    Each file is replaced atomically, so a model reading during an export sees the old or the
    new table, never a torn one.
    """
    built = tables(exchange)
    for name, table in built.items():
        write_atomic(table, lake / "reference" / f"{name}.parquet")
    return {name: table.num_rows for name, table in built.items()}


def _netixlan_rows(objects: Iterable[Mapping[str, Any]], source: str) -> list[dict[str, Any]]:
    out = []
    for i, obj in enumerate(objects):
        try:
            out.append(
                {
                    "netixlan_id": int(obj["id"]),
                    "net_id": int(obj["net_id"]),
                    "ix_id": int(obj["ix_id"]),
                    "ixlan_id": int(obj["ixlan_id"]),
                    "ix_name": str(obj.get("name") or ""),
                    "asn": int(obj["asn"]),
                    "speed_mbps": int(obj.get("speed") or 0),
                    "ipaddr4": obj.get("ipaddr4"),
                    "ipaddr6": obj.get("ipaddr6"),
                    "is_rs_peer": bool(obj.get("is_rs_peer", False)),
                    "is_operational": bool(obj.get("operational", True)),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{source}: netixlan object #{i} lacks or mangles field {exc}; export the objects "
                "from the PeeringDB API (/api/netixlan) unchanged"
            ) from exc
    return out


def import_peeringdb_netixlan(json_path: Path, lake: Path) -> int:
    """Convert a PeeringDB API ``netixlan`` dump (``{"data": [...]}``) to ``reference/peeringdb_netixlan``."""
    try:
        document = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{json_path}: cannot read a PeeringDB JSON dump ({exc})") from exc
    data: Sequence[Mapping[str, Any]] | None = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise InputError(f"{json_path}: no 'data' list; expected the PeeringDB API answer for netixlan")
    table = pa.Table.from_pylist(_netixlan_rows(data, str(json_path)), schema=NETIXLAN)
    write_atomic(table, lake / "reference" / "peeringdb_netixlan.parquet")
    return len(table)
