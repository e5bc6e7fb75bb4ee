"""Collections reminders: requested on overdue instalments, reported on once, as an outbox."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text

from db.session import create_sessionmaker
from graph.ids import key_of, to_global_id
from lending.access import STAFF_ROLES, Role
from lending.clock import today
from lending.services import reminders as reminder_service
from lending.states import ReminderChannel
from tests.dbfixtures import gql, http_client
from tests.factories import TESTER, create_loan, create_product, pay

DAY = today()

REMINDER_FIELDS = """id channel message status requestedBy requestedAt deliveredAt reportedBy
                     detail installment { id number } loan { id }"""

REQUEST = f"""
mutation Request($input: RequestReminderInput!) {{
  requestReminder(input: $input) {{
    reminder {{ {REMINDER_FIELDS} }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

REPORT = f"""
mutation Report($input: ReportReminderDeliveryInput!) {{
  reportReminderDelivery(input: $input) {{
    reminder {{ {REMINDER_FIELDS} }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

LOAN = """
query Loan($id: ID!) {
  loan(id: $id) {
    status
    reminders(first: 10) { totalCount edges { node { id channel status requestedBy } } }
    schedule { installments { id number status reminders { id channel status } } }
  }
}
"""

OVERDUE = """
query Overdue($asOf: Date!, $since: Date) {
  overdueInstallments(asOf: $asOf, notRemindedSince: $since, first: 100) {
    totalCount edges { node { id number } }
  }
}
"""

WRITE_OFF = """
mutation($id: ID!) { writeOffLoan(input: {loanId: $id, reason: "Uncollectable."}) {
  userErrors { code } } }
"""

COUNTS = text(
    "SELECT (SELECT count(*) FROM reminders), (SELECT count(*) FROM audit_events), "
    "(SELECT count(*) FROM idempotency_keys)"
)


async def row_counts(engine) -> tuple[int, ...]:
    async with engine.connect() as connection:
        return tuple((await connection.execute(COUNTS)).one())


async def reminder_rows(engine) -> list:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT id, loan_id, installment_id, channel, message, status, requested_by, "
                    "requested_on, reported_by, reported_at, detail FROM reminders ORDER BY id"
                )
            )
        ).all()


def ok(body, name="requestReminder"):
    assert "errors" not in body, body
    payload = body["data"][name]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def errors_of(body, name="requestReminder"):
    assert "errors" not in body, body
    assert body["data"][name]["reminder"] is None
    return [(e["code"], e["field"]) for e in body["data"][name]["userErrors"]]


@pytest.fixture
async def product(engine):
    await create_product(engine)


async def overdue_loan(client, engine, **overrides):
    """An ACTIVE loan disbursed 45 days ago, nothing paid: instalment 1 is overdue today."""
    loan = await create_loan(engine, disbursed_on=DAY - timedelta(days=45), **overrides)
    body = await gql(client, LOAN, {"id": to_global_id("Loan", loan.id)})
    installments = body["data"]["loan"]["schedule"]["installments"]
    assert installments[0]["status"] == "OVERDUE"
    assert installments[1]["status"] == "UPCOMING"
    return loan, [i["id"] for i in installments]


def request_input(installment_id: str, channel: str = "SMS", **overrides):
    return {
        "installmentId": installment_id,
        "channel": channel,
        "message": "Your instalment is overdue: please pay it this week.",
    } | overrides


async def test_a_reminder_on_an_overdue_instalment_is_queued(
    client, per_field_client, engine, product
):
    # given an active loan whose first instalment is overdue
    loan, installments = await overdue_loan(client, engine)
    loan_gid = to_global_id("Loan", loan.id)
    # when a reminder is requested on it
    payload = ok(await gql(client, REQUEST, {"input": request_input(installments[0])}))
    # then it is QUEUED, requested by the caller, on that instalment
    reminder = payload["reminder"]
    assert payload["replayed"] is False
    assert reminder["channel"] == "SMS"
    assert reminder["status"] == "QUEUED"
    assert reminder["requestedBy"] == "admin"
    assert reminder["message"] == "Your instalment is overdue: please pay it this week."
    assert reminder["requestedAt"] is not None
    assert (reminder["deliveredAt"], reminder["reportedBy"], reminder["detail"]) == (
        None,
        None,
        None,
    )
    assert reminder["installment"] == {"id": installments[0], "number": 1}
    assert reminder["loan"] == {"id": loan_gid}

    # and it shows on the instalment and on the loan, through both read paths
    for reader in (client, per_field_client):
        read = (await gql(reader, LOAN, {"id": loan_gid}))["data"]["loan"]
        assert read["reminders"]["totalCount"] == 1
        assert read["reminders"]["edges"][0]["node"] == {
            "id": reminder["id"],
            "channel": "SMS",
            "status": "QUEUED",
            "requestedBy": "admin",
        }
        rows = read["schedule"]["installments"]
        assert rows[0]["reminders"] == [
            {"id": reminder["id"], "channel": "SMS", "status": "QUEUED"}
        ]
        assert all(r["reminders"] == [] for r in rows[1:])

    # and the row is the outbox entry, dated today
    [row] = await reminder_rows(engine)
    assert to_global_id("Reminder", row.id) == reminder["id"]
    assert (row.loan_id, row.channel, row.status, row.requested_by, row.requested_on) == (
        loan.id,
        "SMS",
        "QUEUED",
        "admin",
        DAY,
    )
    assert (row.reported_by, row.reported_at, row.detail) == (None, None, None)

    # and an audit event records it on the application's chain
    async with engine.connect() as connection:
        event = (
            await connection.execute(
                text(
                    "SELECT actor, entity_id, before, after, chain FROM audit_events "
                    "WHERE action = 'reminder.requested'"
                )
            )
        ).one()
    assert event.actor == "admin"
    assert event.entity_id == f"Reminder:{row.id}"
    assert event.before is None
    assert event.after["status"] == "QUEUED"
    assert event.after["installment_id"] == row.installment_id
    assert str(loan.application_id) in event.chain


async def test_reminders_on_the_loan_newest_first(client, engine, product):
    loan, installments = await overdue_loan(client, engine)
    made = []
    for channel in ("SMS", "EMAIL", "PHONE", "LETTER"):
        made.append(
            ok(await gql(client, REQUEST, {"input": request_input(installments[0], channel)}))[
                "reminder"
            ]["id"]
        )
    page = await gql(
        client,
        "query($id: ID!, $after: String) { loan(id: $id) { reminders(first: 3, after: $after) { "
        "totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } } }",
        {"id": to_global_id("Loan", loan.id)},
    )
    reminders = page["data"]["loan"]["reminders"]
    assert reminders["totalCount"] == 4
    assert [e["node"]["id"] for e in reminders["edges"]] == made[::-1][:3]
    assert reminders["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        client,
        "query($id: ID!, $after: String) { loan(id: $id) { reminders(first: 3, after: $after) { "
        "edges { node { id } } pageInfo { hasNextPage } } } }",
        {"id": to_global_id("Loan", loan.id), "after": reminders["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["id"] for e in rest["data"]["loan"]["reminders"]["edges"]] == [made[0]]


async def test_a_paid_an_upcoming_or_a_due_instalment_is_not_overdue(client, engine, product):
    # given a loan whose overdue first instalment has just been paid in full
    loan, installments = await overdue_loan(client, engine)
    body = await gql(
        client,
        "query($id: ID!) { loan(id: $id) { schedule { installments { totalDue } } } }",
        {"id": to_global_id("Loan", loan.id)},
    )
    first_due = body["data"]["loan"]["schedule"]["installments"][0]["totalDue"]
    await pay(engine, loan.id, first_due, DAY)
    before = await row_counts(engine)
    # when reminders are requested on the paid one and on the upcoming one
    for installment in installments[:2]:
        body = await gql(client, REQUEST, {"input": request_input(installment)})
        # then each is NOT_OVERDUE and nothing is written
        assert errors_of(body) == [("NOT_OVERDUE", ["input", "installmentId"])]
    assert await row_counts(engine) == before

    # and an instalment falling due today is DUE, not overdue
    due_today = await create_loan(engine, disbursed_on=DAY - timedelta(days=20), first_due_date=DAY)
    body = await gql(
        client,
        "query($id: ID!) { loan(id: $id) { schedule { installments { id status } } } }",
        {"id": to_global_id("Loan", due_today.id)},
    )
    due_installments = body["data"]["loan"]["schedule"]["installments"]
    assert due_installments[0]["status"] == "DUE"
    before = await row_counts(engine)
    body = await gql(client, REQUEST, {"input": request_input(due_installments[0]["id"])})
    assert errors_of(body) == [("NOT_OVERDUE", ["input", "installmentId"])]
    assert "DUE" in body["data"]["requestReminder"]["userErrors"][0]["message"]
    assert await row_counts(engine) == before


async def test_no_reminder_on_a_loan_that_is_not_active(client, engine, product):
    # given a written-off loan and a paid-off loan, each with an instalment that was overdue
    written_off, written_off_installments = await overdue_loan(client, engine)
    assert (await gql(client, WRITE_OFF, {"id": to_global_id("Loan", written_off.id)}))["data"][
        "writeOffLoan"
    ]["userErrors"] == []
    paid_off, paid_off_installments = await overdue_loan(client, engine)
    payoff = (
        await gql(
            client,
            "query($id: ID!) { loan(id: $id) { payoffAmount } }",
            {"id": to_global_id("Loan", paid_off.id)},
        )
    )["data"]["loan"]["payoffAmount"]
    result = await pay(engine, paid_off.id, payoff, DAY)
    assert result.loan.status.value == "PAID_OFF"
    before = await row_counts(engine)
    # when reminders are requested on them
    for installment in (written_off_installments[0], paid_off_installments[0]):
        body = await gql(client, REQUEST, {"input": request_input(installment)})
        # then they are INVALID_TRANSITION, and nothing is written
        assert errors_of(body) == [("INVALID_TRANSITION", ["input", "installmentId"])]
    assert await row_counts(engine) == before
    # and neither shows among the overdue instalments that need one
    body = await gql(client, OVERDUE, {"asOf": DAY.isoformat(), "since": DAY.isoformat()})
    assert body["data"]["overdueInstallments"]["totalCount"] == 0
    # (a cancelled loan was never disbursed: it has no instalment to remind anyone of)


async def test_an_unknown_instalment_or_a_bad_message(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    missing = to_global_id("Installment", 10**9)
    assert errors_of(await gql(client, REQUEST, {"input": request_input(missing)})) == [
        ("NOT_FOUND", ["input", "installmentId"])
    ]
    wrong_kind = to_global_id("Loan", 1)
    assert errors_of(await gql(client, REQUEST, {"input": request_input(wrong_kind)})) == [
        ("VALIDATION_FAILED", ["input", "installmentId"])
    ]
    for message in ("", "   ", "x" * 1001):
        body = await gql(
            client, REQUEST, {"input": request_input(installments[0], message=message)}
        )
        assert errors_of(body) == [("VALIDATION_FAILED", ["input", "message"])]
    assert (await row_counts(engine))[0] == 0


async def test_one_reminder_per_instalment_channel_and_day(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    # given an SMS reminder yesterday (the instalment was overdue then too)
    async with create_sessionmaker(engine)() as session, session.begin():
        await reminder_service.request_reminder(
            session,
            TESTER,
            installment_id=key_of(installments[0], "Installment", "installmentId"),
            channel=ReminderChannel.SMS,
            message="Yesterday's reminder.",
            today=DAY - timedelta(days=1),
        )
    # when one is asked for by SMS today, it is not too soon
    first = ok(await gql(client, REQUEST, {"input": request_input(installments[0])}))
    before = await row_counts(engine)
    # but another SMS the same day (with another message) is too soon, and nothing is written
    body = await gql(
        client, REQUEST, {"input": request_input(installments[0], message="Second notice.")}
    )
    assert errors_of(body) == [("REMINDER_TOO_SOON", ["input", "channel"])]
    assert await row_counts(engine) == before
    # while an email the same day is fine
    email = ok(await gql(client, REQUEST, {"input": request_input(installments[0], "EMAIL")}))
    assert email["reminder"]["channel"] == "EMAIL"
    # and the SMS stays too soon even once it failed (one per channel and day)
    ok(
        await gql(
            client,
            REPORT,
            {
                "input": {
                    "reminderId": first["reminder"]["id"],
                    "outcome": "FAILED",
                    "detail": "Number unreachable.",
                }
            },
        ),
        "reportReminderDelivery",
    )
    body = await gql(client, REQUEST, {"input": request_input(installments[0])})
    assert errors_of(body) == [("REMINDER_TOO_SOON", ["input", "channel"])]
    rows = await reminder_rows(engine)
    assert Counter((r.channel, r.requested_on) for r in rows) == {
        ("SMS", DAY - timedelta(days=1)): 1,
        ("SMS", DAY): 1,
        ("EMAIL", DAY): 1,
    }


async def test_20_concurrent_identical_requests_make_one_reminder(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    variables = {"input": request_input(installments[0])}
    results = await asyncio.gather(*(gql(client, REQUEST, variables) for _ in range(20)))
    codes = Counter(
        (r["data"]["requestReminder"]["userErrors"] or [{"code": "OK"}])[0]["code"] for r in results
    )
    assert codes == {"OK": 1, "REMINDER_TOO_SOON": 19}
    assert len(await reminder_rows(engine)) == 1
    async with engine.connect() as connection:
        events = await connection.scalar(
            text("SELECT count(*) FROM audit_events WHERE action = 'reminder.requested'")
        )
    assert events == 1


async def test_20_concurrent_requests_with_one_key_replay_one_reminder(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    variables = {"input": request_input(installments[0], idempotencyKey="remind-1")}
    results = await asyncio.gather(*(gql(client, REQUEST, variables) for _ in range(20)))
    payloads = [ok(r) for r in results]
    assert Counter(p["replayed"] for p in payloads) == {False: 1, True: 19}
    assert len({p["reminder"]["id"] for p in payloads}) == 1
    assert len(await reminder_rows(engine)) == 1


async def test_a_request_and_a_report_replay_without_writing(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    variables = {"input": request_input(installments[0], idempotencyKey="r-1")}
    first = ok(await gql(client, REQUEST, variables))
    counts = await row_counts(engine)
    again = ok(await gql(client, REQUEST, variables))
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["reminder"]["id"] == first["reminder"]["id"]
    assert await row_counts(engine) == counts
    # the same key for another channel is refused
    other = {"input": variables["input"] | {"channel": "EMAIL"}}
    body = await gql(client, REQUEST, other)
    assert errors_of(body) == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]

    report = {
        "input": {
            "reminderId": first["reminder"]["id"],
            "outcome": "DELIVERED",
            "idempotencyKey": "rep-1",
        }
    }
    reported = ok(await gql(client, REPORT, report), "reportReminderDelivery")
    counts = await row_counts(engine)
    replayed = ok(await gql(client, REPORT, report), "reportReminderDelivery")
    assert (reported["replayed"], replayed["replayed"]) == (False, True)
    assert replayed["reminder"]["status"] == "DELIVERED"
    assert replayed["reminder"]["deliveredAt"] == reported["reminder"]["deliveredAt"]
    assert await row_counts(engine) == counts


async def test_a_reminder_is_reported_on_once(client, engine, product):
    # given a queued reminder
    _, installments = await overdue_loan(client, engine)
    reminder = ok(await gql(client, REQUEST, {"input": request_input(installments[0])}))["reminder"]
    # when it is reported delivered
    payload = ok(
        await gql(
            client,
            REPORT,
            {"input": {"reminderId": reminder["id"], "outcome": "DELIVERED", "detail": "id 42"}},
        ),
        "reportReminderDelivery",
    )
    # then it is DELIVERED, reported by the caller
    assert payload["reminder"]["status"] == "DELIVERED"
    assert payload["reminder"]["reportedBy"] == "admin"
    assert payload["reminder"]["detail"] == "id 42"
    assert payload["reminder"]["deliveredAt"] is not None
    [row] = await reminder_rows(engine)
    assert (row.status, row.reported_by, row.detail) == ("DELIVERED", "admin", "id 42")
    assert row.reported_at is not None
    before = await row_counts(engine)
    # and reporting it again, either way, is INVALID_TRANSITION and writes nothing
    for outcome, detail in (("DELIVERED", None), ("FAILED", "bounced")):
        body = await gql(
            client,
            REPORT,
            {"input": {"reminderId": reminder["id"], "outcome": outcome, "detail": detail}},
        )
        assert errors_of(body, "reportReminderDelivery") == [
            ("INVALID_TRANSITION", ["input", "outcome"])
        ]
    assert await row_counts(engine) == before
    assert tuple(await reminder_rows(engine)) == (row,)
    async with engine.connect() as connection:
        event = (
            await connection.execute(
                text("SELECT before, after FROM audit_events WHERE action = 'reminder.delivered'")
            )
        ).one()
    assert (event.before["status"], event.after["status"]) == ("QUEUED", "DELIVERED")


async def test_10_concurrent_reports_on_one_reminder_one_wins(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    reminder = ok(await gql(client, REQUEST, {"input": request_input(installments[0])}))["reminder"]
    reports = [
        {
            "input": {
                "reminderId": reminder["id"],
                "outcome": ("DELIVERED", "FAILED")[n % 2],
                "detail": f"report {n}",
            }
        }
        for n in range(10)
    ]
    results = await asyncio.gather(*(gql(client, REPORT, r) for r in reports))
    codes = Counter(
        (r["data"]["reportReminderDelivery"]["userErrors"] or [{"code": "OK"}])[0]["code"]
        for r in results
    )
    assert codes == {"OK": 1, "INVALID_TRANSITION": 9}
    [winner] = [
        n for n, r in enumerate(results) if not r["data"]["reportReminderDelivery"]["userErrors"]
    ]
    [row] = await reminder_rows(engine)
    assert (row.status, row.detail) == (reports[winner]["input"]["outcome"], f"report {winner}")
    async with engine.connect() as connection:
        reported = await connection.scalar(
            text(
                "SELECT count(*) FROM audit_events "
                "WHERE action IN ('reminder.delivered', 'reminder.failed')"
            )
        )
    assert reported == 1


async def test_a_failure_needs_a_detail(client, engine, product):
    _, installments = await overdue_loan(client, engine)
    reminder = ok(await gql(client, REQUEST, {"input": request_input(installments[0])}))["reminder"]
    before = await row_counts(engine)
    for detail in (None, "", "  "):
        body = await gql(
            client,
            REPORT,
            {"input": {"reminderId": reminder["id"], "outcome": "FAILED", "detail": detail}},
        )
        assert errors_of(body, "reportReminderDelivery") == [
            ("VALIDATION_FAILED", ["input", "detail"])
        ]
    assert await row_counts(engine) == before
    assert (await reminder_rows(engine))[0].status == "QUEUED"
    payload = ok(
        await gql(
            client,
            REPORT,
            {"input": {"reminderId": reminder["id"], "outcome": "FAILED", "detail": "Bounced."}},
        ),
        "reportReminderDelivery",
    )
    assert (payload["reminder"]["status"], payload["reminder"]["detail"]) == ("FAILED", "Bounced.")
    [row] = await reminder_rows(engine)
    assert (row.status, row.detail) == ("FAILED", "Bounced.")
    missing = to_global_id("Reminder", 10**9)
    body = await gql(client, REPORT, {"input": {"reminderId": missing, "outcome": "DELIVERED"}})
    assert errors_of(body, "reportReminderDelivery") == [("NOT_FOUND", ["input", "reminderId"])]


@pytest.mark.parametrize("path", ["compiled", "per field"])
async def test_overdue_instalments_not_reminded_since(
    client, per_field_client, engine, product, path
):
    # given two loans with an overdue first instalment
    _, reminded = await overdue_loan(client, engine)
    _, untouched = await overdue_loan(client, engine)
    reader = client if path == "compiled" else per_field_client

    async def overdue(since):
        body = await gql(reader, OVERDUE, {"asOf": DAY.isoformat(), "since": since})
        assert "errors" not in body, body
        connection = body["data"]["overdueInstallments"]
        assert connection["totalCount"] == len(connection["edges"])
        return {e["node"]["id"] for e in connection["edges"]}

    assert await overdue(DAY.isoformat()) == {reminded[0], untouched[0]}
    # when one is reminded today
    reminder = ok(await gql(client, REQUEST, {"input": request_input(reminded[0])}))["reminder"]
    # then it no longer needs one today (nor since yesterday), but a filter from tomorrow keeps it
    assert await overdue(DAY.isoformat()) == {untouched[0]}
    assert await overdue((DAY - timedelta(days=1)).isoformat()) == {untouched[0]}
    assert await overdue((DAY + timedelta(days=1)).isoformat()) == {reminded[0], untouched[0]}
    assert await overdue(None) == {reminded[0], untouched[0]}
    # and once its only reminder FAILED, it needs one again
    ok(
        await gql(
            client,
            REPORT,
            {"input": {"reminderId": reminder["id"], "outcome": "FAILED", "detail": "No signal."}},
        ),
        "reportReminderDelivery",
    )
    assert await overdue(DAY.isoformat()) == {reminded[0], untouched[0]}
    # unless another reminder on it is still queued (or delivered)
    ok(await gql(client, REQUEST, {"input": request_input(reminded[0], "LETTER")}))
    assert await overdue(DAY.isoformat()) == {untouched[0]}


MISSING_INSTALLMENT = to_global_id("Installment", 10**9)
MISSING_REMINDER = to_global_id("Reminder", 10**9)
ROLE_CASES = {
    "requestReminder": (
        f'mutation {{ requestReminder(input: {{installmentId: "{MISSING_INSTALLMENT}", '
        'channel: SMS, message: "Please pay."}) { userErrors { code } } }',
        {Role.AGENT, Role.SERVICER, Role.ADMIN},
    ),
    "reportReminderDelivery": (
        f'mutation {{ reportReminderDelivery(input: {{reminderId: "{MISSING_REMINDER}", '
        "outcome: DELIVERED}) { userErrors { code } } }",
        {Role.SERVICER, Role.ADMIN},
    ),
}


@pytest.mark.parametrize(
    ("mutation", "role"),
    [(mutation, role) for mutation in ROLE_CASES for role in STAFF_ROLES],
)
async def test_who_may_request_and_report(app, api_keys, engine, mutation, role):
    operation, allowed = ROLE_CASES[mutation]
    async with http_client(app, api_keys[role]) as caller:
        body = await gql(caller, operation)
    if role in allowed:
        assert "errors" not in body, body
        assert body["data"][mutation]["userErrors"] == [{"code": "NOT_FOUND"}]
    else:
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["path"] == [mutation]
    assert (await row_counts(engine))[:2] == (0, 0)


async def test_an_agent_requests_and_a_servicer_reports(app, api_keys, client, engine, product):
    # given an overdue instalment
    _, installments = await overdue_loan(client, engine)
    async with (
        http_client(app, api_keys[Role.AGENT]) as agent,
        http_client(app, api_keys[Role.SERVICER]) as servicer,
    ):
        # when an agent requests a reminder
        reminder = ok(await gql(agent, REQUEST, {"input": request_input(installments[0])}))[
            "reminder"
        ]
        assert reminder["requestedBy"] == "agent"
        report = {"input": {"reminderId": reminder["id"], "outcome": "DELIVERED"}}
        # then the agent may not report on it: FORBIDDEN, nothing written
        body = await gql(agent, REPORT, report)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await reminder_rows(engine))[0].status == "QUEUED"
        # but the servicer may
        reported = ok(await gql(servicer, REPORT, report), "reportReminderDelivery")
        assert reported["reminder"]["reportedBy"] == "servicer"
    async with engine.connect() as connection:
        actors = (
            await connection.execute(
                text(
                    "SELECT action, actor FROM audit_events WHERE action LIKE 'reminder.%' "
                    "ORDER BY id"
                )
            )
        ).all()
    assert [tuple(a) for a in actors] == [
        ("reminder.requested", "agent"),
        ("reminder.delivered", "servicer"),
    ]


async def test_a_reminder_after_a_partial_payment_is_still_allowed(client, engine, product):
    # the instalment is overdue as long as anything of it is outstanding
    loan, installments = await overdue_loan(client, engine)
    await pay(engine, loan.id, "10.00", DAY)
    payload = ok(await gql(client, REQUEST, {"input": request_input(installments[0])}))
    assert payload["reminder"]["status"] == "QUEUED"
    assert len(await reminder_rows(engine)) == 1
