"""The tender's input file (``tiers.toml``): offers, price tiers, sites and options.

Money and shares are written as strings ("0.80") so they stay exact; see
``examples/tender_tiers.toml`` for every field. Errors name the file, the entry and the fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from peerpool.economics.commit import Offer
from peerpool.economics.errors import EconomicsError
from peerpool.economics.forecast import month_index
from peerpool.economics.pricing import PriceSchedule, PriceTier
from peerpool.errors import ConfigError, InputError


@dataclass(frozen=True)
class TenderSettings:
    offers: tuple[Offer, ...]
    start_month: str | None = None  # first month of the new contracts; default: after the history
    currency: str = "PLN"
    alone_price: str = ""  # provider whose buy-alone price is v(S) and the "alone" column
    max_providers: int = 3
    min_share: Decimal = Decimal("0.2")
    share_step: Decimal = Decimal("0.05")
    site_shares: dict[str, Decimal] = field(default_factory=dict)
    reserved_mbps: dict[str, Decimal] = field(default_factory=dict)
    shapley_rel_target: float = 0.005
    shapley_exact_max: int = 14
    shapley_time_budget_s: float = 600.0
    min_month_coverage: Decimal = Decimal("0.8")

    def alone_offer(self) -> Offer:
        if not self.alone_price:
            return self.offers[0]
        for offer in self.offers:
            if offer.provider == self.alone_price:
                return offer
        raise ConfigError(f"tender.alone_price names {self.alone_price!r}, which is not an offer's provider")


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        raise ConfigError(f'{where}: write money and shares as strings ("{value}") so they stay exact')
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(f"{where}: {value!r} is not a number") from exc


def _offer(raw: dict[str, Any], where: str) -> Offer:
    known = {
        "provider",
        "tiers",
        "min_term_months",
        "port_fee_monthly",
        "cross_connect_fee_monthly",
        "sites",
        "port_mbps",
        "cpi_index",
        "indexation_month",
        "commit_step_mbps",
        "fixed_monthly",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    if not raw.get("provider"):
        raise ConfigError(f"{where}: every offer needs a provider name")
    provider = str(raw["provider"])
    where = f"{where} ({provider})"
    tiers_raw = raw.get("tiers")
    if not isinstance(tiers_raw, list) or not tiers_raw:
        raise ConfigError(
            f"{where}: add at least one [[offers.tiers]] with min_commit_mbps and price_per_mbps"
        )
    tiers = []
    for j, tier in enumerate(tiers_raw):
        tw = f"{where} tier {j + 1}"
        for key in ("min_commit_mbps", "price_per_mbps", "burst_price_per_mbps"):
            if key not in tier:
                raise ConfigError(f"{tw}: missing {key}")
        tiers.append(
            PriceTier(
                _decimal(tier["min_commit_mbps"], f"{tw} min_commit_mbps"),
                _decimal(tier["price_per_mbps"], f"{tw} price_per_mbps"),
                _decimal(tier["burst_price_per_mbps"], f"{tw} burst_price_per_mbps"),
            )
        )
    try:
        schedule = PriceSchedule(
            tuple(tiers), _decimal(raw.get("fixed_monthly", "0"), f"{where} fixed_monthly")
        )
        return Offer(
            provider=provider,
            schedule=schedule,
            min_term_months=int(raw.get("min_term_months", 12)),
            port_fee_monthly=_decimal(raw.get("port_fee_monthly", "0"), f"{where} port_fee_monthly"),
            cross_connect_fee_monthly=_decimal(
                raw.get("cross_connect_fee_monthly", "0"), f"{where} cross_connect_fee_monthly"
            ),
            sites=tuple(str(s) for s in raw.get("sites", ())),
            port_mbps=_decimal(raw["port_mbps"], f"{where} port_mbps") if "port_mbps" in raw else None,
            cpi_index=_decimal(raw.get("cpi_index", "100"), f"{where} cpi_index"),
            indexation_month=int(raw.get("indexation_month", 1)),
            commit_step_mbps=_decimal(raw.get("commit_step_mbps", "1"), f"{where} commit_step_mbps"),
        )
    except EconomicsError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_tiers(path: Path) -> TenderSettings:
    """Read and validate a tiers file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such tiers file; see examples/tender_tiers.toml") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    offers_raw = raw.get("offers")
    if not isinstance(offers_raw, list) or not offers_raw:
        raise ConfigError(f"{path}: no [[offers]]; add one per provider (see examples/tender_tiers.toml)")
    offers = tuple(_offer(o, f"{path}: offers[{i + 1}]") for i, o in enumerate(offers_raw))
    names = [o.provider for o in offers]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two offers have the same provider name; names must be unique")
    tender = raw.get("tender", {})
    start = tender.get("start_month")
    if start is not None:
        try:
            month_index(str(start))
        except EconomicsError as exc:
            raise ConfigError(f"{path}: tender.start_month: {exc}") from exc
    sites = {str(k): _decimal(v, f"{path}: sites.{k}") for k, v in raw.get("sites", {}).items()}
    if sites and sum(sites.values()) != 1:
        raise ConfigError(f"{path}: [sites] shares add up to {sum(sites.values())}, not 1")
    reserved = {str(k): _decimal(v, f"{path}: reserved.{k}") for k, v in raw.get("reserved", {}).items()}
    settings = TenderSettings(
        offers=offers,
        start_month=str(start) if start is not None else None,
        currency=str(tender.get("currency", "PLN")),
        alone_price=str(tender.get("alone_price", "")),
        max_providers=int(tender.get("max_providers", 3)),
        min_share=_decimal(tender.get("min_share", "0.2"), f"{path}: tender.min_share"),
        share_step=_decimal(tender.get("share_step", "0.05"), f"{path}: tender.share_step"),
        site_shares=sites,
        reserved_mbps=reserved,
        shapley_rel_target=float(
            _decimal(tender.get("shapley_rel_target", "0.005"), "tender.shapley_rel_target")
        ),
        shapley_exact_max=int(tender.get("shapley_exact_max", 14)),
        shapley_time_budget_s=float(tender.get("shapley_time_budget_s", 600)),
        min_month_coverage=_decimal(
            tender.get("min_month_coverage", "0.8"), f"{path}: tender.min_month_coverage"
        ),
    )
    settings.alone_offer()
    if not 1 <= settings.max_providers <= 3:
        raise ConfigError(f"{path}: tender.max_providers must be 1, 2 or 3")
    return settings
