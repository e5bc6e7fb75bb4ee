"""What the generated book looks like: its calendar, the weights it is drawn by, seeded draws."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

from lending.states import ApplicationStatus

# ---- the calendar ----------------------------------------------------------------------------

# "Today" for the generated book: every date is relative to it, never to the clock.
REFERENCE_DATE = date(2026, 6, 30)
# Nothing in the book happens after this instant.
CUTOFF = datetime(2026, 6, 30, 18, 0, tzinfo=UTC)
# Applications are spread over the three years before the reference date.
HISTORY_START = date(2023, 7, 1)
PRODUCTS_CREATED = datetime(2023, 6, 1, 9, 0, tzinfo=UTC)
# AUTO-USD-2019 (inactive in the demo products) took its last application the day before.
AUTO_RETIRED = date(2025, 1, 1)


# ---- who applies for what, how it is decided, how loans are repaid -------------------------


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


# ---- seeded draws ----------------------------------------------------------------------------


class Picker:
    """Weighted choice with precomputed cumulative weights."""

    def __init__(self, weighted: Sequence[tuple[Any, int]]) -> None:
        self.values = [value for value, _ in weighted]
        self.cumulative = list(accumulate(weight for _, weight in weighted))

    def __call__(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


def random_stream(seed: int, stream: str, index: int = 0) -> random.Random:
    """An independent, reproducible random stream (string seeds hash the same on every run)."""
    return random.Random(f"{seed}:{stream}:{index}")


def time_on(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 20) -> datetime:
    """A moment on ``day`` between the two hours (UTC, whole seconds)."""
    seconds = rng.randrange(first_hour * 3600, last_hour * 3600)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def later(moment: datetime, rng: random.Random, low_hours: float, high_hours: float) -> datetime:
    """A moment between ``low_hours`` and ``high_hours`` after ``moment``."""
    return moment + timedelta(seconds=rng.randrange(int(low_hours * 3600), int(high_hours * 3600)))


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
