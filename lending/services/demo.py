"""Demo data: products, applicants and applications in every status, loaded once."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Applicant, LoanProduct, Payment
from db.repositories import products as product_repo
from lending.assessment import RawFactor
from lending.audit import Caller
from lending.delinquency import InstallmentStatus, installment_status
from lending.services import applications as service
from lending.services import loans as loan_service
from lending.services import payments as payment_service
from lending.services import reminders as reminder_service
from lending.states import ReminderChannel, ReminderStatus
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency


def demo_products() -> list[LoanProduct]:
    """Fresh instances of the demo products."""
    return [
        LoanProduct(
            code="PERSONAL-USD",
            name="Personal loan",
            description="Unsecured personal loan for individuals.",
            currency="USD",
            min_amount=Decimal("1000.00"),
            max_amount=Decimal("50000.00"),
            min_term_months=6,
            max_term_months=60,
            annual_interest_rate=Decimal("12.500000"),
            amortization=AmortizationMethod.ANNUITY,
            frequency=RepaymentFrequency.MONTHLY,
            day_count=DayCount.THIRTY_360,
            active=True,
            refer_below_score=Decimal("600"),
        ),
        LoanProduct(
            code="SMALL-BIZ-USD",
            name="Small-business loan",
            description="Working capital for small businesses, equal principal repayments.",
            currency="USD",
            min_amount=Decimal("5000.00"),
            max_amount=Decimal("250000.00"),
            min_term_months=12,
            max_term_months=84,
            annual_interest_rate=Decimal("9.990000"),
            amortization=AmortizationMethod.EQUAL_PRINCIPAL,
            frequency=RepaymentFrequency.MONTHLY,
            day_count=DayCount.ACTUAL_365,
            active=True,
            assessment_required=True,
        ),
        LoanProduct(
            code="MICRO-KES",
            name="Micro-enterprise loan (KES)",
            description="Short micro-loans for traders in Kenya, repaid every two weeks.",
            currency="KES",
            min_amount=Decimal("5000.00"),
            max_amount=Decimal("500000.00"),
            min_term_months=3,
            max_term_months=24,
            annual_interest_rate=Decimal("18.000000"),
            amortization=AmortizationMethod.ANNUITY,
            frequency=RepaymentFrequency.BIWEEKLY,
            day_count=DayCount.ACTUAL_365,
            active=True,
        ),
        LoanProduct(
            code="AUTO-USD-2019",
            name="Auto loan (2019 series)",
            description="No longer offered; kept for existing loans.",
            currency="USD",
            min_amount=Decimal("3000.00"),
            max_amount=Decimal("60000.00"),
            min_term_months=12,
            max_term_months=72,
            annual_interest_rate=Decimal("7.250000"),
            amortization=AmortizationMethod.ANNUITY,
            frequency=RepaymentFrequency.MONTHLY,
            day_count=DayCount.THIRTY_360,
            active=False,
        ),
    ]


# (name, email, phone, product, amount, term, purpose, monthly income, story)
# story: a list of (outcome, reason, approved terms) decisions, or "WITHDRAW".
APPLICATIONS: list[tuple[str, str, str | None, str, str, int, str, str | None, list[object]]] = [
    (
        "Amina Patel",
        "amina.patel@example.com",
        "+1 415 555 0101",
        "PERSONAL-USD",
        "25000.00",
        36,
        "Home renovation",
        "7800.00",
        [("APPROVED", "Strong income, low debt-to-income ratio.", None)],
    ),
    (
        "John Mensah",
        "john.mensah@example.com",
        "+233 20 555 0102",
        "PERSONAL-USD",
        "10000.00",
        24,
        "Debt consolidation",
        "4200.00",
        ["WITHDRAW"],
    ),
    (
        "Wanjiru Kamau",
        "wanjiru.kamau@example.co.ke",
        "+254 712 555 103",
        "MICRO-KES",
        "150000.00",
        12,
        "Stock for a grocery kiosk",
        "60000.00",
        [
            ("REFERRED", "First-time borrower: verify trading licence.", None),
            (
                "APPROVED",
                "Licence verified; approved at a reduced amount.",
                ("120000.00", None, 12),
            ),
        ],
    ),
    (
        "Carlos Ruiz",
        "carlos.ruiz@example.com",
        None,
        "SMALL-BIZ-USD",
        "80000.00",
        48,
        "Delivery van for the bakery",
        "15000.00",
        [],
    ),
    (
        "Mei Chen",
        "mei.chen@example.com",
        "+1 206 555 0105",
        "SMALL-BIZ-USD",
        "120000.00",
        60,
        "Second restaurant location",
        "22000.00",
        [("REFERRED", "Needs manual verification of cash-flow statements.", None)],
    ),
    (
        "Oluwaseun Adeyemi",
        "seun.adeyemi@example.com",
        None,
        "PERSONAL-USD",
        "45000.00",
        60,
        "Wedding",
        "3100.00",
        [("REJECTED", "Requested instalment exceeds 40% of declared income.", None)],
    ),
    (
        "Sofia Rossi",
        "sofia.rossi@example.com",
        "+39 02 555 0107",
        "PERSONAL-USD",
        "5000.00",
        12,
        "Laptop and certification course",
        "3900.00",
        [("APPROVED", "Small amount, stable employment.", None)],
    ),
    (
        "Ahmed Hassan",
        "ahmed.hassan@example.com",
        None,
        "SMALL-BIZ-USD",
        "30000.00",
        24,
        "Refrigeration equipment",
        "9000.00",
        [("APPROVED", "Approved at a negotiated rate.", (None, "8.750000", None))],
    ),
    (
        "Grace Otieno",
        "grace.otieno@example.co.ke",
        "+254 722 555 109",
        "MICRO-KES",
        "60000.00",
        6,
        "Sewing machines",
        "35000.00",
        [],
    ),
    (
        "Liam O'Brien",
        "liam.obrien@example.com",
        None,
        "PERSONAL-USD",
        "15000.00",
        36,
        "Used car",
        "5200.00",
        [
            ("REFERRED", "Income documents unreadable; requested new copies.", None),
            ("REJECTED", "Documents not provided within 30 days.", None),
        ],
    ),
    (
        "Priya Sharma",
        "priya.sharma@example.com",
        "+91 98 555 0111",
        "PERSONAL-USD",
        "8000.00",
        18,
        "Medical expenses",
        "4600.00",
        [],
    ),
    (
        "Kwame Boateng",
        "kwame.boateng@example.com",
        None,
        "SMALL-BIZ-USD",
        "200000.00",
        84,
        "Warehouse expansion",
        "41000.00",
        [("REFERRED", "Large exposure: needs credit committee review.", None)],
    ),
    (
        "Fatima Zahra",
        "fatima.zahra@example.com",
        None,
        "PERSONAL-USD",
        "3000.00",
        12,
        "Moving costs",
        "2800.00",
        ["WITHDRAW"],
    ),
    (
        "Daniel Kim",
        "daniel.kim@example.com",
        "+1 312 555 0114",
        "PERSONAL-USD",
        "20000.00",
        48,
        "Home solar panels",
        "6900.00",
        [("APPROVED", "Good history; term shortened at applicant's request.", (None, None, 36))],
    ),
    (
        "Achieng Odhiambo",
        "achieng.odhiambo@example.co.ke",
        None,
        "MICRO-KES",
        "250000.00",
        18,
        "Matatu down payment",
        "90000.00",
        [("REJECTED", "Existing arrears with another lender.", None)],
    ),
    (
        "Lucas Silva",
        "lucas.silva@example.com",
        None,
        "SMALL-BIZ-USD",
        "15000.00",
        24,
        "Point-of-sale terminals",
        "7000.00",
        [],
    ),
    (
        "Hannah Müller",
        "hannah.mueller@example.com",
        "+49 30 555 0117",
        "PERSONAL-USD",
        "12000.00",
        24,
        "Furniture",
        "5100.00",
        [("APPROVED", "Meets all criteria.", None)],
    ),
    (
        "Yusuf Ibrahim",
        "yusuf.ibrahim@example.com",
        None,
        "MICRO-KES",
        "40000.00",
        6,
        "Motorbike repairs",
        "28000.00",
        [],
    ),
    (
        "Elena Petrova",
        "elena.petrova@example.com",
        None,
        "PERSONAL-USD",
        "30000.00",
        60,
        "Tuition",
        "4400.00",
        [("REFERRED", "Guarantor details missing.", None)],
    ),
    (
        "Samuel Njoroge",
        "samuel.njoroge@example.co.ke",
        "+254 733 555 120",
        "MICRO-KES",
        "90000.00",
        12,
        "Poultry feed",
        "52000.00",
        [("APPROVED", "Repeat borrower with a clean record.", None)],
    ),
    (
        "Isabella Garcia",
        "isabella.garcia@example.com",
        None,
        "SMALL-BIZ-USD",
        "60000.00",
        36,
        "Salon refurbishment",
        "12500.00",
        ["WITHDRAW"],
    ),
    (
        "Noah Williams",
        "noah.williams@example.com",
        "+1 646 555 0122",
        "PERSONAL-USD",
        "7000.00",
        12,
        "Vet bills",
        "3300.00",
        [("REJECTED", "Identity could not be verified.", None)],
    ),
    (
        "Tomás Alvarez",
        "tomas.alvarez@example.com",
        None,
        "PERSONAL-USD",
        "6000.00",
        12,
        "Kitchen appliances",
        "3600.00",
        [("APPROVED", "Meets all criteria.", None)],
    ),
    (
        "Peter Okafor",
        "peter.okafor@example.com",
        "+234 803 555 0124",
        "PERSONAL-USD",
        "9000.00",
        24,
        "School fees",
        "3000.00",
        [("APPROVED", "Stable income at the time of application.", None)],
    ),
    (
        "Aisha Bello",
        "aisha.bello@example.com",
        None,
        "PERSONAL-USD",
        "4000.00",
        12,
        "Car repairs",
        "4100.00",
        [("APPROVED", "Low amount against a good income.", None)],
    ),
]


INTAKE = Caller("agent.intake")
SERVICER = Caller("servicer.carol")

# How the approved demo loans have been serviced: disbursed so many days ago, then repaid so
# that GraphiQL shows every delinquency bucket, a paid-off loan and a reversed payment.
SERVICING: dict[str, tuple[int, str]] = {
    "amina.patel@example.com": (300, "current"),
    "peter.okafor@example.com": (400, "written_off"),
    "aisha.bello@example.com": (100, "settled"),
    "wanjiru.kamau@example.co.ke": (200, "DPD_91_PLUS"),
    "sofia.rossi@example.com": (180, "paid_off"),
    "hannah.mueller@example.com": (150, "DPD_61_90"),
    "ahmed.hassan@example.com": (160, "DPD_31_60"),
    "daniel.kim@example.com": (120, "DPD_1_30"),
}
BUCKET_DAYS = {
    "DPD_1_30": (1, 30),
    "DPD_31_60": (31, 60),
    "DPD_61_90": (61, 90),
    "DPD_91_PLUS": (91, 10_000),
}


async def first_applicant_email(session: AsyncSession) -> str | None:
    """The email of the first applicant (by id): the demo borrower `make run` signs a token for."""
    return await session.scalar(select(Applicant.email).order_by(Applicant.id).limit(1))


async def seed_demo(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Load the demo data unless products exist already; True when loaded."""
    async with sessionmaker() as session, session.begin():
        if await product_repo.list_products(session, active_only=False):
            return False
        for product in demo_products():
            await product_repo.add_product(session, product)
        rng = random.Random(2026)
        now = datetime.now(UTC).replace(microsecond=0)
        today = now.date()
        for index, (name, email, phone, code, amount, term, purpose, income, story) in enumerate(
            APPLICATIONS
        ):
            days_ago = SERVICING[email][0] + 8 if email in SERVICING else 90 - 4 * index
            submitted = now - timedelta(days=days_ago, hours=rng.randint(0, 12))
            application = await service.apply_for_loan(
                session,
                INTAKE,
                full_name=name,
                email=email,
                phone=phone,
                product_code=code,
                amount=amount,
                term_months=term,
                purpose=purpose,
                declared_monthly_income=income,
                submitted_at=submitted,
            )
            at = submitted
            decided: service.Decided | None = None
            for number, step in enumerate(story):
                # A day or three apart, but never later than the moment the demo is loaded.
                latest = now - timedelta(minutes=5 * (len(story) - number))
                at = min(at + timedelta(days=rng.randint(1, 3), hours=rng.randint(1, 8)), latest)
                if step == "WITHDRAW":
                    await service.withdraw_application(
                        session,
                        INTAKE,
                        application_id=application.id,
                        reason="Found other financing.",
                    )
                    continue
                assert isinstance(step, tuple)
                outcome, reason, terms = step
                amount_ok, rate_ok, term_ok = terms or (None, None, None)
                decided = await service.decide_application(
                    session,
                    Caller(rng.choice(["underwriter.alice", "underwriter.bob", "agent.triage"])),
                    application_id=application.id,
                    outcome=outcome,
                    reason=reason,
                    approved_amount=amount_ok,
                    annual_interest_rate=rate_ok,
                    term_months=term_ok,
                    decided_at=at,
                    assessment=_assessment(rng, outcome, index, SERVICING.get(email))
                    if code in ASSESSED
                    else None,
                )
            if email in SERVICING and decided is not None and decided.loan is not None:
                disbursed_ago, plan = SERVICING[email]
                await _service_loan(
                    session, decided.loan.id, today - timedelta(days=disbursed_ago), plan, today
                )
            if email in REMINDED and decided is not None and decided.loan is not None:
                await _remind(session, decided.loan.id, *REMINDED[email], today)
            if email == CANCELLED and decided is not None and decided.loan is not None:
                await loan_service.cancel_loan(
                    session,
                    SERVICER,
                    loan_id=decided.loan.id,
                    reason="The applicant found other financing before the payout.",
                )
    return True


# Products whose decisions the demo's underwriters back with an assessment (both have a policy).
ASSESSED = {"PERSONAL-USD", "SMALL-BIZ-USD"}
CANCELLED = "tomas.alvarez@example.com"
SCORES = {"APPROVED": (640, 820), "REFERRED": (520, 599), "REJECTED": (350, 480)}
# The approval scores of the loans the demo services, by how each was then repaid: the model
# separates them, so decisionStats by SCORE_BAND (cut at 690 and 740) shows the bad rate falling
# as the bands rise.
SCORES_BY_PLAN = {
    "written_off": (640, 665),
    "DPD_91_PLUS": (640, 665),
    "DPD_61_90": (665, 689),
    "DPD_31_60": (690, 714),
    "DPD_1_30": (715, 739),
    "current": (760, 820),
    "paid_off": (760, 820),
    "settled": (760, 820),
}


def _assessment(
    rng: random.Random, outcome: str, n: int, serviced: tuple[int, str] | None = None
) -> service.AssessmentIn:
    """A credit model's assessment, its score fitting the outcome (and, for a loan the demo
    services, how it was repaid)."""
    low, high = SCORES[outcome]
    if serviced is not None and outcome == "APPROVED":
        low, high = SCORES_BY_PLAN[serviced[1]]
    score = Decimal(rng.randint(low * 100, high * 100)) / 100
    return service.AssessmentIn(
        score=score,
        model="credit-score@3.2",
        factors=[
            RawFactor("income_to_instalment", Decimal(rng.randint(20, 90)), "declared income"),
            RawFactor("bureau_history_months", Decimal(rng.randint(-40, 60))),
            RawFactor("existing_debt", Decimal(-rng.randint(0, 80)), "bureau report"),
        ],
        evidence=[f"doc:payslip-{1000 + n}", f"bureau:report-{2000 + n}"],
    )


async def _remind(
    session: AsyncSession,
    loan_id: int,
    channel: ReminderChannel,
    delivered: bool,
    today: date,
) -> None:
    """A collections agent's reminder on a loan's oldest overdue instalment."""
    loan = await payment_service.locked_loan(session, loan_id)
    current = await payment_service.ledger(session, loan)
    oldest = next(
        b.number
        for b in current.allocation.balances
        if installment_status(b, today) is InstallmentStatus.OVERDUE
    )
    reminder = await reminder_service.request_reminder(
        session,
        COLLECTIONS,
        installment_id=next(i.id for i in current.installments if i.number == oldest),
        channel=channel,
        message="Your instalment is overdue: please pay, or call us to agree a plan.",
        today=today,
    )
    if delivered:
        await reminder_service.report_delivery(
            session,
            SERVICER,
            reminder_id=reminder.id,
            outcome=ReminderStatus.DELIVERED,
            detail="Accepted by the mail server.",
        )


COLLECTIONS = Caller("agent.collections")
# Whose oldest overdue instalment gets a reminder: (channel, reported delivered).
REMINDED = {
    "daniel.kim@example.com": (ReminderChannel.SMS, False),
    "hannah.mueller@example.com": (ReminderChannel.EMAIL, True),
}


async def _service_loan(
    session: AsyncSession, loan_id: int, disbursed_on: date, plan: str, today: date
) -> None:
    """Disburse a demo loan and repay it according to ``plan``."""
    disbursed = await loan_service.disburse_loan(
        session,
        SERVICER,
        loan_id=loan_id,
        disbursed_on=disbursed_on,
        first_due_date=None,
        today=today,
    )
    installments = sorted(disbursed.installments, key=lambda i: i.number)

    async def pay(amount: Decimal, on: date, reference: str | None = None) -> Payment:
        result = await payment_service.record_payment(
            session,
            SERVICER,
            loan_id=loan_id,
            amount=amount,
            received_on=on,
            reference=reference,
            today=today,
        )
        return result.payment

    if plan == "paid_off":
        total = sum((i.principal_due + i.interest_due for i in installments), Decimal(0))
        await pay(
            installments[0].principal_due + installments[0].interest_due, installments[0].due_date
        )
        rest = total - installments[0].principal_due - installments[0].interest_due
        await pay(rest, installments[1].due_date - timedelta(days=3), "EARLY-PAYOFF")
        return
    if plan == "current":
        paid_through = len([i for i in installments if i.due_date <= today])
    elif plan in BUCKET_DAYS:
        low, high = BUCKET_DAYS[plan]
        # The oldest unpaid instalment is the first one whose lateness falls in the bucket.
        paid_through = next(
            i.number - 1 for i in installments if low <= (today - i.due_date).days <= high
        )
    if plan in ("written_off", "settled"):
        paid_through = (
            2 if plan == "written_off" else len([i for i in installments if i.due_date <= today])
        )
    for item in installments[:paid_through]:
        await pay(item.principal_due + item.interest_due, item.due_date, f"DD-{item.number:03d}")
    if plan == "written_off":
        await loan_service.write_off_loan(
            session,
            SERVICER,
            loan_id=loan_id,
            reason="No contact for 11 months; collections exhausted.",
        )
    if plan == "settled":
        loan = await payment_service.locked_loan(session, loan_id)
        quote = payment_service.quote_on(
            loan, await payment_service.ledger(session, loan), today, today
        )
        await payment_service.settle_loan(
            session,
            SERVICER,
            loan_id=loan_id,
            amount=quote.amount,
            received_on=today,
            reference="EARLY-SETTLEMENT",
            today=today,
        )
    if plan == "DPD_1_30":
        bounced = await pay(Decimal("250.00"), today - timedelta(days=7), "CHQ-1187")
        await payment_service.reverse_payment(
            session, SERVICER, payment_id=bounced.id, reason="Cheque bounced."
        )
