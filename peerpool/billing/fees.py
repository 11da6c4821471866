"""Exchange port fees: the fee schedule by port speed, prorated by the days a port served.

A port is billed for the local calendar days in ``[connected, disconnected)`` that fall in
the month and in the membership ``[joined, left)``: the connect day counts, the disconnect
day (the first day out of service) does not, and ``left`` is read the same way (the first day
no longer a member). The amount is ``monthly fee x days served / days in month`` rounded half
up to the grosz, so a whole month is exactly the fee whether it has 28, 30 or 31 days.

Every port is its own line, also when ports form a bundle (LAG): a member with two 10G ports
in one bundle pays two 10G port fees, and the line names the bundle.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from peerpool.billing.lines import Line
from peerpool.billing.money import exact_text, grosz
from peerpool.billing.period import Month
from peerpool.config.model import Exchange, Member, MemberPort
from peerpool.errors import BillingError


def service_period(port: MemberPort, member: Member, month: Month) -> tuple[dt.date, dt.date]:
    """``[first, end)`` local days the port served in the month (``first >= end`` when none)."""
    first = max(month.start, port.connected, member.joined)
    end = min(month.end, port.disconnected or month.end, member.left or month.end)
    return first, end


def speed_label(speed_mbps: int) -> str:
    if speed_mbps % 1000 == 0:
        return f"{speed_mbps // 1000}G"
    return f"{speed_mbps}M"


def monthly_fee(exchange: Exchange, port: MemberPort) -> Decimal:
    try:
        return exchange.port_fee(port.speed_mbps)
    except KeyError:
        raise BillingError(
            f"{exchange.source or 'exchange.toml'}: port {port.id} is {port.speed_mbps} Mbps but "
            "[[port_fees]] "
            f"has no fee for that speed; add a [[port_fees]] entry with speed_mbps = {port.speed_mbps}"
        ) from None


def port_fee_line(exchange: Exchange, port: MemberPort, month: Month) -> Line | None:
    """The port's fee line for the month, or None when it served no day of it."""
    member = exchange.member(port.member)
    first, end = service_period(port, member, month)
    days = (end - first).days
    if days <= 0:
        return None
    fee = monthly_fee(exchange, port)
    exact = Fraction(fee) * days / month.days
    amount = grosz(exact)
    last = end - dt.timedelta(days=1)
    bundle = f", bundle {port.bundle} (each port of a bundle is billed)" if port.bundle else ""
    description = (
        f"port fee {port.id} {speed_label(port.speed_mbps)}{bundle}, "
        f"{first.isoformat()} to {last.isoformat()} ({days}/{month.days} days)"
    )
    return Line(
        member_id=member.id,
        kind="port_fee",
        reference=port.id,
        description=description,
        quantity=Decimal(days),
        unit=f"days of {month.days}",
        unit_price=fee,
        amount=amount,
        detail={
            "port_id": port.id,
            "speed_mbps": port.speed_mbps,
            "bundle": port.bundle,
            "monthly_fee": fee,
            "connected": port.connected.isoformat(),
            "disconnected": port.disconnected.isoformat() if port.disconnected else None,
            "member_joined": member.joined.isoformat(),
            "member_left": member.left.isoformat() if member.left else None,
            "first_day_billed": first.isoformat(),
            "last_day_billed": last.isoformat(),
            "days_served": days,
            "days_in_month": month.days,
            "rule": "connect day counts, disconnect day does not; fee x days served / days in month, "
            "rounded half up to the grosz",
            "formula": f"{fee} x {days} / {month.days} = {exact_text(exact)} -> {amount}",
        },
    )
