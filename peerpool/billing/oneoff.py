"""One-off fees from the configuration (``[[one_off_fees]]``): installation, cross-connects, ...

Each fee of the member and month is one line with its amount as configured (net, rounded to
the grosz). The line's reference is the fee's description; two fees with the same description
in one month are told apart as ``description #2``, ``#3`` in configuration order.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from peerpool.billing.lines import Line
from peerpool.billing.money import grosz
from peerpool.billing.period import Month
from peerpool.config.model import Exchange


def one_off_lines(exchange: Exchange, month: Month) -> list[Line]:
    seen: Counter[tuple[str, str]] = Counter()
    lines = []
    for fee in exchange.one_off_fees:
        if fee.month != month.label:
            continue
        seen[(fee.member, fee.description)] += 1
        count = seen[(fee.member, fee.description)]
        reference = fee.description if count == 1 else f"{fee.description} #{count}"
        amount = grosz(fee.amount)
        lines.append(
            Line(
                member_id=fee.member,
                kind="one_off_fee",
                reference=reference,
                description=f"one-off fee: {fee.description}",
                quantity=Decimal(1),
                unit="fee",
                unit_price=fee.amount,
                amount=amount,
                detail={"description": fee.description, "amount": fee.amount, "month": fee.month},
            )
        )
    return lines
