"""One month's bill for every member, from the configuration and the serving file.

This is where the lines meet: port fees (``fees``), SLA credits (``credits``), the share of
the pooled transit bill (``transit``) and one-off fees (``oneoff``). Before anything is
computed the serving file's member ports are compared with the configuration's: a bill made
from a configuration and a serving file that disagree about who has which port would be
wrong in ways no evidence could show.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from peerpool.billing import credits, fees, transit
from peerpool.billing.allocate import Allocation, allocate, share_lines
from peerpool.billing.lines import Bill, Line, MemberBill
from peerpool.billing.oneoff import one_off_lines
from peerpool.billing.period import Month
from peerpool.billing.serving import ServingFile
from peerpool.config.model import Exchange
from peerpool.errors import BillingError

RULES_VERSION = "1"  # bump when a billing rule changes meaning (it is written into every document)


@dataclass(frozen=True)
class Policy:
    """The choices a bill is made under; written into every document as inputs of the bill."""

    credited_causes: tuple[str, ...] = credits.EXCHANGE_FAULT

    def as_dict(self, exchange: Exchange) -> dict[str, Any]:
        return {
            "rules_version": RULES_VERSION,
            "credited_outage_causes": list(self.credited_causes),
            "transit_allocation": exchange.billing.transit_allocation,
            "vat_rate": str(exchange.billing.vat_rate),
            "currency": exchange.billing.currency,
            "timezone": exchange.billing.timezone,
        }


@dataclass(frozen=True)
class MonthResult:
    """The bill and what its evidence packs are written from."""

    bill: Bill
    month: Month
    pool: transit.Pool
    members_transit: transit.MemberTransit
    outages: dict[str, list[dict[str, Any]]]  # member_id -> every outage of its ports in the month


def check_ports(exchange: Exchange, serving: ServingFile) -> None:
    """Refuse a serving file whose member ports differ from the configuration's."""
    config = {p.id: (p.member, p.speed_mbps, p.bundle, p.connected, p.disconnected) for p in exchange.ports}
    built = {
        p.port_id: (p.member_id, p.speed_mbps, p.bundle_name, p.connected_date, p.disconnected_date)
        for p in serving.member_ports()
    }
    differences = [
        f"{port_id}: configuration {config.get(port_id)}, serving file {built.get(port_id)}"
        for port_id in sorted(set(config) | set(built))
        if config.get(port_id) != built.get(port_id)
    ]
    if differences:
        shown = "; ".join(differences[:5]) + (
            f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        )
        raise BillingError(
            f"{serving.path} was built from another configuration than {exchange.source or 'exchange.toml'} "
            f"(member ports differ: {shown}); run 'peerpool build' with this configuration, or bill with the "
            "configuration the serving file was built from"
        )


def member_p95s(
    exchange: Exchange, members: transit.MemberTransit
) -> tuple[dict[str, Decimal], dict[str, transit.MemberSeries]]:
    """Every member with transit use in the month: its verified 95th and its samples."""
    p95: dict[str, Decimal] = {}
    series: dict[str, transit.MemberSeries] = {}
    known = {m.id for m in exchange.members}
    for member_id in sorted(members.monthly):
        if member_id not in known:
            raise BillingError(
                f"the serving file has transit use of member {member_id}, which "
                f"{exchange.source or 'exchange.toml'} does not list; rebuild it from this configuration"
            )
        p95[member_id], series[member_id] = members.verified_p95(member_id)
    return p95, series


def compute_month(exchange: Exchange, serving: ServingFile, month: Month, policy: Policy) -> MonthResult:
    check_ports(exchange, serving)
    lines: list[Line] = []
    ports = sorted(exchange.ports, key=lambda p: p.id)
    outages_by_port: dict[str, list[Any]] = {}
    for outage in serving.outages([p.id for p in ports], month):
        outages_by_port.setdefault(outage.port_id, []).append(outage)
    outage_evidence: dict[str, list[dict[str, Any]]] = {}
    for port in ports:
        fee_line = fees.port_fee_line(exchange, port, month)
        port_outages = outages_by_port.get(port.id, [])
        if fee_line is None:
            if port_outages:
                outage_evidence.setdefault(port.member, []).extend(
                    credits.credit_line(
                        member_id=port.member,
                        port_id=port.id,
                        monthly_fee=fees.monthly_fee(exchange, port),
                        billed_fee=Decimal(0),
                        service=(month.start, month.start),
                        outages=port_outages,
                        causes=policy.credited_causes,
                        month=month,
                    )[1]
                )
            continue
        lines.append(fee_line)
        credit, evidence = credits.credit_line(
            member_id=port.member,
            port_id=port.id,
            monthly_fee=fees.monthly_fee(exchange, port),
            billed_fee=fee_line.amount,
            service=fees.service_period(port, exchange.member(port.member), month),
            outages=port_outages,
            causes=policy.credited_causes,
            month=month,
        )
        if credit is not None:
            lines.append(credit)
        if evidence:
            outage_evidence.setdefault(port.member, []).extend(evidence)

    pool = transit.pool_bill(serving, exchange, month)
    members_transit = transit.member_transit(serving, month)
    method = exchange.billing.transit_allocation
    if pool.contracts:
        p95, series = member_p95s(exchange, members_transit)
        shared = allocate(method, pool, p95, series)
        lines.extend(share_lines(shared, p95, pool, month).values())
    else:
        shared = Allocation(method, {}, {}, {"method": method, "members_sharing": 0})
    lines.extend(one_off_lines(exchange, month))

    by_member: dict[str, list[Line]] = {}
    for line in sorted(lines, key=Line.sort_key):
        by_member.setdefault(line.member_id, []).append(line)
    member_bills = tuple(
        MemberBill(
            member_id=member_id,
            member_name=exchange.member(member_id).name,
            billing_entity=exchange.member(member_id).billing_entity,
            lines=tuple(member_lines),
            vat_rate=exchange.billing.vat_rate,
        )
        for member_id, member_lines in sorted(by_member.items())
    )
    bill = Bill(
        month=month.label,
        currency=exchange.billing.currency,
        vat_rate=exchange.billing.vat_rate,
        members=member_bills,
        pool=pool_summary(pool, shared),
        policy=policy.as_dict(exchange),
    )
    return MonthResult(bill, month, pool, members_transit, outage_evidence)


def pool_summary(pool: transit.Pool, shared: Allocation) -> dict[str, Any]:
    """The pooled bill as every member may see it: contract totals, no member's own figures."""
    return {
        "currency": pool.currency,
        "total": pool.total,
        "contracts": [
            {
                "contract_id": c.mart.contract_id,
                "provider": c.mart.provider,
                "billed_mbps": c.billed_mbps,
                "commit_mbps": c.mart.commit_mbps,
                "total_cost": c.total_cost,
                "total_grosz": c.total_grosz,
            }
            for c in pool.contracts
        ],
        "allocation": shared.summary,
    }
