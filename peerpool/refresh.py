"""``peerpool reference refresh``: the daily refresh of reference data.

Validates the exchange configuration and exports it to the lake's reference tables; compares
the exchange's published IX-F member export with the configuration (members or MAC addresses
that differ are reported: the configuration is the source of truth for billing, the export is
what the world sees); loads PeeringDB ``netixlan`` objects when given; and rebuilds the
IP-to-ASN database from MRT RIB dumps when given. Each part is skipped when not configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from ingest.asn import build_database, format_report
from peerpool import reference
from peerpool.config.ixf import exchange_members_from_ixf
from peerpool.config.load import load_exchange
from peerpool.config.model import Exchange


@dataclass
class IxfDrift:
    """How an IX-F export differs from the configuration (by ASN and MAC address)."""

    only_in_export: list[int] = field(default_factory=list)
    only_in_config: list[int] = field(default_factory=list)
    mac_differences: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"member AS{asn} is in the IX-F export but not in the configuration"
            for asn in self.only_in_export
        ]
        out += [
            f"member AS{asn} is in the configuration but not in the IX-F export"
            for asn in self.only_in_config
        ]
        for asn, (config_macs, export_macs) in sorted(self.mac_differences.items()):
            out.append(f"member AS{asn}: MACs configured {config_macs}, published {export_macs}")
        return out


def ixf_drift(exchange: Exchange, ixf_path: Path) -> IxfDrift:
    imported = exchange_members_from_ixf(ixf_path)
    config_asns = {m.asn for m in exchange.members if m.left is None}
    export_asns = {m.asn for m in imported.members}
    drift = IxfDrift(
        only_in_export=sorted(export_asns - config_asns),
        only_in_config=sorted(config_asns - export_asns),
        warnings=list(imported.warnings),
    )
    asn_of = {m.id: m.asn for m in exchange.members}
    export_asn_of = {m.id: m.asn for m in imported.members}
    config_macs: dict[int, set[str]] = {}
    for port in exchange.ports:
        if port.disconnected is None:
            config_macs.setdefault(asn_of[port.member], set()).update(port.macs)
    export_macs: dict[int, set[str]] = {}
    for port in imported.ports:
        export_macs.setdefault(export_asn_of[port.member], set()).update(port.macs)
    for asn in sorted(config_asns & export_asns):
        mine, theirs = config_macs.get(asn, set()), export_macs.get(asn, set())
        if mine != theirs:
            drift.mac_differences[asn] = (sorted(mine), sorted(theirs))
    return drift


@click.group()
def reference_group() -> None:
    """Reference data: configuration, IX-F export, PeeringDB objects, IP-to-ASN database."""


@reference_group.command("refresh")
@click.option(
    "--config", type=click.Path(path_type=Path, dir_okay=False), envvar="PEERPOOL_CONFIG", required=True
)
@click.option(
    "--lake", type=click.Path(path_type=Path, file_okay=False), envvar="PEERPOOL_LAKE", required=True
)
@click.option("--ixf", type=click.Path(path_type=Path, dir_okay=False), envvar="PEERPOOL_IXF", default=None,
              help="the exchange's IX-F member export to compare with the configuration")  # fmt: skip
@click.option("--peeringdb-netixlan", type=click.Path(path_type=Path, dir_okay=False), default=None,
              envvar="PEERPOOL_PEERINGDB_NETIXLAN", help="PeeringDB API netixlan objects (JSON)")  # fmt: skip
@click.option("--rib", "ribs", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="MRT RIB dump(s) to rebuild the IP-to-ASN database from (repeatable)")  # fmt: skip
@click.option(
    "--asn-db", type=click.Path(path_type=Path, dir_okay=False), envvar="PEERPOOL_ASN_DB", default=None
)
def refresh(
    config: Path, lake: Path, ixf: Path | None, peeringdb_netixlan: Path | None, ribs: tuple[Path, ...],
    asn_db: Path | None,
) -> None:  # fmt: skip
    """Validate and export the configuration; compare IX-F; load PeeringDB; rebuild the ASN database."""
    exchange = load_exchange(config)
    counts = reference.export(exchange, lake)
    click.echo(f"reference tables: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}")
    if ixf is not None:
        drift = ixf_drift(exchange, ixf)
        for line in drift.lines():
            click.echo(f"ix-f drift: {line}")
        click.echo(f"ix-f export {ixf}: {len(drift.lines())} difference(s), {len(drift.warnings)} warning(s)")
    if peeringdb_netixlan is not None:
        rows = reference.import_peeringdb_netixlan(peeringdb_netixlan, lake)
        click.echo(f"peeringdb netixlan: {rows} rows")
    if ribs:
        if asn_db is None:
            raise click.UsageError("--rib needs --asn-db (or PEERPOOL_ASN_DB): where to write the database")
        click.echo(format_report(build_database(list(ribs), asn_db)))
