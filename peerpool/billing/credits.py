"""SLA credits: 1/30 of the monthly port fee for each started day of an exchange-side outage.

Which outages are the exchange's fault is a rule of the bill, passed in as ``causes``:

* ``unreachable`` (the exchange's switch did not answer its polls) is always the exchange's
  fault and is credited;
* ``oper_down`` on a member port is ambiguous (the member's router, optic or cross-connect is
  as likely as the exchange's switch port), so it is credited only when the operator says so
  (``peerpool bill --credit-oper-down``); the choice is written into every document.

For each port, the counted outages are clipped to the month and to the days the port was
billed (an outage crossing midnight of the 1st is split between the months), overlapping or
touching ones are merged into one fault, and each fault counts ``ceil(duration / 24 h)``
started days (a 3-minute fault is one day; 24 h 5 min is two). The credit is
``monthly fee x started days / 30`` rounded half up to the grosz and never more than the fee
billed for that port in the month. Ports in a bundle are credited each on its own outages,
as each is billed on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from peerpool.billing.lines import Line
from peerpool.billing.money import exact_text, grosz
from peerpool.billing.period import Month, utc_iso
from peerpool.billing.serving import Outage

EXCHANGE_FAULT = ("unreachable",)
AMBIGUOUS = ("oper_down",)
KNOWN_CAUSES = EXCHANGE_FAULT + AMBIGUOUS
DAY_US = 86_400_000_000


def _us(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def started_days(start: dt.datetime, end: dt.datetime) -> int:
    """Started 24-hour days of a fault from ``start`` to ``end`` (0 when it has no length)."""
    us = _us(end - start)
    return 0 if us <= 0 else -(-us // DAY_US)


def merge(intervals: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Overlapping or touching intervals merged, in time order."""
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def credit_line(
    *,
    member_id: str,
    port_id: str,
    monthly_fee: Decimal,
    billed_fee: Decimal,
    service: tuple[dt.date, dt.date],
    outages: list[Outage],
    causes: tuple[str, ...],
    month: Month,
) -> tuple[Line | None, list[dict[str, Any]]]:
    """The port's credit line (None when no counted fault) and every outage as evidence rows."""
    window_start = max(month.start_utc, month.midnight_utc(service[0]))
    window_end = min(month.end_utc, month.midnight_utc(service[1]))
    evidence: list[dict[str, Any]] = []
    counted: list[tuple[dt.datetime, dt.datetime]] = []
    for outage in outages:
        end = outage.end_at or outage.start_at + dt.timedelta(seconds=outage.duration_s)
        start_c, end_c = max(outage.start_at, window_start), min(end, window_end)
        inside = end_c > start_c
        credited = inside and outage.cause in causes
        if credited:
            counted.append((start_c, end_c))
        if not inside:
            reason = "outside the month or the days the port was billed"
        elif credited:
            reason = "exchange's fault: credited"
        elif outage.cause in AMBIGUOUS:
            reason = (
                f"{outage.cause} is not credited under this bill's rule "
                f"(credited causes: {', '.join(causes)})"
            )
        else:
            reason = f"cause {outage.cause} is not an exchange fault under this bill's rule"
        evidence.append(
            {
                "port_id": port_id,
                "cause": outage.cause,
                "start_at": utc_iso(outage.start_at),
                "end_at": utc_iso(outage.end_at) if outage.end_at else "",
                "ongoing": outage.end_at is None,
                "clipped_start": utc_iso(start_c) if inside else "",
                "clipped_end": utc_iso(end_c) if inside else "",
                "credited": credited,
                "reason": reason,
            }
        )
    faults = merge(counted)
    if not faults:
        return None, evidence
    fault_days = [started_days(s, e) for s, e in faults]
    fault_rows = [
        {"start": utc_iso(s), "end": utc_iso(e), "seconds": _us(e - s) / 1_000_000, "started_days": d}
        for (s, e), d in zip(faults, fault_days, strict=True)
    ]
    days = sum(fault_days)
    exact = Fraction(monthly_fee) * days / 30
    uncapped = grosz(exact)
    amount = min(uncapped, billed_fee)
    description = (
        f"SLA credit {port_id}: {days} started day{'s' if days != 1 else ''} of exchange-side outage "
        f"x 1/30 of {monthly_fee}" + (f", capped at the port fee {billed_fee}" if amount < uncapped else "")
    )
    line = Line(
        member_id=member_id,
        kind="sla_credit",
        reference=port_id,
        description=description,
        quantity=Decimal(days),
        unit="started days x 1/30 of the monthly fee",
        unit_price=monthly_fee,
        amount=-amount,
        detail={
            "port_id": port_id,
            "credited_causes": list(causes),
            "faults": fault_rows,
            "started_days": days,
            "monthly_fee": monthly_fee,
            "credit_before_cap": uncapped,
            "cap_port_fee_billed": billed_fee,
            "formula": f"{monthly_fee} x {days} / 30 = {exact_text(exact)} -> {uncapped}; "
            f"capped at the port fee billed {billed_fee} -> {amount}",
        },
    )
    return line, evidence
