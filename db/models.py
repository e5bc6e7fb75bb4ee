"""SQLAlchemy models: the tables of the lending service, with their integrity rules."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from lending.access import Role
from lending.decision_stats import BAD_AFTER_DAYS
from lending.states import (
    ApplicationStatus,
    DecisionOutcome,
    LoanStatus,
    ReminderChannel,
    ReminderStatus,
)
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

# Stable constraint names, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2)
Rate = Numeric(9, 6)
Score = Numeric(8, 4)  # 0 to 1000, four decimals


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A text column limited to the enum's values by a CHECK constraint (easy to extend later)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    @classmethod
    def of(cls, **values: Any) -> Self:
        """An instance holding ``values`` as the ORM holds a row it loaded: straight in the
        instance's dictionary, with no attribute event per column and nothing pending. For rows
        that statements write or read (db.lean), never the session's unit of work; the
        constructor costs about ten times as much per column."""
        made: Self = inspect(cls).class_manager.new_instance()  # type: ignore[assignment]
        made.__dict__.update(values)
        return made


class LoanProduct(Base):
    """A loan product: the bounds and terms an application is made against."""

    __tablename__ = "loan_products"
    __table_args__ = (
        CheckConstraint("code ~ '^[A-Z0-9_-]{2,32}$'", name="code_format"),
        CheckConstraint("min_amount > 0 AND max_amount >= min_amount", name="amount_bounds"),
        CheckConstraint(
            "min_term_months >= 1 AND max_term_months >= min_term_months", name="term_bounds"
        ),
        # lending.repayment.MAX_TERM_MONTHS: what bounds a schedule's length (and a query's cost).
        CheckConstraint("max_term_months <= 600", name="term_within_limit"),
        CheckConstraint(
            "annual_interest_rate >= 0 AND annual_interest_rate <= 100", name="rate_range"
        ),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    currency: Mapped[str] = mapped_column(String(3))
    min_amount: Mapped[Decimal] = mapped_column(Money)
    max_amount: Mapped[Decimal] = mapped_column(Money)
    min_term_months: Mapped[int] = mapped_column(Integer)
    max_term_months: Mapped[int] = mapped_column(Integer)
    annual_interest_rate: Mapped[Decimal] = mapped_column(Rate)
    amortization: Mapped[AmortizationMethod] = mapped_column(
        _enum(AmortizationMethod, "amortization")
    )
    frequency: Mapped[RepaymentFrequency] = mapped_column(_enum(RepaymentFrequency, "frequency"))
    day_count: Mapped[DayCount] = mapped_column(_enum(DayCount, "day_count"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    # An APPROVED decision with a score below this is refused (DOMAIN: Assessment).
    refer_below_score: Mapped[Decimal | None] = mapped_column(Score)
    assessment_required: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Applicant(Base):
    """A person applying for loans, identified by email compared case-insensitively."""

    __tablename__ = "applicants"
    __table_args__ = (
        Index("uq_applicants_email_lower", func.lower(text("email")), unique=True),
        Index("ix_applicants_created_at_id", "created_at", "id"),
        CheckConstraint("length(full_name) BETWEEN 1 AND 200", name="full_name_length"),
        CheckConstraint("length(email) BETWEEN 3 AND 254", name="email_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    applications: Mapped[list[LoanApplication]] = relationship(
        back_populates="applicant", lazy="raise"
    )


class LoanApplication(Base):
    """An application for a loan; its status follows the transition table in lending.states."""

    __tablename__ = "loan_applications"
    __table_args__ = (
        CheckConstraint("amount_requested > 0", name="amount_positive"),
        CheckConstraint("term_months >= 1", name="term_positive"),
        CheckConstraint(
            "declared_monthly_income IS NULL OR declared_monthly_income > 0",
            name="income_positive",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        # At most one open application per applicant, also under concurrent inserts.
        Index(
            "uq_loan_applications_one_open_per_applicant",
            "applicant_id",
            unique=True,
            postgresql_where=text("status IN ('SUBMITTED', 'IN_REVIEW')"),
        ),
        Index("ix_loan_applications_submitted_at_id", "submitted_at", "id"),
        Index("ix_loan_applications_amount_requested_id", "amount_requested", "id"),
        Index("ix_loan_applications_status_submitted_at_id", "status", "submitted_at", "id"),
        Index(
            "ix_loan_applications_applicant_id_submitted_at_id",
            "applicant_id",
            "submitted_at",
            "id",
        ),
        Index("ix_loan_applications_product_id", "product_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("applicants.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_products.id"))
    amount_requested: Mapped[Decimal] = mapped_column(Money)
    term_months: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(Text)
    declared_monthly_income: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[ApplicationStatus] = mapped_column(
        _enum(ApplicationStatus, "application_status")
    )
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    submitted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    applicant: Mapped[Applicant] = relationship(back_populates="applications", lazy="raise")
    product: Mapped[LoanProduct] = relationship(lazy="raise")


class Decision(Base):
    """An outcome recorded on an application; append-only (the database refuses changes)."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(
            "outcome = 'APPROVED' OR (approved_amount IS NULL "
            "AND annual_interest_rate IS NULL AND term_months IS NULL)",
            name="terms_only_when_approved",
        ),
        CheckConstraint("approved_amount IS NULL OR approved_amount > 0", name="amount_positive"),
        CheckConstraint("term_months IS NULL OR term_months >= 1", name="term_positive"),
        CheckConstraint(
            "annual_interest_rate IS NULL OR annual_interest_rate BETWEEN 0 AND 100",
            name="rate_range",
        ),
        CheckConstraint("length(reason) BETWEEN 1 AND 2000", name="reason_length"),
        CheckConstraint("(score IS NULL) = (model IS NULL)", name="assessment_complete"),
        CheckConstraint("score IS NULL OR score BETWEEN 0 AND 1000", name="score_range"),
        Index("ix_decisions_application_id_decided_at_id", "application_id", "decided_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_applications.id"))
    outcome: Mapped[DecisionOutcome] = mapped_column(_enum(DecisionOutcome, "decision_outcome"))
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    approved_amount: Mapped[Decimal | None] = mapped_column(Money)
    annual_interest_rate: Mapped[Decimal | None] = mapped_column(Rate)
    term_months: Mapped[int | None] = mapped_column(Integer)
    # The assessment behind the decision, if one was given (its factors: AssessmentFactor).
    score: Mapped[Decimal | None] = mapped_column(Score)
    model: Mapped[str | None] = mapped_column(String(100))
    evidence: Mapped[list[str] | None] = mapped_column(JSONB)


class Loan(Base):
    """A loan created by an APPROVED decision, with the approved (or requested) terms."""

    __tablename__ = "loans"
    __table_args__ = (
        CheckConstraint("principal > 0", name="principal_positive"),
        CheckConstraint("term_months >= 1", name="term_positive"),
        CheckConstraint("term_months <= 600", name="term_within_limit"),
        CheckConstraint(
            "annual_interest_rate >= 0 AND annual_interest_rate <= 100", name="rate_range"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(
            "maturity_date IS NULL OR disbursed_on IS NULL OR maturity_date > disbursed_on",
            name="maturity_after_disbursement",
        ),
        Index("ix_loans_applicant_id_id", "applicant_id", "id"),
        Index("ix_loans_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("loan_applications.id"), unique=True)
    applicant_id: Mapped[int] = mapped_column(ForeignKey("applicants.id"))
    principal: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    annual_interest_rate: Mapped[Decimal] = mapped_column(Rate)
    term_months: Mapped[int] = mapped_column(Integer)
    amortization: Mapped[AmortizationMethod] = mapped_column(
        _enum(AmortizationMethod, "amortization")
    )
    frequency: Mapped[RepaymentFrequency] = mapped_column(_enum(RepaymentFrequency, "frequency"))
    day_count: Mapped[DayCount] = mapped_column(_enum(DayCount, "day_count"))
    status: Mapped[LoanStatus] = mapped_column(_enum(LoanStatus, "loan_status"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    approved_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    disbursed_on: Mapped[date | None] = mapped_column(Date)
    maturity_date: Mapped[date | None] = mapped_column(Date)
    # Why and when a loan was cancelled or written off; what was written off; the interest
    # waived by an early settlement (kept here: instalments are never edited).
    closed_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    written_off_amount: Mapped[Decimal | None] = mapped_column(Money)
    settlement_rebate: Mapped[Decimal | None] = mapped_column(Money)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The principal and interest its allocations hold (payments not reversed), kept with them
    # (db.repositories.servicing.replace_allocations): a portfolio sums loans, not allocations.
    principal_paid: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    interest_paid: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))


class Installment(Base):
    """One scheduled instalment of a disbursed loan, as booked (amounts due never change)."""

    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("loan_id", "number", name="uq_installments_loan_id_number"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("principal_due >= 0 AND interest_due >= 0", name="amounts_not_negative"),
        CheckConstraint("balance_after >= 0", name="balance_not_negative"),
        Index("ix_installments_due_date_id", "due_date", "id"),
        # An overdue list reads the unsettled in due order, and those settled after its day; a
        # portfolio sums the unsettled per loan from the index alone.
        Index(
            "ix_installments_unsettled_due_date_id",
            "due_date",
            "id",
            postgresql_where=text("settled_on IS NULL"),
            postgresql_include=["loan_id", "principal_due", "interest_due"],
        ),
        # Instalments once more than 30 days past due and settled since: with the unsettled
        # ones, the loans ever late (lending.decision_stats.BAD_AFTER_DAYS).
        Index(
            "ix_installments_settled_late_due_date",
            "due_date",
            postgresql_where=text(f"settled_on > due_date + {BAD_AFTER_DAYS + 1}"),
            postgresql_include=["loan_id"],
        ),
        Index(
            "ix_installments_settled_on_due_date",
            "settled_on",
            "due_date",
            postgresql_where=text("settled_on IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    number: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    principal_due: Mapped[Decimal] = mapped_column(Money)
    interest_due: Mapped[Decimal] = mapped_column(Money)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    # Kept with the allocations (lending.allocation.settled_on): the day from which nothing is
    # owed on it; null while something is.
    settled_on: Mapped[date | None] = mapped_column(Date)


class Payment(Base):
    """Money received on a loan. Never deleted or edited: a mistake is reversed."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(reversed_at IS NULL) = (reversed_by IS NULL)", name="reversal_complete"),
        Index(
            "ix_payments_loan_id_received_on_recorded_at", "loan_id", "received_on", "recorded_at"
        ),
        Index(
            "uq_payments_loan_id_reference",
            "loan_id",
            "reference",
            unique=True,
            postgresql_where=text("reference IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    reference: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)
    received_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by: Mapped[str | None] = mapped_column(String(200))
    reversed_reason: Mapped[str | None] = mapped_column(Text)
    # An early settlement: it pays what is left less the interest not yet accrued.
    settlement: Mapped[bool] = mapped_column(server_default=text("false"))


class PaymentAllocation(Base):
    """How much of a payment went to an instalment's interest and principal (derived data)."""

    __tablename__ = "payment_allocations"
    __table_args__ = (
        CheckConstraint(
            "principal >= 0 AND interest >= 0 AND interest_waived >= 0 "
            "AND principal + interest + interest_waived > 0",
            name="amounts_positive",
        ),
        Index("ix_payment_allocations_loan_id", "loan_id"),
        Index("ix_payment_allocations_payment_id", "payment_id"),
        Index("ix_payment_allocations_installment_id", "installment_id", "received_on"),
        # What was received after a day, taken back from the loans' totals (a portfolio).
        Index(
            "ix_payment_allocations_received_on",
            "received_on",
            postgresql_include=["loan_id", "principal", "interest"],
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    installment_id: Mapped[int] = mapped_column(ForeignKey("installments.id"))
    # Copied from the payment so "paid as of a date" is one indexed range, no join.
    received_on: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column(Money)
    interest: Mapped[Decimal] = mapped_column(Money)
    # Interest an early settlement waived on this instalment (paid by nobody, owed no more).
    interest_waived: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))


class AssessmentFactor(Base):
    """One factor of the assessment behind a decision; append-only like the decision."""

    __tablename__ = "assessment_factors"
    __table_args__ = (
        UniqueConstraint("decision_id", "position", name="uq_assessment_factors_decision_id"),
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    contribution: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    detail: Mapped[str | None] = mapped_column(String(500))


class Reminder(Base):
    """A reminder on an overdue instalment: an outbox row, QUEUED until delivery is reported."""

    __tablename__ = "reminders"
    __table_args__ = (
        # One reminder per instalment, channel and (UTC) day, also under concurrent requests.
        Index(
            "uq_reminders_installment_id_channel_requested_on",
            "installment_id",
            "channel",
            "requested_on",
            unique=True,
        ),
        Index("ix_reminders_loan_id_requested_at_id", "loan_id", "requested_at", "id"),
        CheckConstraint("length(message) BETWEEN 1 AND 1000", name="message_length"),
        CheckConstraint(
            "(status = 'QUEUED') = (reported_at IS NULL)", name="reported_once_delivered"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    installment_id: Mapped[int] = mapped_column(ForeignKey("installments.id"))
    channel: Mapped[ReminderChannel] = mapped_column(_enum(ReminderChannel, "reminder_channel"))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[ReminderStatus] = mapped_column(
        _enum(ReminderStatus, "reminder_status"), server_default=text("'QUEUED'")
    )
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    requested_on: Mapped[date] = mapped_column(Date)
    reported_by: Mapped[str | None] = mapped_column(String(200))
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(String(1000))


class ApiKey(Base):
    """An API key: stored only as a hash, with the name recorded as the actor."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        CheckConstraint("key_hash ~ '^[0-9a-f]{64}$'", name="key_hash_format"),
        CheckConstraint(
            "(budget_capacity IS NULL) = (budget_restore IS NULL)"
            " AND (budget_capacity IS NULL OR (budget_capacity > 0 AND budget_restore > 0))",
            name="budget_complete",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Its CHECK constraint (migration 0003) admits the staff roles only: borrowers have tokens.
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    demo: Mapped[bool] = mapped_column(server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The key's own bucket of cost points (lending.access.Budget); its role's when null.
    budget_capacity: Mapped[int | None] = mapped_column(BigInteger)
    budget_restore: Mapped[int | None] = mapped_column(BigInteger)


class IdempotencyKey(Base):
    """A mutation's idempotency key, per actor, with the result of its first execution."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint("length(key) BETWEEN 1 AND 255", name="key_length"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    actor: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    operation: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEvent(Base):
    """One change, hash-chained per application; the database refuses edits and deletions."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_chain_id", "chain", "id"),
        CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="hash_format"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    chain: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last hash of an audit chain, moved on by a trigger as each event is appended.

    Locking a chain's head row makes appends to that chain take turns; NULL until the chain's
    first event.
    """

    __tablename__ = "audit_chain_heads"
    __table_args__ = (CheckConstraint("last_hash ~ '^[0-9a-f]{64}$'", name="last_hash_format"),)

    chain: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_hash: Mapped[str | None] = mapped_column(String(64))
