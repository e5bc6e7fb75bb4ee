"""The tables the generator fills, in dependency order, with the columns COPY writes to each."""

from __future__ import annotations

from typing import Any

# Tables in dependency order, with the columns copied into them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "loan_products": (
        "id",
        "code",
        "name",
        "description",
        "currency",
        "min_amount",
        "max_amount",
        "min_term_months",
        "max_term_months",
        "annual_interest_rate",
        "amortization",
        "frequency",
        "day_count",
        "active",
        "created_at",
    ),
    "applicants": ("id", "full_name", "email", "phone", "created_at"),
    "loan_applications": (
        "id",
        "reference",
        "applicant_id",
        "product_id",
        "amount_requested",
        "term_months",
        "purpose",
        "declared_monthly_income",
        "status",
        "withdrawal_reason",
        "version",
        "submitted_at",
        "updated_at",
    ),
    "decisions": (
        "id",
        "application_id",
        "outcome",
        "reason",
        "decided_by",
        "decided_at",
        "approved_amount",
        "annual_interest_rate",
        "term_months",
    ),
    "loans": (
        "id",
        "reference",
        "application_id",
        "applicant_id",
        "principal",
        "currency",
        "annual_interest_rate",
        "term_months",
        "amortization",
        "frequency",
        "day_count",
        "status",
        "version",
        "approved_at",
        "disbursed_on",
        "maturity_date",
        "updated_at",
    ),
    "installments": (
        "id",
        "loan_id",
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "balance_after",
    ),
    "payments": (
        "id",
        "loan_id",
        "reference",
        "amount",
        "received_on",
        "recorded_by",
        "recorded_at",
        "reversed_at",
        "reversed_by",
        "reversed_reason",
    ),
    "payment_allocations": (
        "id",
        "loan_id",
        "payment_id",
        "installment_id",
        "received_on",
        "principal",
        "interest",
    ),
    "api_keys": ("id", "name", "role", "key_hash", "demo", "created_at", "revoked_at"),
}
TABLES = tuple(COLUMNS)
# Left empty (listed so the summary shows them).
EMPTY_TABLES = ("audit_events", "idempotency_keys")

Row = tuple[Any, ...]
