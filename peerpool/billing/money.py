"""Money on a bill: exact ``Decimal`` in the exchange currency, rounded to the grosz half up.

Every line is rounded on its own to the grosz (0.01) with ``ROUND_HALF_UP`` (ties away from
zero, the commercial rule); a member's VAT is its net total times the rate, rounded the same
way; gross is net plus VAT; any total is the sum of already rounded figures. A sum of money
shared out (the pooled transit bill) is split with the largest-remainder method so the
shares add up to the bill exactly: not a grosz lost or created.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from peerpool.errors import BillingError

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


def to_cents(amount: Decimal) -> int:
    """An amount already rounded to the grosz as an integer number of grosz."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise BillingError(f"amount {amount} is not a whole number of grosz; round it before splitting")
    return int(cents)


def largest_remainder(total: Decimal, weights: Mapping[str, Decimal | Fraction]) -> dict[str, Decimal]:
    """Split ``total`` (whole grosz, >= 0) over the keys in proportion to ``weights``, exactly.

    Each key first gets the floor of its exact share in grosz; the grosz left over go one each
    to the keys with the largest remainders (ties to the smaller key, so the result never
    depends on input order). The shares always add up to ``total``.
    """
    return {key: part.amount for key, part in largest_remainder_detail(total, weights).items()}


class Share:
    """One key's part of a largest-remainder split, with the steps shown in the evidence."""

    __slots__ = ("amount", "exact_cents", "floor_cents", "got_extra_grosz")

    def __init__(self, exact_cents: Fraction, floor_cents: int, got_extra_grosz: bool) -> None:
        self.exact_cents = exact_cents
        self.floor_cents = floor_cents
        self.got_extra_grosz = got_extra_grosz
        self.amount = (Decimal(floor_cents + int(got_extra_grosz)) / 100).quantize(GROSZ)


def largest_remainder_detail(total: Decimal, weights: Mapping[str, Decimal | Fraction]) -> dict[str, Share]:
    """``largest_remainder`` with each key's exact share, floor and whether it got a left-over grosz."""
    total_cents = to_cents(total)
    if total_cents < 0:
        raise BillingError(f"cannot split a negative amount ({total}) by largest remainder")
    fractions = {key: Fraction(w) for key, w in weights.items()}
    if any(w < 0 for w in fractions.values()):
        bad = sorted(key for key, w in fractions.items() if w < 0)
        raise BillingError(f"weights must be >= 0; negative for {', '.join(bad)}")
    weight_sum = sum(fractions.values(), Fraction(0))
    if weight_sum == 0:
        if total_cents:
            raise BillingError(
                f"cannot share {total} by weights that are all zero ({len(fractions)} keys); "
                "check that the month has usage to share the bill by"
            )
        return {key: Share(Fraction(0), 0, False) for key in fractions}
    exact = {key: total_cents * w / weight_sum for key, w in fractions.items()}
    floors = {key: v.numerator // v.denominator for key, v in exact.items()}
    left = total_cents - sum(floors.values())
    order = sorted(exact, key=lambda key: (-(exact[key] - floors[key]), key))
    extra = set(order[:left])
    return {key: Share(exact[key], floors[key], key in extra) for key in fractions}


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
