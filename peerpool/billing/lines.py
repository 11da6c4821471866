"""The shapes of a bill: lines, a member's bill, the month's bill.

A line is one amount on an invoice, net, already rounded to the grosz. ``kind`` says what it
is; ``reference`` names the thing it is for (a port id, ``pool`` for the transit share, the
fee's description for a one-off fee) so the same line can be found again in a correction.
``detail`` carries the figures behind the amount for the evidence pack; it never reaches the
invoice files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from peerpool.billing.money import ZERO, grosz

KIND_ORDER = ("port_fee", "sla_credit", "transit_share", "one_off_fee")


@dataclass(frozen=True)
class Line:
    member_id: str
    kind: str
    reference: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None  # None where the amount is not price x quantity (a shared bill)
    amount: Decimal  # net, rounded to the grosz
    detail: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the line across documents (original, corrections)."""
        return (self.member_id, self.kind, self.reference)

    def sort_key(self) -> tuple[str, int, str]:
        return (self.member_id, KIND_ORDER.index(self.kind), self.reference)


@dataclass(frozen=True)
class MemberBill:
    member_id: str
    member_name: str
    billing_entity: str
    lines: tuple[Line, ...]
    vat_rate: Decimal

    @property
    def net(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def vat(self) -> Decimal:
        return grosz(self.net * self.vat_rate)

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


@dataclass(frozen=True)
class Bill:
    """The month's bill for every member, plus what the evidence packs need."""

    month: str
    currency: str
    vat_rate: Decimal
    members: tuple[MemberBill, ...]
    pool: dict[str, Any]  # the pooled transit bill and its evidence (no member's private figures)
    policy: dict[str, Any]  # rule settings that are inputs of the bill (credited causes, method)

    @property
    def net(self) -> Decimal:
        return sum((m.net for m in self.members), ZERO)

    @property
    def vat(self) -> Decimal:
        return sum((m.vat for m in self.members), ZERO)

    @property
    def gross(self) -> Decimal:
        return sum((m.gross for m in self.members), ZERO)
