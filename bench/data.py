"""Benchmark data: a realistic, reproducible lending book of any size, loaded with COPY.

    python -m bench.data --scale S [--database-url URL] [--seed 7] [--fresh]

Scale 1 is 10,000 loans (with about 13,100 applicants, 14,200 applications, 15,300 decisions,
335,000 instalments, 165,000 payments and 178,000 allocations); every count grows linearly with
the scale. Without ``--database-url`` the
embedded server in ``.pgdata-bench`` is used, with a database ``lending_bench_<scale>`` (dots
replaced by underscores); ``--fresh`` drops and recreates the database first. Without it, a
database already filled for the same scale and seed is kept as it is, and any other non-empty
one is refused. The last line on stdout is the database URL (the embedded server is stopped on
exit; ``EmbeddedPostgres(".pgdata-bench").start()`` brings it back at the same URL).

Everything is derived from ``random.Random`` seeded with the seed, and every date from the fixed
reference date below, so the same scale and seed give the same rows on any day. Schedules come
from ``build_schedule(schedule_terms(...))`` and allocations from ``allocate`` (on-time loans,
whose payments each settle exactly one instalment, get the one allocation per payment that
``allocate`` would give, without calling it).

Loading runs in one transaction: the foreign keys, unique constraints and (non-partial)
secondary indexes of the filled tables are dropped first and re-created from their own catalog
definitions before the commit, so a failure leaves every one of them in place. No trigger is
touched (all of them fire on UPDATE or DELETE only). Identity sequences are moved past the
loaded ids, and the tables are vacuumed and analyzed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy.engine import make_url

from db.embedded import EmbeddedPostgres, admin_connection, ensure_database, with_database
from db.migrate import upgrade_to_head
from db.session import raw_connection
from lending.access import Role, hash_api_key
from lending.allocation import InstallmentDue, PaymentIn, allocate
from lending.demo import demo_products
from lending.money import quantum, round_money
from lending.repayment import installment_count, schedule_terms
from lending.schedule import ScheduledInstallment, build_schedule
from lending.states import ApplicationStatus, DecisionOutcome, LoanStatus
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
PGDATA = ROOT / ".pgdata-bench"

# "Today" for the generated book: every date is relative to it, never to the clock.
REFERENCE_DATE = date(2026, 6, 30)
# Nothing in the book happens after this instant.
CUTOFF = datetime(2026, 6, 30, 18, 0, tzinfo=UTC)
# Applications are spread over the three years before the reference date.
HISTORY_START = date(2023, 7, 1)
PRODUCTS_CREATED = datetime(2023, 6, 1, 9, 0, tzinfo=UTC)
# AUTO-USD-2019 (inactive in the demo products) took its last application the day before.
AUTO_RETIRED = date(2025, 1, 1)

LOANS_PER_SCALE = 10_000
BENCH_KEY = "lnd_bench_admin"
BENCH_KEY_NAME = "bench"
# Loans serviced and copied together (instalments, payments, allocations).
BATCH_LOANS = 2_000
# Recorded as the database's comment once a load commits; bump when the generated rows change.
GENERATOR_VERSION = 1

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


# ---- what the book looks like ----------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How applications to one product look: amounts and terms ("value:weight"), purposes."""

    amounts: str
    terms: str
    purposes: str
    income_floor: int
    income_step: int
    # Payments of round-up payers are rounded up to a multiple of this.
    round_to: int


def weighted(spec: str) -> list[tuple[str, int]]:
    """``"1000:4 1500:2"`` as ``[("1000", 4), ("1500", 2)]``."""
    return [(value, int(weight)) for value, weight in (item.split(":") for item in spec.split())]


PROFILES: dict[str, Profile] = {
    "PERSONAL-USD": Profile(
        amounts="1000:4 1500:4 2000:6 2500:5 3000:7 4000:6 5000:9 6000:5 7500:6 8000:4 10000:8 "
        "12000:4 12500:3 15000:6 18000:2 20000:5 25000:4 30000:3 35000:2 40000:2 45000:1 50000:2",
        terms="12:15 18:10 24:25 36:25 48:10 60:15",
        purposes=(
            "Home renovation; Debt consolidation; Used car; Wedding; Medical expenses;"
            " Tuition; Moving costs; Furniture; Laptop and certification course; Vet bills;"
            " Home solar panels; Family holiday; Emergency roof repair"
        ),
        income_floor=1200,
        income_step=50,
        round_to=10,
    ),
    "SMALL-BIZ-USD": Profile(
        amounts="5000:5 10000:8 15000:7 20000:7 25000:7 30000:6 40000:5 50000:6 60000:4 75000:4 "
        "80000:3 100000:4 120000:2 150000:2 200000:1 250000:1",
        terms="12:10 24:25 36:30 48:15 60:20",
        purposes=(
            "Delivery van; Refrigeration equipment; Point-of-sale terminals;"
            " Second location; Salon refurbishment; Inventory for the holiday season;"
            " Warehouse expansion; Kitchen equipment; Working capital;"
            " Website and online shop"
        ),
        income_floor=3000,
        income_step=100,
        round_to=50,
    ),
    "MICRO-KES": Profile(
        amounts="5000:3 10000:6 15000:6 20000:8 25000:6 30000:7 40000:6 50000:8 60000:5 75000:5 "
        "90000:3 100000:5 120000:3 150000:4 200000:3 250000:2 300000:2 400000:1 500000:1",
        terms="12:50 18:25 24:25",
        purposes=(
            "Stock for a grocery kiosk; Sewing machines; Motorbike repairs; Poultry feed;"
            " Matatu down payment; Dairy cow; Irrigation pump; Market stall stock;"
            " Mobile money float; Greenhouse materials"
        ),
        income_floor=15000,
        income_step=500,
        round_to=100,
    ),
    "AUTO-USD-2019": Profile(
        amounts="8000:3 10000:4 12000:5 15000:7 18000:6 20000:7 22000:4 25000:6 28000:3 30000:4 "
        "35000:3 40000:2 45000:1 50000:1 60000:1",
        terms="24:10 36:30 48:30 60:30",
        purposes="New car; Used car; Family minivan; Pickup truck for work; Electric car",
        income_floor=1800,
        income_step=50,
        round_to=10,
    ),
}

# Shortest and longest term generated (the products allow more; the book keeps to 1-5 years).
MIN_TERM, MAX_TERM = 12, 60

INTL_FIRST = (
    "Amina", "John", "Carlos", "Mei", "Oluwaseun", "Sofia", "Ahmed", "Liam", "Priya", "Kwame",
    "Fatima", "Daniel", "Lucas", "Hannah", "Yusuf", "Elena", "Isabella", "Noah", "Olivia",
    "James", "Emma", "Mateo", "Aisha", "Wei", "Hiroshi", "Yuki", "Ana", "Diego", "Chloe",
    "Ethan", "Zara", "Omar", "Leila", "Marco", "Giulia", "Pierre", "Camille", "Anna", "Jakub",
    "Ingrid", "Lars", "Nadia", "Rahul", "Ananya", "Tomás", "Lucía", "Grace", "Samuel", "Ruth",
    "David", "Sarah", "Michael", "Jennifer", "Robert", "María", "José", "Minh", "Ji-woo",
    "Seo-yeon", "Kofi", "Abena", "Chidi", "Ngozi", "Tariq", "Huda", "Rosa", "Pablo", "Emily",
    "Benjamin", "Zoë", "Mohammed", "Sipho", "Thandiwe", "Raj", "Meera", "Ivan", "Olga",
)  # fmt: skip
INTL_LAST = (
    "Patel", "Mensah", "Ruiz", "Chen", "Adeyemi", "Rossi", "Hassan", "O'Brien", "Sharma",
    "Boateng", "Zahra", "Kim", "Silva", "Müller", "Ibrahim", "Petrova", "Garcia", "Williams",
    "Johnson", "Smith", "Brown", "Nguyen", "Tanaka", "Sato", "Kowalski", "Novak", "Dubois",
    "Martin", "Bernard", "Schmidt", "Weber", "Andersson", "Nielsen", "Hansen", "González",
    "Rodríguez", "López", "Martínez", "Hernández", "Okafor", "Eze", "Nwosu", "Ali", "Khan",
    "Singh", "Gupta", "Park", "Lee", "Choi", "Wang", "Li", "Zhang", "Liu", "Costa", "Santos",
    "Ferreira", "Jansen", "de Vries", "Murphy", "Kelly", "Walsh", "Taylor", "Anderson",
    "Thomas", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Dlamini", "Nkosi",
    "Ivanov", "Kuznetsova", "Iyer", "Reddy", "Yilmaz", "Demir",
)  # fmt: skip
KE_FIRST = (
    "Wanjiru", "Achieng", "Samuel", "Grace", "Njeri", "Wambui", "Akinyi", "Atieno", "Mwangi",
    "Kiprono", "Chebet", "Jepkosgei", "Wafula", "Nafula", "Muthoni", "Nyambura", "Omondi",
    "Auma", "Adhiambo", "Faith", "Mercy", "Joseph", "Peter", "Esther", "Brian", "Kevin",
    "Dennis", "Cynthia", "Purity", "Josephine", "Moses", "Daniel", "Ruth", "Lilian", "Collins",
    "Victor", "Eunice", "Anne", "Hassan", "Halima", "Mohamed", "Amina", "Wanjala", "Kendi",
)  # fmt: skip
KE_LAST = (
    "Kamau", "Otieno", "Njoroge", "Odhiambo", "Wanjiku", "Mwangi", "Ochieng", "Kiptoo",
    "Cheruiyot", "Kariuki", "Mutua", "Musyoka", "Wambua", "Kimani", "Maina", "Githinji",
    "Onyango", "Owino", "Wekesa", "Simiyu", "Barasa", "Koech", "Rotich", "Langat", "Kibet",
    "Njuguna", "Gitau", "Ndung'u", "Mugo", "Macharia", "Okoth", "Juma", "Abdi", "Hussein",
    "Nyaga", "Muriuki", "Kirui", "Chepkemoi", "Mbugua", "Wairimu",
)  # fmt: skip
INTL_DOMAINS = (("example.com", 6), ("example.org", 2), ("example.net", 2), ("mail.example.com", 1))
KE_DOMAINS = (("example.co.ke", 4), ("example.com", 1))
US_AREAS = ("206", "212", "312", "415", "503", "512", "617", "646", "702", "713", "917")

DECIDERS = (
    "underwriter.alice",
    "underwriter.bob",
    "underwriter.chen",
    "underwriter.dara",
    "agent.triage",
)
APPROVE_REASONS = (
    "Meets all criteria.",
    "Strong income, low debt-to-income ratio.",
    "Stable employment and a clean repayment history.",
    "Repeat borrower with a clean record.",
    "Affordability confirmed from bank statements.",
    "Cash flow verified against twelve months of statements.",
)
REFER_REASONS = (
    "Needs manual verification of cash-flow statements.",
    "First-time borrower: verify trading licence.",
    "Income documents unreadable; requested new copies.",
    "Large exposure: needs credit committee review.",
    "Guarantor details missing.",
    "Address could not be verified automatically.",
)
REJECT_REASONS = (
    "Requested instalment exceeds 40% of declared income.",
    "Existing arrears with another lender.",
    "Identity could not be verified.",
    "Documents not provided within 30 days.",
    "Insufficient trading history.",
    "Credit score below the product's threshold.",
)
WITHDRAW_REASONS = (
    "Found other financing.",
    "No longer needed.",
    "Chose a smaller purchase.",
    "Will reapply next year.",
    None,
)
SERVICERS = ("servicer.carol", "servicer.dan", "servicer.esi")
DIRECT_DEBIT = "batch.direct-debit"

# How applications end (those still open when the book closes stay SUBMITTED or IN_REVIEW).
CLOSED_MIX = ((ApplicationStatus.APPROVED, 72), (ApplicationStatus.REJECTED, 17),
              (ApplicationStatus.WITHDRAWN, 11))  # fmt: skip
# Share of the applications that are referred before their final step.
REFER_SHARE = {
    ApplicationStatus.APPROVED: 0.18,
    ApplicationStatus.REJECTED: 0.25,
    ApplicationStatus.WITHDRAWN: 0.30,
}
OPEN_STATUSES = (ApplicationStatus.SUBMITTED, ApplicationStatus.IN_REVIEW)
# An applicant's latest application submitted in the last BACKLOG_DAYS is left undecided (in
# the review backlog) with this probability; others are open only if their decision is not due
# yet.
BACKLOG_DAYS = 180
BACKLOG_SHARE = 0.15
# Applications per applicant.
APPLICATIONS_PER_APPLICANT = ((1, 90), (2, 8), (3, 2))


class Behaviour:
    """How a borrower repays."""

    ON_TIME = "on_time"
    LATE = "late"
    DELINQUENT = "delinquent"
    ROUND_UP = "round_up"
    EARLY_PAYOFF = "early_payoff"


BEHAVIOURS = (
    (Behaviour.ON_TIME, 73),
    (Behaviour.LATE, 8),
    (Behaviour.DELINQUENT, 12),
    (Behaviour.ROUND_UP, 4),
    (Behaviour.EARLY_PAYOFF, 3),
)
# Delinquent loans: the days-past-due band they stopped paying in (as of the reference date).
DELINQUENT_BANDS = (((1, 30), 40), ((31, 60), 20), ((61, 90), 13), ((91, 400), 27))
# Share of loans with a cheque that bounced (a reversed payment) on top of their behaviour.
BOUNCED_SHARE = 0.015


# ---- small helpers ---------------------------------------------------------------------------


class Picker:
    """Weighted choice with precomputed cumulative weights."""

    def __init__(self, weighted: Sequence[tuple[Any, int]]) -> None:
        self.values = [value for value, _ in weighted]
        self.cumulative = list(accumulate(weight for _, weight in weighted))

    def __call__(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


def _rng(seed: int, stream: str, index: int = 0) -> random.Random:
    """An independent, reproducible random stream (string seeds hash the same on every run)."""
    return random.Random(f"{seed}:{stream}:{index}")


def _at(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 20) -> datetime:
    """A moment on ``day`` between the two hours (UTC, whole seconds)."""
    seconds = rng.randrange(first_hour * 3600, last_hour * 3600)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def _later(moment: datetime, rng: random.Random, low_hours: float, high_hours: float) -> datetime:
    """A moment between ``low_hours`` and ``high_hours`` after ``moment``."""
    return moment + timedelta(seconds=rng.randrange(int(low_hours * 3600), int(high_hours * 3600)))


def _ascii(text: str) -> str:
    """``text`` for an email address: "Müller" as "muller", "O'Brien" as "obrien"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == "-")


_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class References:
    """Unique references like the service's (``APP-7K3M9Q2XBD``), drawn from a seeded stream."""

    def __init__(self, rng: random.Random, prefix: str) -> None:
        self.rng = rng
        self.prefix = prefix + "-"
        self.used: set[str] = set()

    def next(self) -> str:
        while True:
            value = self.prefix + "".join(self.rng.choices(_REFERENCE_ALPHABET, k=10))
            if value not in self.used:
                self.used.add(value)
                return value


# ---- the book: applicants, applications, decisions and loans (before servicing) -------------


@dataclass(frozen=True)
class Product:
    """A product row and what the generator needs of it."""

    id: int
    code: str
    currency: str
    min_amount: Decimal
    max_amount: Decimal
    rate: Decimal
    method: AmortizationMethod
    frequency: RepaymentFrequency
    day_count: DayCount
    amounts: Picker
    amount_grid: tuple[Decimal, ...]
    terms: Picker
    term_grid: tuple[int, ...]
    purposes: tuple[str, ...]
    profile: Profile
    row: Row


def _products() -> list[Product]:
    products = []
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
        products.append(
            Product(
                id=number,
                code=model.code,
                currency=model.currency,
                min_amount=model.min_amount,
                max_amount=model.max_amount,
                rate=model.annual_interest_rate,
                method=model.amortization,
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
    return products


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
    """An approved application's loan; servicing (batch by batch) decides the rest."""

    application: ApplicationPlan
    product: Product
    principal: Decimal
    rate: Decimal
    term_months: int
    approved_at: datetime
    disbursed_on: date | None
    id: int = 0
    reference: str = ""


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
        self.products = _products()
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
            submitted = _at(day, rng, 7, 17 if day == REFERENCE_DATE else 20)
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
            referred_at = _later(submitted, rng, 4, 72)
            final_at = _later(referred_at, rng, 48, 504)
        else:
            final_at = _later(submitted, rng, 2, 168)
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
        principal, rate, term = app.amount, product.rate, app.term_months
        roll = rng.random()
        smaller = [a for a in product.amount_grid if a < app.amount]
        shorter = [t for t in product.term_grid if t < app.term_months]
        if roll < 0.08 and smaller:
            principal = decision.approved_amount = smaller[max(0, len(smaller) - rng.randint(1, 2))]
            decision.reason = "Approved at a reduced amount to keep the instalment affordable."
        elif roll < 0.12 and product.rate > 2:
            cut = Decimal(rng.choice(("0.250000", "0.500000", "0.750000", "1.000000", "1.500000")))
            rate = decision.annual_interest_rate = product.rate - cut
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


def _book_rows(book: Book) -> dict[str, list[Row]]:
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


def _api_key_rows() -> list[Row]:
    return [(1, BENCH_KEY_NAME, Role.ADMIN.value, hash_api_key(BENCH_KEY), False, CUTOFF, None)]


# ---- servicing: schedules, payments and allocations, batch by batch --------------------------


@dataclass(slots=True)
class PaymentPlan:
    amount: Decimal
    received_on: date
    recorded_at: datetime
    recorded_by: str
    reference: str | None
    # Index of the instalment this payment settles exactly (-1: not exactly one).
    settles: int = -1
    reversed_at: datetime | None = None
    id: int = 0


@dataclass
class Batch:
    """The rows of one batch of loans, in dependency order."""

    loans: list[Row] = field(default_factory=list)
    installments: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    payment_allocations: list[Row] = field(default_factory=list)


_ONE_DAY = timedelta(days=1)
# Days before the due date an on-time payer pays (mostly on the day).
_EARLY_DAYS = (0, 0, 0, 0, 0, 0, 1, 2, 3)
_ZERO = Decimal(0)


def bucket_of(days_past_due: int) -> str:
    """The delinquency bucket name of a days-past-due count (as lending.delinquency has it)."""
    if days_past_due <= 0:
        return "CURRENT"
    if days_past_due <= 30:
        return "DPD_1_30"
    if days_past_due <= 60:
        return "DPD_31_60"
    if days_past_due <= 90:
        return "DPD_61_90"
    return "DPD_91_PLUS"


class Servicer:
    """Books each disbursed loan's schedule and repays it according to a drawn behaviour."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.behaviours = Picker(BEHAVIOURS)
        self.bands = Picker(DELINQUENT_BANDS)
        self.installment_id = 0
        self.payment_id = 0
        self.allocation_id = 0
        # Mix of what was generated, for the summary.
        self.mix: dict[str, int] = {}
        self.allocated_directly = 0
        self.allocated_by_replay = 0

    def _count(self, key: str) -> None:
        self.mix[key] = self.mix.get(key, 0) + 1

    def batch(self, index: int, loans: Sequence[LoanPlan]) -> Batch:
        """Rows of ``loans`` (batch ``index``: each batch has a random stream of its own)."""
        rng = _rng(self.seed, "servicing", index)
        out = Batch()
        for loan in loans:
            out.loans.append(self._loan(rng, loan, out))
        return out

    def _loan(self, rng: random.Random, loan: LoanPlan, out: Batch) -> Row:
        product = loan.product
        head = (
            loan.id,
            loan.reference,
            loan.application.id,
            loan.application.person.id,
            loan.principal,
            product.currency,
            loan.rate,
            loan.term_months,
            product.method.value,
            product.frequency.value,
            product.day_count.value,
        )
        if loan.disbursed_on is None:
            self._count("loan:APPROVED")
            return (*head, LoanStatus.APPROVED.value, 1, loan.approved_at, None, None,
                    loan.approved_at)  # fmt: skip
        schedule = build_schedule(
            schedule_terms(
                principal=loan.principal,
                annual_rate=loan.rate,
                term_months=loan.term_months,
                method=product.method,
                frequency=product.frequency,
                day_count=product.day_count,
                currency=product.currency,
                disbursed_on=loan.disbursed_on,
                first_due_date=None,
            )
        )
        rows = schedule.installments
        first_id = self.installment_id + 1
        self.installment_id += len(rows)
        loan_id = loan.id
        out.installments.extend(
            (first_id + n, loan_id, r.number, r.due_date, r.principal, r.interest, r.balance_after)
            for n, r in enumerate(rows)
        )
        disbursed_at = min(
            max(_at(loan.disbursed_on, rng, 9, 17), loan.approved_at + timedelta(minutes=10)),
            CUTOFF,
        )
        payments = self._payments(rng, loan, rows, schedule.total_payable)
        # Ids and recorded_at follow the order allocate replays payments in.
        payments.sort(key=lambda p: (p.received_on, p.recorded_at))
        previous: datetime | None = None
        for payment in payments:
            if previous is not None and payment.recorded_at <= previous:
                payment.recorded_at = previous + timedelta(seconds=1)
            previous = payment.recorded_at
            self.payment_id += 1
            payment.id = self.payment_id
        updated_at = disbursed_at
        for p in payments:
            out.payments.append(
                (
                    p.id,
                    loan_id,
                    p.reference,
                    p.amount,
                    p.received_on,
                    p.recorded_by,
                    p.recorded_at,
                    p.reversed_at,
                    None if p.reversed_at is None else p.recorded_by,
                    None if p.reversed_at is None else "Cheque bounced.",
                )
            )
            updated_at = max(updated_at, p.reversed_at or p.recorded_at)
        live = [p for p in payments if p.reversed_at is None]
        paid_off, days_past_due = self._allocate(loan_id, first_id, rows, live, out)
        status = LoanStatus.PAID_OFF if paid_off else LoanStatus.ACTIVE
        self._count(f"loan:{status.value}")
        if not paid_off:
            self._count(f"bucket:{bucket_of(days_past_due)}")
        reversals = len(payments) - len(live)
        version = 2 + len(payments) + reversals
        return (*head, status.value, version, loan.approved_at, loan.disbursed_on,
                schedule.maturity_date, updated_at)  # fmt: skip

    def _allocate(
        self,
        loan_id: int,
        first_id: int,
        rows: Sequence[ScheduledInstallment],
        live: Sequence[PaymentPlan],
        out: Batch,
    ) -> tuple[bool, int]:
        """Allocation rows of the live payments; (paid off, days past due on the reference date).

        When the live payments, in replay order, settle instalments 1, 2, 3, ... exactly one
        each, ``allocate`` gives one allocation per payment (the instalment's interest and
        principal), so those are written directly; any other loan is replayed by ``allocate``.
        """
        direct = all(p.settles == n for n, p in enumerate(live)) and all(
            rows[n].total > 0 for n in range(len(live))
        )
        allocations = out.payment_allocations
        if direct:
            self.allocated_directly += 1
            for p in live:
                r = rows[p.settles]
                self.allocation_id += 1
                allocations.append(
                    (
                        self.allocation_id,
                        loan_id,
                        p.id,
                        first_id + p.settles,
                        p.received_on,
                        r.principal,
                        r.interest,
                    )
                )
            settled = len(live)
            if settled == len(rows):
                return True, 0
            oldest = rows[settled].due_date
            return False, max(0, (REFERENCE_DATE - oldest).days)
        self.allocated_by_replay += 1
        result = allocate(
            [InstallmentDue(r.number, r.due_date, r.principal, r.interest) for r in rows],
            [PaymentIn(p.id, p.amount, p.received_on, p.recorded_at) for p in live],
        )
        if result.unallocated:
            raise AssertionError(f"loan {loan_id}: {result.unallocated} left unallocated")
        received = {p.id: p.received_on for p in live}
        for a in result.allocations:
            self.allocation_id += 1
            allocations.append(
                (
                    self.allocation_id,
                    loan_id,
                    a.payment_key,
                    first_id + a.installment_number - 1,
                    received[a.payment_key],  # type: ignore[index]
                    a.principal,
                    a.interest,
                )
            )
        unpaid = [b for b in result.balances if b.outstanding > 0]
        if not unpaid:
            return True, 0
        return False, max(0, (REFERENCE_DATE - unpaid[0].due_date).days)

    def _payments(
        self,
        rng: random.Random,
        loan: LoanPlan,
        rows: Sequence[ScheduledInstallment],
        total_payable: Decimal,
    ) -> list[PaymentPlan]:
        """The payments received on a loan by the reference date, by a drawn behaviour."""
        due = [r for r in rows if r.due_date <= REFERENCE_DATE]
        behaviour: str = self.behaviours(rng)
        stop = len(due)
        if behaviour == Behaviour.DELINQUENT:
            low, high = self.bands(rng)
            candidates = [
                n for n, r in enumerate(due) if low <= (REFERENCE_DATE - r.due_date).days <= high
            ]
            if candidates:
                stop = rng.choice(candidates)
            else:
                behaviour = Behaviour.ON_TIME
        if behaviour == Behaviour.EARLY_PAYOFF:
            if len(due) >= 2:
                stop = rng.randint(1, len(due) - 1)
            else:
                behaviour = Behaviour.ON_TIME
        self._count(f"behaviour:{behaviour}")
        payments: list[PaymentPlan] = []
        servicer = rng.choice(SERVICERS)
        if behaviour in (Behaviour.ON_TIME, Behaviour.DELINQUENT, Behaviour.EARLY_PAYOFF):
            debit = rng.random() < 0.7
            for n, r in enumerate(due[:stop]):
                if debit:
                    on = r.due_date
                    at = datetime(on.year, on.month, on.day, 5, 30, tzinfo=UTC)
                    reference = f"DD-{n + 1:03d}"
                    payments.append(PaymentPlan(r.total, on, at, DIRECT_DEBIT, reference, n))
                else:
                    on = r.due_date - timedelta(days=rng.choice(_EARLY_DAYS))
                    payments.append(self._transfer(rng, r.total, on, servicer, n))
        elif behaviour == Behaviour.LATE:
            base = rng.randint(2, 20)
            for n, r in enumerate(due):
                on = r.due_date + timedelta(days=max(1, base + rng.randint(-2, 6)))
                if on > REFERENCE_DATE:
                    break
                payments.append(self._transfer(rng, r.total, on, servicer, n))
        elif behaviour == Behaviour.ROUND_UP:
            step = Decimal(loan.product.profile.round_to)
            left = total_payable
            for n, r in enumerate(due):
                amount = min(-(-r.total // step) * step, left)
                amount = round_money(amount, loan.product.currency)
                if amount <= 0:
                    break
                left -= amount
                payments.append(self._transfer(rng, amount, r.due_date, servicer, -1, n))
        if behaviour == Behaviour.DELINQUENT and rng.random() < 0.45:
            # A part payment after the missed instalment fell due: it stays overdue.
            missed = due[stop]
            part = round_money(
                missed.total * Decimal(rng.randint(15, 85)) / 100, loan.product.currency
            )
            late = rng.randint(1, (REFERENCE_DATE - missed.due_date).days)
            if part > 0:
                on = missed.due_date + timedelta(days=late)
                payments.append(self._transfer(rng, part, on, servicer, -1, len(payments)))
        if behaviour == Behaviour.EARLY_PAYOFF:
            rest = total_payable - sum((p.amount for p in payments), _ZERO)
            on = min(due[stop - 1].due_date + timedelta(days=rng.randint(3, 25)), REFERENCE_DATE)
            payments.append(PaymentPlan(rest, on, _at(on, rng, 9, 17), servicer, "PAYOFF", -1))
        if payments and rng.random() < BOUNCED_SHARE:
            self._bounce(rng, loan, payments, total_payable, servicer)
        return payments

    @staticmethod
    def _transfer(
        rng: random.Random,
        amount: Decimal,
        on: date,
        servicer: str,
        settles: int,
        number: int | None = None,
    ) -> PaymentPlan:
        """A payment keyed in by a servicer (a bank transfer, or cash with no reference)."""
        sequence = settles + 1 if number is None else number + 1
        reference = None if rng.random() < 0.2 else f"TRF-{sequence:03d}"
        return PaymentPlan(amount, on, _at(on, rng, 9, 17), servicer, reference, settles)

    def _bounce(
        self,
        rng: random.Random,
        loan: LoanPlan,
        payments: list[PaymentPlan],
        total_payable: Decimal,
        servicer: str,
    ) -> None:
        """A cheque for an instalment, paid in days before it fell due, that bounced.

        It is recorded, then reversed before the instalment is paid again, with no other
        payment recorded in between, and never exceeds what was left to pay: the service would
        have accepted every step.
        """
        assert loan.disbursed_on is not None
        settled = [p for p in payments if p.settles >= 0]
        if not settled:
            return
        paid = rng.choice(settled)
        on = paid.received_on - timedelta(days=rng.randint(5, 10))
        if on < loan.disbursed_on:
            return
        at = _at(on, rng, 9, 17)
        reversed_at = _at(on + timedelta(days=rng.randint(2, 4)), rng, 9, 17)
        if any(at <= p.recorded_at <= reversed_at for p in payments):
            return
        before = sum((p.amount for p in payments if p.recorded_at < at), _ZERO)
        if paid.amount > total_payable - before:
            return
        self._count("payment:reversed (bounced cheque)")
        reference = f"CHQ-{rng.randint(100000, 999999)}"
        payments.append(PaymentPlan(paid.amount, on, at, servicer, reference, -1, reversed_at))


# ---- loading ---------------------------------------------------------------------------------


class Progress:
    """A carriage-return line on stderr: table, rows done / total, rate.

    On a terminal the line is redrawn four times a second; otherwise (a log file) a plain line
    is written every ten seconds and when a stage ends.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.every = 0.25 if self.live else 10.0
        self.started = self.shown = time.perf_counter()
        self.width = 0
        self.line = ""

    def start(self) -> None:
        self.started = self.shown = time.perf_counter()

    def show(
        self,
        table: str,
        done: int,
        total: int,
        extra: str = "",
        force: bool = False,
        rows: int | None = None,
        unit: str = "rows",
    ) -> None:
        """``done`` of ``total``; the rate counts ``rows`` when given (several tables at once)."""
        now = time.perf_counter()
        if not force and now - self.shown < self.every:
            return
        rate = (done if rows is None else rows) / max(now - self.started, 1e-9)
        self.line = f"{table:<20} {done:>11,}/{total:<11,} {rate:>10,.1f} {unit}/s {extra}".rstrip()
        if self.live:
            pad = max(0, self.width - len(self.line))
            self.width = len(self.line)
            self.stream.write("\r" + self.line + " " * pad)
            self.stream.flush()
        elif not force:
            self.stream.write(self.line + "\n")
            self.stream.flush()
        self.shown = now

    def done(self) -> None:
        """End the stage: keep its last line."""
        self.stream.write("\n" if self.live else self.line + "\n")
        self.stream.flush()
        self.width = 0


# Foreign keys, unique constraints and plain indexes of the filled tables, with the statements
# that drop and re-create them. Partial indexes stay: they are small or cheap to maintain, one
# of them guards the one-open-application rule, and their predicates would not deparse back to
# the same text (which the check after restoring relies on).
_SECONDARY = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS remove,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)) AS restore,
       CASE c.contype WHEN 'f' THEN 0 ELSE 1 END AS stage
FROM pg_constraint c
WHERE c.conrelid = ANY($1::text[]::regclass[]) AND c.contype IN ('f', 'u')
UNION ALL
SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 2
FROM pg_index i
WHERE i.indrelid = ANY($1::text[]::regclass[]) AND i.indpred IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                  WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
ORDER BY 3, 1
"""


async def _drop_secondary(connection: Any) -> list[str]:
    """Drop foreign keys, unique constraints and secondary indexes; return how to restore them."""
    found = await connection.fetch(_SECONDARY, list(TABLES))
    for row in found:
        await connection.execute(row["remove"])
    return [row["restore"] for row in reversed(found)]


async def _restore_secondary(connection: Any, statements: list[str], progress: Progress) -> None:
    """Re-create what ``_drop_secondary`` dropped, and check the catalog is as before."""
    progress.start()
    for n, statement in enumerate(statements):
        target = statement.split(" ON ")[0][:60]
        progress.show("indexes, keys", n, len(statements), target, unit="statements")
        await connection.execute(statement)
    progress.show("indexes, keys", len(statements), len(statements), force=True, unit="statements")
    progress.done()
    again = await connection.fetch(_SECONDARY, list(TABLES))
    if sorted(row["restore"] for row in again) != sorted(statements):
        raise AssertionError("indexes and constraints differ from before the load")


async def _copy(
    connection: Any, table: str, rows: Sequence[Row], progress: Progress, chunk: int = 50_000
) -> None:
    """COPY ``rows`` into ``table``, showing progress."""
    progress.start()
    for start in range(0, len(rows), chunk):
        await connection.copy_records_to_table(
            table, records=rows[start : start + chunk], columns=list(COLUMNS[table])
        )
        progress.show(table, min(start + chunk, len(rows)), len(rows))
    progress.show(table, len(rows), len(rows), force=True)
    progress.done()


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in consecutive slices of ``size``."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def marker(scale: float, seed: int) -> str:
    """What a committed load records as the database's comment."""
    return f"bench.data v{GENERATOR_VERSION} scale={scale:g} seed={seed}"


SERVICED = ("loans", "installments", "payments", "payment_allocations")


async def _service(
    connection: Any, book: Book, servicer: Servicer, counts: dict[str, int], progress: Progress
) -> None:
    """Service the loans batch by batch, copying each batch's rows in dependency order."""
    total = sum(
        installment_count(loan.term_months, loan.product.frequency)
        for loan in book.loans
        if loan.disbursed_on is not None
    )
    progress.start()
    loans_done = 0

    def show(force: bool = False) -> None:
        progress.show(
            "installments",
            counts["installments"],
            total,
            f"| loans {loans_done:,}/{len(book.loans):,}, payments {counts['payments']:,}, "
            f"allocations {counts['payment_allocations']:,}",
            force=force,
            rows=sum(counts[table] for table in SERVICED),
        )

    for index, loans in enumerate(chunks(book.loans, BATCH_LOANS)):
        batch = servicer.batch(index, loans)
        for table in SERVICED:
            rows = getattr(batch, table)
            if rows:
                await connection.copy_records_to_table(
                    table, records=rows, columns=list(COLUMNS[table])
                )
            counts[table] += len(rows)
        loans_done += len(loans)
        show()
    show(force=True)
    progress.done()


async def _load(
    connection: Any, book: Book, seed: int, note: str, phases: dict[str, float]
) -> tuple[dict[str, int], Servicer]:
    """Copy the book and its servicing in one transaction; return the counts and the servicer."""
    progress = Progress()
    counts = dict.fromkeys(TABLES, 0)
    servicer = Servicer(seed)
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[phase] = phases.get(phase, 0.0) + now - clock
        clock = now

    async with connection.transaction():
        await connection.execute("SET LOCAL maintenance_work_mem = '512MB'")
        await connection.execute("SET LOCAL synchronous_commit = off")
        restore = await _drop_secondary(connection)
        for table, rows in _book_rows(book).items():
            await _copy(connection, table, rows, progress)
            counts[table] = len(rows)
        lap("copy applicants, applications, decisions")
        await _service(connection, book, servicer, counts, progress)
        lap("service and copy loans, instalments, payments, allocations")
        await _copy(connection, "api_keys", _api_key_rows(), progress)
        counts["api_keys"] = 1
        await _restore_secondary(connection, restore, progress)
        for table in TABLES:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} "
                "HAVING max(id) IS NOT NULL"
            )
        name = await connection.fetchval("SELECT current_database()")
        await connection.execute(f"COMMENT ON DATABASE {_quoted(name)} IS '{note}'")
        lap("restore indexes and keys")
    lap("commit")
    return counts, servicer


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _vacuum(connection: Any) -> None:
    """VACUUM (ANALYZE) every filled table (visibility map and statistics for the benchmark)."""
    progress = Progress()
    for n, table in enumerate(TABLES):
        progress.show("vacuum, analyze", n, len(TABLES), table, unit="tables")
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    progress.show("vacuum, analyze", len(TABLES), len(TABLES), force=True, unit="tables")
    progress.done()


async def _existing_counts(connection: Any) -> dict[str, int]:
    return {
        table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
        for table in (*TABLES, *EMPTY_TABLES)
    }


async def _drop_database(server_url: str, name: str) -> None:
    connection = await admin_connection(server_url)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        await connection.close()


def database_name(scale: float) -> str:
    """The embedded database of a scale: ``lending_bench_0_1`` for 0.1."""
    return "lending_bench_" + f"{scale:g}".replace(".", "_").replace("-", "_")


def loans_for(scale: float) -> int:
    """Loans in a book of ``scale`` (10,000 per unit, at least one)."""
    return max(1, round(LOANS_PER_SCALE * scale))


class DatabaseNotEmpty(RuntimeError):
    """The database holds rows that are not the book asked for."""


@dataclass
class Report:
    """What a run produced, for the summary."""

    counts: dict[str, int]
    seconds: float
    mix: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    reused: bool = False


async def run(url: str, scale: float, seed: int = 7, fresh: bool = False) -> Report:
    """Fill the database at ``url`` (created if missing, recreated when ``fresh``)."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    started = time.perf_counter()
    name = make_url(url).database
    if not name:
        raise ValueError("the database URL must name a database")
    server_url = with_database(url, "postgres")
    if fresh:
        await _drop_database(server_url, name)
    await ensure_database(server_url, name)
    await asyncio.to_thread(upgrade_to_head, url)
    note = marker(scale, seed)
    phases = {"create and migrate the database": time.perf_counter() - started}
    connection = await raw_connection(url)
    try:
        filled = [t for t in TABLES if await connection.fetchval(f"SELECT EXISTS (TABLE {t})")]
        if filled:
            comment = await connection.fetchval(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = current_database()"
            )
            if comment == note:
                counts = await _existing_counts(connection)
                return Report(counts, time.perf_counter() - started, reused=True)
            raise DatabaseNotEmpty(
                f"database {name} already holds rows ({', '.join(filled)}) that are not "
                f"{note!r}; use --fresh to recreate it"
            )
        clock = time.perf_counter()
        book = build_book(seed, loans_for(scale))
        phases["draw applicants, applications, decisions"] = time.perf_counter() - clock
        counts, servicer = await _load(connection, book, seed, note, phases)
        clock = time.perf_counter()
        await _vacuum(connection)
        phases["vacuum and analyze"] = time.perf_counter() - clock
    finally:
        await connection.close()
    for table in EMPTY_TABLES:
        counts[table] = 0
    mix = dict(servicer.mix)
    for app in book.applications:
        key = f"application:{app.status.value}"
        mix[key] = mix.get(key, 0) + 1
    mix["allocation:direct"] = servicer.allocated_directly
    mix["allocation:replayed"] = servicer.allocated_by_replay
    return Report(counts, time.perf_counter() - started, mix, phases)


async def generate(url: str, scale: float, seed: int = 7, fresh: bool = False) -> dict[str, int]:
    """Fill the database at ``url`` with a book of ``scale``; return the row count per table."""
    return (await run(url, scale, seed, fresh)).counts


def summary(report: Report) -> str:
    """Row counts per table, the generated mix, the time of each phase and the elapsed time."""
    lines = [f"{'table':<22}{'rows':>14}"]
    lines += [f"{table:<22}{count:>14,}" for table, count in report.counts.items()]
    lines.append(f"{'total':<22}{sum(report.counts.values()):>14,}")
    groups: dict[str, list[str]] = {}
    for key, value in sorted(report.mix.items()):
        group, _, name = key.partition(":")
        groups.setdefault(group, []).append(f"{name or group} {value:,}")
    titles = {
        "application": "applications",
        "loan": "loans",
        "bucket": "not paid off, by delinquency on " + REFERENCE_DATE.isoformat(),
        "behaviour": "repayment behaviour",
        "allocation": "loans allocated",
        "payment": "payments",
    }
    for group, items in groups.items():
        lines.append(f"{titles.get(group, group)}: {', '.join(items)}")
    for phase, seconds in report.phases.items():
        lines.append(f"{seconds:8.1f} s  {phase}")
    state = "already filled, kept as it is" if report.reused else "generated"
    lines.append(f"{state} in {report.seconds:.1f} s")
    return "\n".join(lines)


async def _main(args: argparse.Namespace) -> str:
    if args.database_url:
        report = await run(args.database_url, args.scale, args.seed, args.fresh)
        url = args.database_url
    else:
        server = EmbeddedPostgres(PGDATA)
        try:
            server_url = await asyncio.to_thread(server.start)
            url = with_database(server_url, database_name(args.scale))
            report = await run(url, args.scale, args.seed, args.fresh)
        finally:
            server.stop()
    print(summary(report))
    return str(url)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.data", description="Fill a database with benchmark data."
    )
    parser.add_argument("--scale", type=float, required=True, help="1 = 10,000 loans")
    parser.add_argument("--database-url", help="fill this database instead of the embedded one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    args = parser.parse_args(argv)
    try:
        url = asyncio.run(_main(args))
    except DatabaseNotEmpty as e:
        parser.exit(2, f"{parser.prog}: {e}\n")
    print(url, flush=True)


if __name__ == "__main__":
    main()
