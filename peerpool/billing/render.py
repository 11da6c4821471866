"""The bytes of the export files: CSV and JSON, stable to the byte.

Stable column order, rows sorted (member, then line kind, then reference), ``\\n`` line
endings, UTF-8, amounts as plain decimals with two places, no time of "now" anywhere: what a
document was made from is its ``generated_from`` block (the sha256 of the serving file and of
the configuration, and the billing policy). Every row and every JSON document carries the
document's ``status`` (``preview``, ``final`` or ``correction-NN``) so a preview can never be
mistaken for an invoice basis.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from peerpool.billing.lines import Bill, Line, MemberBill
from peerpool.billing.money import fmt, fmt_exact

LINE_COLUMNS = (
    "status",
    "month",
    "member_id",
    "line_no",
    "kind",
    "reference",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "amount_net",
    "currency",
)
TOTAL_COLUMNS = (
    "status",
    "month",
    "member_id",
    "member_name",
    "billing_entity",
    "net",
    "vat_rate",
    "vat",
    "gross",
    "currency",
)
PREVIEW_NOTICE = (
    "PREVIEW: not a basis for invoices; the figures change until the month is closed with --final"
)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return fmt_exact(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} into a billing document")


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, default=_default) + "\n").encode("utf-8")


def line_rows(status: str, month: str, currency: str, member: MemberBill) -> list[list[str]]:
    return [
        [
            status,
            month,
            line.member_id,
            str(number),
            line.kind,
            line.reference,
            line.description,
            fmt_exact(line.quantity),
            line.unit,
            "" if line.unit_price is None else fmt_exact(line.unit_price),
            fmt(line.amount),
            currency,
        ]
        for number, line in enumerate(member.lines, start=1)
    ]


def total_row(status: str, month: str, currency: str, member: MemberBill) -> list[str]:
    return [
        status,
        month,
        member.member_id,
        member.member_name,
        member.billing_entity,
        fmt(member.net),
        fmt_exact(member.vat_rate),
        fmt(member.vat),
        fmt(member.gross),
        currency,
    ]


def line_json(number: int, line: Line, with_detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "line_no": number,
        "kind": line.kind,
        "reference": line.reference,
        "description": line.description,
        "quantity": fmt_exact(line.quantity),
        "unit": line.unit,
        "unit_price": None if line.unit_price is None else fmt_exact(line.unit_price),
        "amount_net": fmt(line.amount),
    }
    if with_detail:
        out["detail"] = line.detail
    return out


def member_json(member: MemberBill, evidence: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "member_id": member.member_id,
        "member_name": member.member_name,
        "billing_entity": member.billing_entity,
        "lines": [line_json(i, line) for i, line in enumerate(member.lines, start=1)],
        "net": fmt(member.net),
        "vat_rate": fmt_exact(member.vat_rate),
        "vat": fmt(member.vat),
        "gross": fmt(member.gross),
    }
    if evidence is not None:
        out["evidence"] = evidence
    return out


def header(status: str, bill: Bill, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "peerpool member bills",
        "status": status,
        "month": bill.month,
        "currency": bill.currency,
        "vat_rate": fmt_exact(bill.vat_rate),
    }
    if status == "preview":
        out["notice"] = PREVIEW_NOTICE
    out.update(extra or {})
    return out


def rounding_rules() -> str:
    return (
        "each line rounded half up to the grosz; net = sum of the lines; VAT = net x rate rounded half up "
        "to the grosz; gross = net + VAT; totals are sums of rounded figures"
    )


def bill_files(
    bill: Bill,
    status: str,
    generated_from: dict[str, Any],
    evidence: dict[str, dict[str, str]],
    extra_header: dict[str, Any] | None = None,
) -> dict[str, bytes]:
    """Combined and per-member CSV and JSON files, by relative path."""
    files: dict[str, bytes] = {}
    prefix = f"bill-{bill.month}"
    all_lines: list[list[str]] = []
    totals: list[list[str]] = []
    for member in bill.members:
        rows = line_rows(status, bill.month, bill.currency, member)
        all_lines.extend(rows)
        totals.append(total_row(status, bill.month, bill.currency, member))
        files[f"members/{member.member_id}.csv"] = csv_bytes(LINE_COLUMNS, rows)
        files[f"members/{member.member_id}.json"] = json_bytes(
            {
                "document": header(status, bill, extra_header),
                "generated_from": generated_from,
                "pool": bill.pool,
                "member": member_json(member, evidence.get(member.member_id)),
                "rounding": rounding_rules(),
            }
        )
    files[f"{prefix}-lines.csv"] = csv_bytes(LINE_COLUMNS, all_lines)
    files[f"{prefix}-totals.csv"] = csv_bytes(TOTAL_COLUMNS, totals)
    files[f"{prefix}.json"] = json_bytes(
        {
            "document": header(status, bill, extra_header),
            "generated_from": generated_from,
            "pool": bill.pool,
            "members": [member_json(m, evidence.get(m.member_id)) for m in bill.members],
            "totals": {"net": fmt(bill.net), "vat": fmt(bill.vat), "gross": fmt(bill.gross)},
            "rounding": rounding_rules(),
        }
    )
    return files
