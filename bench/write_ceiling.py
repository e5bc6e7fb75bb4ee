"""The write ceiling: W1's four mutations answered by a bare ASGI app, as fast as plain code can.

    python -m bench.write_ceiling --port 8101 --database-url URL [--workers 1]

No framework and no GraphQL: bench.ceiling's app and asyncpg pool (ten connections) with one
POST endpoint, ``/graphql``, taking the requests bench.writes sends exactly as it sends them
(``{"query": ..., "variables": {"input": {...}}}``, told apart by the mutation's root field)
and answering the JSON it reads (``{"data": {"applyForLoan": {"application": {"id": ...},
"userErrors": []}}}``, with our global ids, so that each step's answer feeds the next).

Each mutation is ONE transaction of three hand-written statements doing what our service does
(lending/services/applications.py, loans.py, payments.py and audit.py, graph/mutation.py):

1. the idempotency key claimed for the actor, and only if it was: the application or loan
   locked (``FOR UPDATE``) with what the step reads of it, and its audit chain's head locked
   (a key already claimed replays the stored result instead, and writes nothing);
2. the writes: the applicant got or created by lower(email) and the application inserted; the
   decision, the loan from the product's terms and the application's status; the loan ACTIVE
   with its schedule's instalments (one ``unnest``); the payment, the loan's allocations
   re-derived and the loan's version. Each new row comes back whole, for the audit trail;
3. the audit events (hashed in Python by lending.audit's rules over the same content as the
   service's), their announcements (``pg_notify``, as db/repositories/events.py does), the
   idempotency record's result, and the payload the driver asks for, built in SQL.

The rules are the project's own pure functions (lending.validation, lending.states,
lending.schedule, lending.allocation, lending.repayment, lending.audit): only the plumbing
differs. The caller is fixed (``ACTOR``, the name of the bench's API key): the ceiling does
not authenticate. Only what W1 sends is understood (no assessment, no dry run).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg

from bench.ceiling import BadRequest, CeilingApp, Handler, dumps, loads, main
from db.reads.plan import global_id
from lending import clock
from lending.allocation import InstallmentDue, PaymentIn, allocate, settled_on
from lending.assessment import check_policy
from lending.audit import CHAIN_PREFIX, AuditAction, canonical_json, chain_of, event_hash, json_safe
from lending.errors import DomainError, DomainErrors, ErrorCode, check_version
from lending.money import as_written, parse_amount
from lending.references import new_reference
from lending.repayment import (
    PaidPart,
    balances_as_of,
    check_not_overpaid,
    check_received_on,
    left_to_pay,
    loan_schedule,
)
from lending.settlement import AccrualTerms, settlement_parts
from lending.states import (
    ACTION_FOR_OUTCOME,
    ApplicationStatus,
    DecisionOutcome,
    LoanAction,
    LoanStatus,
    next_loan_status,
    next_status,
)
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency
from lending.validation import clean_text, validate_application, validate_decision

# The bench's API key's name (bench.book.BENCH_KEY_NAME), recorded as the actor of every change.
ACTOR = "bench"
# Where loan events are announced (db.repositories.events.CHANNEL).
CHANNEL = "lending_events"
MAX_KEY = 2**63 - 1
MAX_ID_LENGTH = 200
MAX_REFERENCE_LENGTH = 100

Row = Any  # an asyncpg.Record: a row, or a composite value within one

# ---- SQL ----------------------------------------------------------------------------------

# Statement 1 of every mutation starts with the claim: $1 actor, $2 key (NULL: no key), $3
# operation, $4 request hash. What it locks, it locks only when the claim was made.
CLAIM = """claimed AS (
    INSERT INTO idempotency_keys (actor, key, operation, request_hash)
    SELECT $1::text, $2::text, $3::text, $4::text WHERE $2::text IS NOT NULL
    ON CONFLICT (actor, key) DO NOTHING
    RETURNING key
)"""
CLAIMED = "($2::text IS NULL OR EXISTS (SELECT FROM claimed))"


def _head(chain_sql: str) -> str:
    """A CTE locking the head of the chain ``chain_sql`` names (created when missing), as
    db.repositories.audit.lock_chain does; it yields the chain's last hash."""
    return f"""head AS (
    INSERT INTO audit_chain_heads AS h (chain) {chain_sql}
    ON CONFLICT (chain) DO UPDATE SET last_hash = h.last_hash
    RETURNING h.last_hash
)"""


def _lock_loan_sql(more: str = "") -> str:
    """Statement 1 of a step on a loan ($5): the claim, the loan locked, its chain's head."""
    return f"""WITH {CLAIM}, locked AS (
    SELECT l AS loan FROM loans l WHERE l.id = $5::bigint AND {CLAIMED} FOR UPDATE
), {_head(f"SELECT '{CHAIN_PREFIX}' || (locked.loan).application_id FROM locked")}
SELECT {CLAIMED} AS claimed, (SELECT loan FROM locked) AS loan,
    (SELECT last_hash FROM head) AS last_hash{more}"""


APPLY_CLAIM = f"""WITH {CLAIM}
SELECT {CLAIMED} AS claimed, p AS product
FROM (SELECT 1) one LEFT JOIN loan_products p ON p.code = $5::text"""

# $1 full name, $2 email, $3 phone, $4 lower(email) as Python writes it, $5.. the application.
APPLY_WRITE = """WITH inserted AS (
    INSERT INTO applicants (full_name, email, phone) VALUES ($1::text, $2::text, $3::text)
    ON CONFLICT (lower(email)) DO NOTHING
    RETURNING id
), applicant AS (
    SELECT id FROM inserted UNION ALL SELECT id FROM applicants WHERE lower(email) = $4::text
), added AS (
    INSERT INTO loan_applications AS a (reference, applicant_id, product_id, amount_requested,
        term_months, purpose, declared_monthly_income, status)
    SELECT $5::text, id, $6::bigint, $7::numeric, $8::int, $9::text, $10::numeric, $11::text
    FROM applicant LIMIT 1
    ON CONFLICT (applicant_id) WHERE status IN ('SUBMITTED', 'IN_REVIEW') DO NOTHING
    RETURNING a
)
SELECT (SELECT id FROM applicant LIMIT 1) AS applicant_id, (SELECT a FROM added) AS application"""

DECIDE_CLAIM = f"""WITH {CLAIM}, locked AS (
    SELECT a AS application FROM loan_applications a
    WHERE a.id = $5::bigint AND {CLAIMED} FOR UPDATE
), {_head("SELECT $6::text FROM locked")}
SELECT {CLAIMED} AS claimed, locked.application, p AS product,
    (SELECT last_hash FROM head) AS last_hash
FROM (SELECT 1) one LEFT JOIN locked ON true
LEFT JOIN loan_products p ON p.id = (locked.application).product_id"""

# The loan ($8..) only when its status ($17) is given: an approval.
DECIDE_WRITE = """WITH decided AS (
    INSERT INTO decisions AS d (application_id, outcome, reason, decided_by, approved_amount,
        annual_interest_rate, term_months)
    VALUES ($1::bigint, $2::text, $3::text, $4::text, $5::numeric, $6::numeric, $7::int)
    RETURNING d
), created AS (
    INSERT INTO loans AS l (reference, application_id, applicant_id, principal, currency,
        annual_interest_rate, term_months, amortization, frequency, day_count, status,
        approved_at)
    SELECT $8::text, $1::bigint, $9::bigint, $10::numeric, $11::text, $12::numeric, $13::int,
        $14::text, $15::text, $16::text, $17::text, (decided.d).decided_at
    FROM decided WHERE $17::text IS NOT NULL
    RETURNING l
), moved AS (
    UPDATE loan_applications AS a SET status = $18::text, version = a.version + 1,
        updated_at = now()
    WHERE a.id = $1::bigint
    RETURNING a
)
SELECT (SELECT d FROM decided) AS decision, (SELECT l FROM created) AS loan,
    (SELECT a FROM moved) AS application"""

DISBURSE_CLAIM = _lock_loan_sql()

DISBURSE_WRITE = """WITH booked AS (
    INSERT INTO installments (loan_id, number, due_date, principal_due, interest_due,
        balance_after, settled_on)
    SELECT $1::bigint, u.* FROM unnest($2::int[], $3::date[], $4::numeric[], $5::numeric[],
        $6::numeric[], $10::date[]) u
)
UPDATE loans AS l SET status = $7::text, disbursed_on = $8::date, maturity_date = $9::date,
    version = l.version + 1, updated_at = now()
WHERE l.id = $1::bigint
RETURNING l"""

# A loan's ledger ($5): its instalments in order and its live payments, one array per column.
LEDGER = """(SELECT array_agg(id ORDER BY number) AS installment_ids,
        array_agg(number ORDER BY number) AS numbers,
        array_agg(due_date ORDER BY number) AS due_dates,
        array_agg(principal_due ORDER BY number) AS principal_due,
        array_agg(interest_due ORDER BY number) AS interest_due
    FROM installments WHERE loan_id = $5::bigint) i,
(SELECT array_agg(id ORDER BY id) AS payment_ids, array_agg(amount ORDER BY id) AS amounts,
        array_agg(received_on ORDER BY id) AS received_on,
        array_agg(recorded_at ORDER BY id) AS recorded_at,
        array_agg(settlement ORDER BY id) AS settles
    FROM payments WHERE loan_id = $5::bigint AND reversed_at IS NULL) p"""

# The ledger is read in the statement that locks the loan. Should the lock have waited for
# another transaction, the ledger (read before the wait) may be behind: every change to a
# loan's payments moves its version, so a version that differs from the one this statement's
# snapshot holds says so, and the ledger is read again.
PAY_CLAIM = _lock_loan_sql(
    """, (SELECT version FROM loans WHERE id = $5::bigint) AS seen_version, now() AS now,
    nextval(pg_get_serial_sequence('payments', 'id')) AS payment_id, i.*, p.*
FROM """
    + LEDGER
)
PAY_LEDGER = "SELECT i.*, p.* FROM " + LEDGER.replace("$5::", "$1::")

PAY_WRITE = """WITH paid AS (
    INSERT INTO payments AS p (id, loan_id, reference, amount, received_on, recorded_by)
    VALUES ($1::bigint, $2::bigint, $3::text, $4::numeric, $5::date, $6::text)
    ON CONFLICT (loan_id, reference) WHERE reference IS NOT NULL DO NOTHING
    RETURNING p
), cleared AS (
    DELETE FROM payment_allocations WHERE loan_id = $2::bigint
), allocated AS (
    INSERT INTO payment_allocations (loan_id, payment_id, installment_id, received_on,
        principal, interest, interest_waived)
    SELECT $2::bigint, u.* FROM unnest($7::bigint[], $8::bigint[], $9::date[], $10::numeric[],
        $11::numeric[], $12::numeric[]) u
), settled AS (
    UPDATE installments AS i SET settled_on = u.settled_on
    FROM unnest($14::bigint[], $15::date[]) u (id, settled_on)
    WHERE i.id = u.id AND i.loan_id = $2::bigint AND i.settled_on IS DISTINCT FROM u.settled_on
), moved AS (
    UPDATE loans AS l SET status = $13::text, version = l.version + 1, updated_at = now(),
        principal_paid = (SELECT coalesce(sum(p), 0) FROM unnest($10::numeric[]) p),
        interest_paid = (SELECT coalesce(sum(i), 0) FROM unnest($11::numeric[]) i)
    WHERE l.id = $2::bigint
    RETURNING l
)
SELECT (SELECT p FROM paid) AS payment, (SELECT l FROM moved) AS loan"""

# What the payoff of a disbursed loan ($1) is computed from, for a replay's payload.
PAYOFF_INPUTS = """SELECT l.currency, l.disbursed_on, i.*, coalesce(a.parts, '{}') AS parts,
    a.principal, a.interest, a.received_on, a.waived
FROM loans l,
(SELECT array_agg(number ORDER BY number) AS numbers,
        array_agg(due_date ORDER BY number) AS due_dates,
        array_agg(principal_due ORDER BY number) AS principal_due,
        array_agg(interest_due ORDER BY number) AS interest_due
    FROM installments WHERE loan_id = $1::bigint) i,
(SELECT array_agg(i.number) AS parts, array_agg(a.principal) AS principal,
        array_agg(a.interest) AS interest, array_agg(a.received_on) AS received_on,
        array_agg(a.interest_waived) AS waived
    FROM payment_allocations a JOIN installments i ON i.id = a.installment_id
    WHERE a.loan_id = $1::bigint) a
WHERE l.id = $1::bigint"""

REPLAY_STORED = (
    "SELECT operation, request_hash, result::text AS result FROM idempotency_keys "
    "WHERE actor = $1::text AND key = $2::text"
)


def _global_id_sql(type_name: str, key_sql: str) -> str:
    """SQL of db.reads.plan.global_id: URL-safe base64 of "Type:key", unpadded, one line."""
    text = f"'{type_name}:' || {key_sql}"
    return f"translate(encode(convert_to({text}, 'UTF8'), 'base64'), E'+/=\\n', '-_')"


@dataclass(frozen=True)
class Shape:
    """A mutation's payload as W1 selects it: one object (its id, and the loan's payoff amount
    on a disbursement) and the userErrors."""

    root: str
    field: str
    type_name: str
    payoff: bool = False

    def sql(self, key: str, payoff: str) -> str:
        """SQL of the whole response body, the object's key and payoff given as parameters."""
        payoff_sql = f", 'payoffAmount', {payoff}::text" if self.payoff else ""
        node = (
            f"CASE WHEN {key}::bigint IS NULL THEN NULL ELSE json_build_object('id', "
            f"{_global_id_sql(self.type_name, f'{key}::bigint')}{payoff_sql}) END"
        )
        return (
            f"json_build_object('data', json_build_object('{self.root}', json_build_object("
            f"'{self.field}', {node}, 'userErrors', json_build_array())))::text"
        )

    def parameters(self, key: int | None, payoff: str | None) -> tuple[Any, ...]:
        """The values of ``sql``'s parameters (the payoff amount only where it is shown)."""
        return (key, payoff) if self.payoff else (key,)

    def failed(self, errors: list[DomainError]) -> bytes:
        """The response body of userErrors."""
        found = [{"code": e.code.value, "message": e.message} for e in errors]
        return dumps({"data": {self.root: {self.field: None, "userErrors": found}}})


APPLY = Shape("applyForLoan", "application", "LoanApplication")
DECIDE = Shape("decideApplication", "loan", "Loan")
DISBURSE = Shape("disburseLoan", "loan", "Loan", payoff=True)
PAY = Shape("recordPayment", "payment", "Payment")


def _record_sql(shape: Shape) -> str:
    """Statement 3: the audit events, the idempotency record's result, the announcements and
    the payload. $1 chain, $2 actor, $3 request id, $4 key, $5-$12 the events' columns, $13 the
    result, $14 the announcements, $15 the payload's key, $16 its payoff amount."""
    return f"""WITH events AS (
    INSERT INTO audit_events (chain, actor, action, entity_type, entity_id, before, after,
        request_id, idempotency_key, at, previous_hash, hash)
    SELECT $1::text, $2::text, e.action, e.entity_type, e.entity_id, e.before, e.after,
        $3::text, $4::text, e.at, e.previous_hash, e.hash
    FROM unnest($5::text[], $6::text[], $7::text[], $8::jsonb[], $9::jsonb[],
        $10::timestamptz[], $11::text[], $12::text[])
        AS e(action, entity_type, entity_id, before, after, at, previous_hash, hash)
), stored AS (
    UPDATE idempotency_keys SET result = $13::jsonb WHERE actor = $2::text AND key = $4::text
)
SELECT count(pg_notify('{CHANNEL}', n)) AS announced, {shape.sql("$15", "$16")} AS body
FROM unnest($14::text[]) n"""


RECORD = {shape.root: _record_sql(shape) for shape in (APPLY, DECIDE, DISBURSE, PAY)}
REPLAY = {shape.root: f"SELECT {shape.sql('$1', '$2')}" for shape in (APPLY, DECIDE, DISBURSE, PAY)}

# ---- a mutation's transaction ---------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: its operation (the root field), input, idempotency key and fingerprint."""

    shape: Shape
    given: dict[str, Any]
    key: str | None
    request_hash: str
    request_id: str

    def claim_args(self) -> tuple[str, str | None, str, str]:
        return ACTOR, self.key, self.shape.root, self.request_hash


@dataclass(frozen=True)
class Change:
    """One audit event to record: what was done to which new row, and its state before."""

    action: AuditAction
    entity_type: str
    row: Row
    before: dict[str, Any] | None = None
    loan_id: int | None = None


class Replay(Exception):
    """The key was claimed by an earlier call: its stored result is answered instead."""


def snapshot(row: Row) -> dict[str, Any]:
    """A row's columns, JSON-ready: what db.repositories.audit.snapshot makes of a model row."""
    return {name: json_safe(value) for name, value in row.items()}


def key_of(text: object, type_name: str, field: str) -> int:
    """The key behind a global id of ``type_name``: only the one spelling global_id writes."""
    if isinstance(text, str) and len(text) <= MAX_ID_LENGTH:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
            name, _, digits = raw.partition(":")
            key = int(digits)
        except (binascii.Error, ValueError):  # ValueError: not ASCII, not digits
            key = 0
        else:
            if name == type_name and 1 <= key <= MAX_KEY and global_id(type_name, key) == text:
                return key
    raise DomainError(ErrorCode.VALIDATION_FAILED, f"Expected the id of a {type_name}.", field)


def request_hash(operation: str, given: dict[str, Any]) -> str:
    """The input's fingerprint (as graph.mutation.request_hash: the operation and the input,
    minus the key and the dry-run flag; here the input as sent)."""
    fields = {k: v for k, v in given.items() if k not in ("idempotencyKey", "dryRun")}
    return hashlib.sha256(canonical_json([operation, fields]).encode()).hexdigest()


async def record(
    connection: asyncpg.Connection,
    call: Call,
    chain: str,
    previous: str | None,
    changes: Sequence[Change],
    result: dict[str, list[Any] | None],
    key: int | None,
    payoff: str | None = None,
) -> bytes:
    """Statement 3: the events (as lending.services.audit.record builds them), their
    announcements, the idempotency record's result and the payload."""
    application_id = int(chain.removeprefix(CHAIN_PREFIX))
    events: list[tuple[Any, ...]] = []
    announcements = []
    for change in changes:
        entity_id = f"{change.entity_type}:{change.row['id']}"
        at = datetime.now(UTC)
        content = {
            "chain": chain,
            "actor": ACTOR,
            "action": change.action.value,
            "entity_type": change.entity_type,
            "entity_id": entity_id,
            "before": change.before,
            "after": snapshot(change.row),
            "request_id": call.request_id,
            "idempotency_key": call.key,
            "at": at.isoformat(),
        }
        digest = event_hash(previous, content)
        before = None if change.before is None else dumps(change.before).decode()
        after = dumps(content["after"]).decode()
        action = change.action.value
        events.append((action, change.entity_type, entity_id, before, after, at, previous, digest))
        previous = digest
        if change.action.event is not None:
            announcement = {
                "type": change.action.event.value,
                "applicationId": application_id,
                "loanId": change.loan_id,
                "entityId": entity_id,
                "actor": ACTOR,
                "at": content["at"],
            }
            announcements.append(dumps(announcement).decode())
    row = await connection.fetchrow(
        RECORD[call.shape.root],
        chain,
        ACTOR,
        call.request_id,
        call.key,
        *(list(column) for column in zip(*events, strict=True)),
        dumps(result).decode(),
        announcements,
        *call.shape.parameters(key, payoff),
    )
    body: str = row["body"]
    return body.encode()


def _claimed(row: Row) -> None:
    if not row["claimed"]:
        raise Replay


async def _replay(connection: asyncpg.Connection, call: Call) -> bytes:
    """What an earlier call with the key stored, with its object as it is now."""
    stored = await connection.fetchrow(REPLAY_STORED, ACTOR, call.key)
    assert stored is not None, "a key not claimed is a key some committed call holds"
    if stored["request_hash"] != call.request_hash:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            f"This key was first used for another {stored['operation']} input.",
            "idempotencyKey",
        )
    reference = loads((stored["result"] or "{}").encode()).get(call.shape.field)
    key = reference[1] if reference else None
    payoff = None
    if call.shape.payoff and key is not None:
        payoff = await _payoff_now(connection, key)
    body: str = await connection.fetchval(
        REPLAY[call.shape.root], *call.shape.parameters(key, payoff)
    )
    return body.encode()


def _payoff(
    installments: Sequence[InstallmentDue], parts: Sequence[PaidPart], currency: str
) -> str:
    """graph.types.loans.Loan.payoffAmount: everything left to pay today (UTC)."""
    balances = balances_as_of(installments, parts, clock.today())
    return str(as_written(left_to_pay(balances), currency))


async def _payoff_now(connection: asyncpg.Connection, loan_id: int) -> str | None:
    row = await connection.fetchrow(PAYOFF_INPUTS, loan_id)
    if row is None or row["disbursed_on"] is None:
        return None
    installments = _dues(row)
    parts = [
        PaidPart(*part)
        for part in _zipped(row, "parts", "principal", "interest", "received_on", "waived")
    ]
    return _payoff(installments, parts, row["currency"])


def _dues(row: Row) -> list[InstallmentDue]:
    return [
        InstallmentDue(*due)
        for due in _zipped(row, "numbers", "due_dates", "principal_due", "interest_due")
    ]


def _zipped(row: Row, *arrays: str) -> Iterator[tuple[Any, ...]]:
    """Rows from arrays aggregated one per column (a NULL array: no rows)."""
    return zip(*(row[name] or () for name in arrays), strict=True)


# ---- the four mutations ---------------------------------------------------------------------

Work = Callable[[asyncpg.Connection, Call], Awaitable[bytes]]


async def apply_for_loan(connection: asyncpg.Connection, call: Call) -> bytes:
    """lending.services.applications.apply_for_loan."""
    given = call.given
    applicant, code = given["applicant"], given["productCode"]
    found = await connection.fetchrow(APPLY_CLAIM, *call.claim_args(), code.strip())
    _claimed(found)
    product = found["product"]
    valid = validate_application(
        full_name=applicant["fullName"],
        email=applicant["email"],
        phone=applicant.get("phone"),
        product=None if product is None else SimpleNamespace(**product),
        product_code=code,
        amount=given.get("amount"),
        term_months=given["termMonths"],
        purpose=given.get("purpose"),
        declared_monthly_income=given.get("declaredMonthlyIncome"),
    )
    person = valid.applicant
    args = (
        person.full_name,
        person.email,
        person.phone,
        person.email.lower(),
        new_reference("APP"),
        product["id"],
        valid.amount,
        valid.term_months,
        valid.purpose,
        valid.declared_monthly_income,
        ApplicationStatus.SUBMITTED.value,
    )
    added = await connection.fetchrow(APPLY_WRITE, *args)
    if added["applicant_id"] is None:
        # The applicant was inserted by a transaction that committed after this statement's
        # snapshot was taken (the insert waited for it): a new statement sees it.
        added = await connection.fetchrow(APPLY_WRITE, *args)
    application = added["application"]
    if application is None:
        raise DomainError(
            ErrorCode.DUPLICATE_OPEN_APPLICATION,
            f"{person.email} already has an open application; decide or withdraw it first.",
            "applicant.email",
        )
    key = application["id"]
    return await record(
        connection,
        call,
        chain_of(key),
        None,  # a new chain: nobody else can see the application yet
        [Change(AuditAction.APPLICATION_SUBMITTED, "LoanApplication", application)],
        {"application": ["LoanApplication", key]},
        key,
    )


async def decide_application(connection: asyncpg.Connection, call: Call) -> bytes:
    """lending.services.applications.decide_application (without an assessment)."""
    given = call.given
    key = key_of(given.get("applicationId"), "LoanApplication", "applicationId")
    chain = chain_of(key)
    found = await connection.fetchrow(DECIDE_CLAIM, *call.claim_args(), key, chain)
    _claimed(found)
    application = found["application"]
    if application is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such application.", "applicationId")
    check_version(given.get("expectedVersion"), application["version"])
    product = SimpleNamespace(**found["product"])
    valid = validate_decision(
        outcome=given["outcome"],
        reason=given["reason"],
        approved_amount=given.get("approvedAmount"),
        annual_interest_rate=given.get("annualInterestRate"),
        term_months=given.get("termMonths"),
        product=product,
    )
    status = next_status(
        ApplicationStatus(application["status"]), ACTION_FOR_OUTCOME[valid.outcome]
    )
    check_policy(product, valid.outcome, None)
    approved = valid.outcome is DecisionOutcome.APPROVED
    written = await connection.fetchrow(
        DECIDE_WRITE,
        key,
        valid.outcome.value,
        valid.reason,
        ACTOR,
        valid.approved_amount,
        valid.annual_interest_rate,
        valid.term_months,
        new_reference("LN"),
        application["applicant_id"],
        _first(valid.approved_amount, application["amount_requested"]),
        product.currency,
        _first(valid.annual_interest_rate, product.annual_interest_rate),
        _first(valid.term_months, application["term_months"]),
        product.amortization,
        product.frequency,
        product.day_count,
        LoanStatus.APPROVED.value if approved else None,
        status.value,
    )
    decision, loan = written["decision"], written["loan"]
    loan_id = loan["id"] if loan is not None else None
    changes = [Change(AuditAction.DECISION_RECORDED, "Decision", decision)]
    if loan is not None:
        changes.append(Change(AuditAction.LOAN_CREATED, "Loan", loan, loan_id=loan_id))
    changes.append(
        Change(
            AuditAction.APPLICATION_DECIDED,
            "LoanApplication",
            written["application"],
            snapshot(application),
            loan_id=loan_id,
        )
    )
    result = {
        "application": ["LoanApplication", key],
        "decision": ["Decision", decision["id"]],
        "loan": ["Loan", loan_id] if loan_id is not None else None,
    }
    return await record(connection, call, chain, found["last_hash"], changes, result, loan_id)


def _first(given: Any, default: Any) -> Any:
    return default if given is None else given


def _terms(loan: Row) -> SimpleNamespace:
    """A loan row as lending.repayment.LoanTerms."""
    return SimpleNamespace(
        principal=loan["principal"],
        annual_interest_rate=loan["annual_interest_rate"],
        term_months=loan["term_months"],
        amortization=AmortizationMethod(loan["amortization"]),
        frequency=RepaymentFrequency(loan["frequency"]),
        day_count=DayCount(loan["day_count"]),
        currency=loan["currency"],
    )


def _day(given: dict[str, Any], name: str) -> date | None:
    value = given.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise BadRequest(f"{name} is not a date") from error


async def _locked_loan(
    connection: asyncpg.Connection, call: Call, statement: str
) -> tuple[int, Row, Row]:
    """Statement 1 of a step on a loan: the loan's key, what the statement read, the loan."""
    key = key_of(call.given.get("loanId"), "Loan", "loanId")
    found = await connection.fetchrow(statement, *call.claim_args(), key)
    _claimed(found)
    loan: Row | None = found["loan"]
    if loan is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such loan.", "loanId")
    return key, found, loan


async def disburse_loan(connection: asyncpg.Connection, call: Call) -> bytes:
    """lending.services.loans.disburse_loan."""
    given, today = call.given, clock.today()
    key, found, loan = await _locked_loan(connection, call, DISBURSE_CLAIM)
    check_version(given.get("expectedVersion"), loan["version"])
    status = next_loan_status(LoanStatus(loan["status"]), LoanAction.DISBURSE)
    disbursed_on = _day(given, "disbursedOn") or today
    if disbursed_on > today:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "A loan cannot be disbursed in the future.", "disbursedOn"
        )
    approved_on = loan["approved_at"].date()
    if disbursed_on < approved_on:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"A loan cannot be disbursed before it was approved ({approved_on}).",
            "disbursedOn",
        )
    schedule = loan_schedule(_terms(loan), disbursed_on, _day(given, "firstDueDate"))
    rows = schedule.installments
    disbursed = await connection.fetchval(
        DISBURSE_WRITE,
        key,
        [r.number for r in rows],
        [r.due_date for r in rows],
        [r.principal for r in rows],
        [r.interest for r in rows],
        [r.balance_after for r in rows],
        status.value,
        disbursed_on,
        schedule.maturity_date,
        [settled_on(r.due_date, r.total, r.total, None) for r in rows],
    )
    dues = [InstallmentDue(r.number, r.due_date, r.principal, r.interest) for r in rows]
    return await record(
        connection,
        call,
        chain_of(loan["application_id"]),
        found["last_hash"],
        [Change(AuditAction.LOAN_DISBURSED, "Loan", disbursed, snapshot(loan), loan_id=key)],
        {"loan": ["Loan", key]},
        key,
        _payoff(dues, [], loan["currency"]),
    )


async def record_payment(connection: asyncpg.Connection, call: Call) -> bytes:
    """lending.services.payments.record_payment."""
    given, today = call.given, clock.today()
    key, found, loan = await _locked_loan(connection, call, PAY_CLAIM)
    next_loan_status(LoanStatus(loan["status"]), LoanAction.RECORD_PAYMENT)
    currency, disbursed_on = loan["currency"], loan["disbursed_on"]
    value = parse_amount(given.get("amount"), currency, "amount")
    received_on = _day(given, "receivedOn") or today
    check_received_on(received_on, disbursed_on, today)
    reference = clean_text(
        given.get("reference"),
        "reference",
        max_length=MAX_REFERENCE_LENGTH,
        required=False,
        label="Reference",
    )
    ledger = found
    if found["seen_version"] != loan["version"]:
        ledger = await connection.fetchrow(PAY_LEDGER, key)
    payment_id = found["payment_id"]
    payments = [
        PaymentIn(*p)
        for p in _zipped(ledger, "payment_ids", "amounts", "received_on", "recorded_at", "settles")
    ]
    payments.append(PaymentIn(payment_id, value, received_on, found["now"]))
    terms = AccrualTerms(disbursed_on, DayCount(loan["day_count"]), currency)
    result = allocate(
        _dues(ledger), payments, settle=lambda balances, day: settlement_parts(balances, day, terms)
    )
    # Payments are applied in the order received: what the new one could not place is what
    # it has beyond the payoff amount before it.
    check_not_overpaid(value, value - result.unallocated, currency)
    paid_off = left_to_pay(result.balances) == 0
    status = LoanStatus.PAID_OFF.value if paid_off else loan["status"]
    installment_ids = dict(zip(ledger["numbers"], ledger["installment_ids"], strict=True))
    received = {p.key: p.received_on for p in payments}
    parts = result.allocations
    written = await connection.fetchrow(
        PAY_WRITE,
        payment_id,
        key,
        reference,
        value,
        received_on,
        ACTOR,
        [a.payment_key for a in parts],
        [installment_ids[a.installment_number] for a in parts],
        [received[a.payment_key] for a in parts],
        [a.principal for a in parts],
        [a.interest for a in parts],
        [a.interest_waived for a in parts],
        status,
        [installment_ids[b.number] for b in result.balances],
        [b.settled_on for b in result.balances],
    )
    payment = written["payment"]
    if payment is None:
        raise DomainError(
            ErrorCode.DUPLICATE_PAYMENT_REFERENCE,
            f"A payment with reference {reference!r} is already recorded on this loan.",
            "reference",
        )
    changes = [Change(AuditAction.PAYMENT_RECORDED, "Payment", payment, loan_id=key)]
    if paid_off:
        changes.append(
            Change(AuditAction.LOAN_PAID_OFF, "Loan", written["loan"], snapshot(loan), key)
        )
    return await record(
        connection,
        call,
        chain_of(loan["application_id"]),
        found["last_hash"],
        changes,
        {"payment": ["Payment", payment_id], "loan": ["Loan", key]},
        payment_id,
    )


MUTATIONS: dict[str, tuple[Shape, Work]] = {
    APPLY.root: (APPLY, apply_for_loan),
    DECIDE.root: (DECIDE, decide_application),
    DISBURSE.root: (DISBURSE, disburse_loan),
    PAY.root: (PAY, record_payment),
}

# The first field of the operation's selection: `mutation(...) { applyForLoan(input: ...`.
_ROOT_FIELD = re.compile(r"\{\s*([_A-Za-z][_0-9A-Za-z]*)")
_ROOT_OF: dict[str, str] = {}  # query text → its root field, for the documents seen


def _root_field(query: str) -> str:
    root = _ROOT_OF.get(query)
    if root is None:
        match = _ROOT_FIELD.search(query)
        if match is None or match[1] not in MUTATIONS:
            raise BadRequest(f"expected one of the mutations {', '.join(MUTATIONS)}")
        root = _ROOT_OF[query] = match[1]
    return root


async def graphql(pool: asyncpg.Pool, body: dict[str, Any]) -> bytes:
    """A W1 request: its mutation in one transaction; userErrors roll it back."""
    query, variables = body.get("query"), body.get("variables")
    given = variables.get("input") if isinstance(variables, dict) else None
    if not isinstance(query, str) or not isinstance(given, dict):
        raise BadRequest('expected {"query": ..., "variables": {"input": {...}}}')
    shape, work = MUTATIONS[_root_field(query)]
    key = given.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 255):
        return shape.failed(
            [
                DomainError(
                    ErrorCode.VALIDATION_FAILED,
                    "An idempotency key has 1 to 255 characters.",
                    "idempotencyKey",
                )
            ]
        )
    call = Call(shape, given, key, request_hash(shape.root, given), uuid.uuid4().hex)
    try:
        async with pool.acquire() as connection, connection.transaction():
            try:
                return await work(connection, call)
            except Replay:
                return await _replay(connection, call)
    except DomainErrors as failed:
        return shape.failed(failed.errors)
    except DomainError as failed:
        return shape.failed([failed])
    except (KeyError, TypeError) as error:  # a required field missing, or of another type
        raise BadRequest(f"the input is not a {shape.root} input: {error}") from error


class WriteCeilingApp(CeilingApp):
    """bench.ceiling's app serving W1's mutations at /graphql."""

    routes: dict[str, Handler] = {"/graphql": graphql}  # noqa: RUF012 - read only
    name = "write-ceiling"


def app_from_environment() -> WriteCeilingApp:
    """The app for uvicorn worker processes: the URL comes from CEILING_DATABASE_URL."""
    return WriteCeilingApp(os.environ["CEILING_DATABASE_URL"])


if __name__ == "__main__":
    main(
        factory="bench.write_ceiling:app_from_environment",
        description=__doc__.splitlines()[0],
    )
