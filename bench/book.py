"""The book before servicing: applicants, their applications, decisions and loans, as rows."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from bench.columns import Row
from bench.distributions import (
    APPLICATIONS_PER_APPLICANT,
    APPROVE_REASONS,
    AUTO_RETIRED,
    BACKLOG_DAYS,
    BACKLOG_SHARE,
    CLOSED_MIX,
    CUTOFF,
    DECIDERS,
    HISTORY_START,
    INTL_DOMAINS,
    INTL_FIRST,
    INTL_LAST,
    KE_DOMAINS,
    KE_FIRST,
    KE_LAST,
    OPEN_STATUSES,
    REFER_REASONS,
    REFER_SHARE,
    REFERENCE_DATE,
    REJECT_REASONS,
    US_AREAS,
    WITHDRAW_REASONS,
    Picker,
    References,
    later,
    time_on,
)
from bench.products import Product, products
from lending.access import UNLIMITED_BUDGET, Role, hash_api_key
from lending.money import quantum
from lending.states import ApplicationStatus, DecisionOutcome
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

# The admin key of the generated database, the one bench.run's clients send.
BENCH_KEY = "lnd_bench_admin"
BENCH_KEY_NAME = "bench"


@dataclass(slots=True)
class Person:
    full_name: str
    email: str
    phone: str | None
    created_at: datetime
    order: int
    id: int = 0


@dataclass(slots=True)
class DecisionPlan:
    application: ApplicationPlan
    step: int
    outcome: DecisionOutcome
    reason: str
    decided_by: str
    decided_at: datetime
    approved_amount: Decimal | None = None
    annual_interest_rate: Decimal | None = None
    term_months: int | None = None


@dataclass(slots=True)
class LoanPlan:
    """An approved application's loan; servicing (batch by batch) decides the rest.

    Its terms are those of ``lending.repayment.LoanTerms``, so ``loan_schedule`` books it.
    """

    application: ApplicationPlan
    product: Product
    principal: Decimal
    annual_interest_rate: Decimal
    term_months: int
    approved_at: datetime
    disbursed_on: date | None
    id: int = 0
    reference: str = ""

    @property
    def amortization(self) -> AmortizationMethod:
        return self.product.amortization

    @property
    def frequency(self) -> RepaymentFrequency:
        return self.product.frequency

    @property
    def day_count(self) -> DayCount:
        return self.product.day_count

    @property
    def currency(self) -> str:
        return self.product.currency


@dataclass(slots=True)
class ApplicationPlan:
    person: Person
    product: Product
    amount: Decimal
    term_months: int
    purpose: str | None
    income: Decimal | None
    status: ApplicationStatus
    submitted_at: datetime
    order: int
    updated_at: datetime = CUTOFF
    reference: str = ""
    version: int = 1
    withdrawal_reason: str | None = None
    decisions: list[DecisionPlan] = field(default_factory=list)
    loan: LoanPlan | None = None
    id: int = 0


@dataclass
class Book:
    """Everything before servicing, with ids assigned in chronological order."""

    products: list[Product]
    people: list[Person]
    applications: list[ApplicationPlan]
    decisions: list[DecisionPlan]
    loans: list[LoanPlan]


class BookBuilder:
    """Draws applicants with their applications until the book holds the wanted loans."""

    def __init__(self, seed: int, loans: int) -> None:
        self.rng = random.Random(seed)
        self.wanted = loans
        self.products = products()
        by_code = {p.code: p for p in self.products}
        self.personal = by_code["PERSONAL-USD"]
        self.intl_products = Picker(
            [(by_code["PERSONAL-USD"], 60), (by_code["SMALL-BIZ-USD"], 25),
             (by_code["AUTO-USD-2019"], 15)]
        )  # fmt: skip
        self.ke_products = Picker([(by_code["MICRO-KES"], 90), (by_code["SMALL-BIZ-USD"], 10)])
        self.per_person = Picker(APPLICATIONS_PER_APPLICANT)
        self.closed = Picker(CLOSED_MIX)
        self.intl_domains = Picker(INTL_DOMAINS)
        self.ke_domains = Picker(KE_DOMAINS)
        self.emails: dict[str, int] = {}
        self.must_have = [
            ApplicationStatus.SUBMITTED,
            ApplicationStatus.IN_REVIEW,
            ApplicationStatus.REJECTED,
            ApplicationStatus.WITHDRAWN,
        ]
        self.people: list[Person] = []
        self.applications: list[ApplicationPlan] = []
        self.loans: list[LoanPlan] = []

    def build(self) -> Book:
        while len(self.loans) < self.wanted:
            self._person()
        return self._finish()

    # -- people

    def _person(self) -> None:
        rng = self.rng
        kenyan = rng.random() < 0.3
        first = rng.choice(KE_FIRST if kenyan else INTL_FIRST)
        last = rng.choice(KE_LAST if kenyan else INTL_LAST)
        domain = (self.ke_domains if kenyan else self.intl_domains)(rng)
        base = f"{_ascii(first)}.{_ascii(last)}"
        seen = self.emails.get(f"{base}@{domain}", 0)
        self.emails[f"{base}@{domain}"] = seen + 1
        local = base if seen == 0 else f"{base}{seen + 1}"
        if rng.random() < 0.25:
            phone = None
        elif kenyan:
            phone = f"+254 7{rng.randrange(10, 100)} 555 {rng.randrange(100, 1000)}"
        else:
            phone = f"+1 {rng.choice(US_AREAS)} 555 {rng.randrange(1000, 10000):04d}"
        count = self.per_person(rng)
        # The first applicants take one of each rarer status, so even a tiny book has them all.
        forced = self.must_have.pop(0) if self.must_have else None
        dates = self._dates(count)
        person = Person(f"{first} {last}", f"{local}@{domain}", phone, CUTOFF, len(self.people))
        self.people.append(person)
        for n, day in enumerate(dates):
            status: ApplicationStatus = self.closed(rng)
            latest = n == len(dates) - 1
            # The review backlog: some recent applications wait for weeks or months.
            recent = (REFERENCE_DATE - day).days <= BACKLOG_DAYS
            if latest and recent and rng.random() < BACKLOG_SHARE:
                status = rng.choice(OPEN_STATUSES)
            if forced is not None and (latest if forced in OPEN_STATUSES else n == 0):
                status = forced
            # Nothing after the cutoff, on the reference date itself either.
            submitted = time_on(day, rng, 7, 17 if day == REFERENCE_DATE else 20)
            if n == 0:
                person.created_at = submitted
            self._application(person, status, submitted, kenyan)
            if len(self.loans) >= self.wanted:
                return

    def _dates(self, count: int) -> list[date]:
        """Submission dates, oldest first, at least 45 days apart (time to close the earlier)."""
        rng = self.rng
        span = (REFERENCE_DATE - HISTORY_START).days
        # A growing book: more applications in recent months than three years ago.
        dates = [HISTORY_START + timedelta(days=int(span * rng.random() ** 0.8))]
        while len(dates) < count:
            later = dates[-1] + timedelta(days=rng.randint(45, 400))
            if later > REFERENCE_DATE:
                break
            dates.append(later)
        return dates

    # -- applications and decisions

    def _application(
        self, person: Person, status: ApplicationStatus, submitted: datetime, kenyan: bool
    ) -> None:
        rng = self.rng
        product: Product = (self.ke_products if kenyan else self.intl_products)(rng)
        if product.code == "AUTO-USD-2019" and submitted.date() >= AUTO_RETIRED:
            product = self.personal
        amount: Decimal = product.amounts(rng)
        term: int = product.terms(rng)
        profile = product.profile
        purpose = None if rng.random() < 0.05 else rng.choice(product.purposes)
        income = None
        if rng.random() < 0.9:
            value = int(amount) * rng.randint(250, 900) // (term * 100)
            value = max(value, profile.income_floor) // profile.income_step * profile.income_step
            income = Decimal(value).quantize(quantum(product.currency))
        app = ApplicationPlan(
            person=person,
            product=product,
            amount=amount,
            term_months=term,
            purpose=purpose,
            income=income,
            status=status,
            submitted_at=submitted,
            order=len(self.applications),
            updated_at=submitted,
        )
        self.applications.append(app)
        # Referred first? Then the final step (decision or withdrawal) some days later. Whatever
        # would happen after the cutoff has not happened yet: the application is still open.
        referred_at = None
        if status is ApplicationStatus.IN_REVIEW or rng.random() < REFER_SHARE.get(status, 0.0):
            referred_at = later(submitted, rng, 4, 72)
            final_at = later(referred_at, rng, 48, 504)
        else:
            final_at = later(submitted, rng, 2, 168)
        if referred_at is not None and referred_at > CUTOFF:
            referred_at = None
            status = ApplicationStatus.SUBMITTED
        if final_at > CUTOFF and status not in OPEN_STATUSES:
            status = ApplicationStatus.SUBMITTED
            if referred_at is not None:
                status = ApplicationStatus.IN_REVIEW
        if status is ApplicationStatus.SUBMITTED:
            referred_at = None
        app.status = status
        if referred_at is not None:
            self._decide(app, DecisionOutcome.REFERRED, referred_at)
        if status is ApplicationStatus.WITHDRAWN:
            app.version += 1
            app.updated_at = final_at
            app.withdrawal_reason = rng.choice(WITHDRAW_REASONS)
        elif status is ApplicationStatus.REJECTED:
            self._decide(app, DecisionOutcome.REJECTED, final_at)
        elif status is ApplicationStatus.APPROVED:
            self._approve(app, final_at)

    def _decide(self, app: ApplicationPlan, outcome: DecisionOutcome, at: datetime) -> DecisionPlan:
        rng = self.rng
        reasons = {
            DecisionOutcome.APPROVED: APPROVE_REASONS,
            DecisionOutcome.REFERRED: REFER_REASONS,
            DecisionOutcome.REJECTED: REJECT_REASONS,
        }[outcome]
        decision = DecisionPlan(
            app, len(app.decisions), outcome, rng.choice(reasons), rng.choice(DECIDERS), at
        )
        app.decisions.append(decision)
        app.version += 1
        app.updated_at = at
        return decision

    def _approve(self, app: ApplicationPlan, at: datetime) -> None:
        rng = self.rng
        product = app.product
        decision = self._decide(app, DecisionOutcome.APPROVED, at)
        principal, rate, term = app.amount, product.annual_interest_rate, app.term_months
        roll = rng.random()
        smaller = [a for a in product.amount_grid if a < app.amount]
        shorter = [t for t in product.term_grid if t < app.term_months]
        if roll < 0.08 and smaller:
            principal = decision.approved_amount = smaller[max(0, len(smaller) - rng.randint(1, 2))]
            decision.reason = "Approved at a reduced amount to keep the instalment affordable."
        elif roll < 0.12 and product.annual_interest_rate > 2:
            cut = Decimal(rng.choice(("0.250000", "0.500000", "0.750000", "1.000000", "1.500000")))
            rate = decision.annual_interest_rate = product.annual_interest_rate - cut
            decision.reason = "Approved at a negotiated rate."
        elif roll < 0.16 and shorter:
            term = decision.term_months = shorter[-1]
            decision.reason = "Good history; term shortened at the applicant's request."
        # Paid out within days; about half of the last 40 days' approvals are still waiting.
        disbursed_on = at.date() + timedelta(days=rng.choice((0, 0, 1, 1, 2, 3, 5)))
        recent = (REFERENCE_DATE - at.date()).days <= 40
        waiting = disbursed_on > REFERENCE_DATE or (recent and rng.random() < 0.55)
        loan = LoanPlan(app, product, principal, rate, term, at, None if waiting else disbursed_on)
        app.loan = loan
        self.loans.append(loan)

    # -- ids in chronological order

    def _finish(self) -> Book:
        people = sorted(self.people, key=lambda p: (p.created_at, p.order))
        for number, person in enumerate(people, start=1):
            person.id = number
        applications = sorted(self.applications, key=lambda a: (a.submitted_at, a.order))
        app_references = References(self.rng, "APP")
        for number, app in enumerate(applications, start=1):
            app.id = number
            app.reference = app_references.next()
        decisions = sorted(
            (d for app in applications for d in app.decisions),
            key=lambda d: (d.decided_at, d.application.id, d.step),
        )
        loans = sorted(self.loans, key=lambda loan: (loan.approved_at, loan.application.id))
        loan_references = References(self.rng, "LN")
        for number, loan in enumerate(loans, start=1):
            loan.id = number
            loan.reference = loan_references.next()
        return Book(self.products, people, applications, decisions, loans)


def build_book(seed: int, loans: int) -> Book:
    """The applicants, applications, decisions and loans of a book with ``loans`` loans."""
    return BookBuilder(seed, loans).build()


def book_rows(book: Book) -> dict[str, list[Row]]:
    """Rows of the tables filled before servicing."""
    applicants = [(p.id, p.full_name, p.email, p.phone, p.created_at) for p in book.people]
    applications = [
        (
            a.id,
            a.reference,
            a.person.id,
            a.product.id,
            a.amount,
            a.term_months,
            a.purpose,
            a.income,
            a.status.value,
            a.withdrawal_reason,
            a.version,
            a.submitted_at,
            a.updated_at,
        )
        for a in book.applications
    ]
    decisions = [
        (
            number,
            d.application.id,
            d.outcome.value,
            d.reason,
            d.decided_by,
            d.decided_at,
            d.approved_amount,
            d.annual_interest_rate,
            d.term_months,
        )
        for number, d in enumerate(book.decisions, start=1)
    ]
    return {
        "loan_products": [p.row for p in book.products],
        "applicants": applicants,
        "loan_applications": applications,
        "decisions": decisions,
    }


def api_key_rows() -> list[Row]:
    # The load generator's key measures throughput: its budget never throttles it.
    unlimited = UNLIMITED_BUDGET.capacity
    return [
        (
            1,
            BENCH_KEY_NAME,
            Role.ADMIN.value,
            hash_api_key(BENCH_KEY),
            False,
            CUTOFF,
            None,
            unlimited,
            unlimited,
        )
    ]


def _ascii(text: str) -> str:
    """``text`` for an email address: "Müller" as "muller", "O'Brien" as "obrien"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == "-")
