"""Loan products."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.lean import one
from db.models import LoanProduct
from db.records import ProductRecord
from db.repositories import records


async def list_products(session: AsyncSession, *, active_only: bool) -> Sequence[ProductRecord]:
    """Products ordered by code."""
    stmt = select(LoanProduct).order_by(LoanProduct.code)
    if active_only:
        stmt = stmt.where(LoanProduct.active.is_(True))
    return await records(session, stmt)


_BY_CODE = select(LoanProduct).where(LoanProduct.code == bindparam("p_code"))


async def product_by_code(session: AsyncSession, code: str) -> LoanProduct | None:
    """The product with ``code``, if any."""
    return await one(session, _BY_CODE, {"p_code": code}, LoanProduct)


async def add_product(session: AsyncSession, product: LoanProduct) -> LoanProduct:
    """Insert a product."""
    session.add(product)
    await session.flush()
    return product
