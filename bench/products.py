"""The demo products as the book draws from them: their rows, amounts, terms and purposes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bench.columns import Row
from bench.distributions import (
    MAX_TERM,
    MIN_TERM,
    PRODUCTS_CREATED,
    PROFILES,
    Picker,
    Profile,
    weighted,
)
from lending.money import quantum
from lending.services.demo import demo_products
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency


@dataclass(frozen=True)
class Product:
    """A product row and what the generator needs of it."""

    id: int
    code: str
    currency: str
    annual_interest_rate: Decimal
    amortization: AmortizationMethod
    frequency: RepaymentFrequency
    day_count: DayCount
    amounts: Picker
    amount_grid: tuple[Decimal, ...]
    terms: Picker
    term_grid: tuple[int, ...]
    purposes: tuple[str, ...]
    profile: Profile
    row: Row


def products() -> list[Product]:
    """The demo products, numbered from 1, each with the amounts and terms its loans take."""
    found = []
    for number, model in enumerate(demo_products(), start=1):
        profile = PROFILES[model.code]
        amounts = [
            (Decimal(value).quantize(quantum(model.currency)), weight)
            for value, weight in weighted(profile.amounts)
            if model.min_amount <= Decimal(value) <= model.max_amount
        ]
        low = max(model.min_term_months, MIN_TERM)
        high = min(model.max_term_months, MAX_TERM)
        terms = [(int(t), w) for t, w in weighted(profile.terms) if low <= int(t) <= high]
        if not amounts or not terms:
            raise RuntimeError(f"no amounts or terms fit product {model.code}")
        row = (
            number,
            model.code,
            model.name,
            model.description,
            model.currency,
            model.min_amount,
            model.max_amount,
            model.min_term_months,
            model.max_term_months,
            model.annual_interest_rate,
            model.amortization.value,
            model.frequency.value,
            model.day_count.value,
            model.active,
            PRODUCTS_CREATED,
        )
        found.append(
            Product(
                id=number,
                code=model.code,
                currency=model.currency,
                annual_interest_rate=model.annual_interest_rate,
                amortization=model.amortization,
                frequency=model.frequency,
                day_count=model.day_count,
                amounts=Picker(amounts),
                amount_grid=tuple(sorted(value for value, _ in amounts)),
                terms=Picker(terms),
                term_grid=tuple(sorted(term for term, _ in terms)),
                purposes=tuple(profile.purposes.split("; ")),
                profile=profile,
                row=row,
            )
        )
    return found
