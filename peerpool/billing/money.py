"""Money on a bill: exact ``Decimal`` in the exchange currency, rounded to the grosz half up.

Every line is rounded on its own to the grosz (0.01) with ``ROUND_HALF_UP`` (ties away from
zero, the commercial rule); a member's VAT is its net total times the rate, rounded the same
way; gross is net plus VAT; any total is the sum of already rounded figures. (The pooled
transit bill is shared by largest remainder in ``peerpool.billing.allocate``.)
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

GROSZ = Decimal("0.01")
ZERO = Decimal("0.00")


def grosz(value: Decimal | int | Fraction) -> Decimal:
    """``value`` rounded half up (ties away from zero) to the grosz, with no intermediate rounding."""
    if isinstance(value, Fraction):
        cents = abs(value) * 100
        whole = cents.numerator // cents.denominator
        if cents - whole >= Fraction(1, 2):
            whole += 1
        signed = -whole if value < 0 else whole
        return (Decimal(signed) / 100).quantize(GROSZ)
    return Decimal(value).quantize(GROSZ, rounding=ROUND_HALF_UP)


def exact_text(value: Fraction, places: int = 8) -> str:
    """A rational shown to ``places`` decimals, with ``...`` when the expansion goes on."""
    shown = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP
    )
    return f"{shown:f}" + ("" if Fraction(shown) == value else "...")


def fmt(amount: Decimal) -> str:
    """An amount as written in the files: plain notation, two decimals (``1234.50``)."""
    return f"{amount.quantize(GROSZ, rounding=ROUND_HALF_UP):f}"


def fmt_exact(value: Decimal) -> str:
    """A non-money decimal (Mbps, rates) in plain notation, as stored (no exponent)."""
    return f"{value:f}"
