"""Forged ids and cursors are the client's error on both read paths, never an internal one."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from graph.ids import to_global_id
from tests.dbfixtures import both_paths
from tests.factories import create_application, create_product

APPLICANTS = """
query($after: String) { applicants(first: 2, after: $after) { totalCount edges { cursor } } }
"""
AUDIT = """
query($id: ID!, $after: String) { auditTrail(entityId: $id, after: $after) { totalCount } }
"""
NODE = "query($id: ID!) { node(id: $id) { id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
APPLICANT = "query($id: ID!) { applicant(id: $id) { id } }"
AUDIT_OF = "query($id: ID!) { auditTrail(entityId: $id) { totalCount } }"


def b64(raw: str | bytes) -> str:
    """URL-safe base64 without padding, as ids and cursors are written."""
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cursor(*parts: Any) -> str:
    """A cursor as graph.relay writes one: base64 of the compact JSON [order, value, key]."""
    return b64(json.dumps(list(parts), separators=(",", ":")))


def refused(body: dict[str, Any], message: str) -> None:
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["message"] == message


@pytest.fixture
async def applicant(engine) -> Any:
    await create_product(engine)
    return await create_application(engine)


@pytest.fixture
def faults(caplog) -> Any:
    caplog.set_level(logging.INFO, logger="lending")
    yield caplog
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


CREATED = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("query", "forged"),
    [
        # a keyset value beyond bigint: PostgreSQL overflowed
        (AUDIT, cursor("SEQUENCE:ASC", str(2**100), 1)),
        # a key beyond bigint
        (APPLICANTS, cursor("CREATED_AT:ASC", CREATED, 2**100)),
        # an instant that is past year 9999 in UTC
        (APPLICANTS, cursor("CREATED_AT:ASC", "9999-12-31T23:59:59.999999-14:00", 1)),
        # a key of `true`: JSON's booleans are Python ints
        (APPLICANTS, cursor("CREATED_AT:ASC", CREATED, True)),
        # 3,000 nested lists: json.loads ran out of stack
        (APPLICANTS, b64("[" * 3000)),
        # another spelling of a real cursor: junk inside, spaces around, padding
        (
            APPLICANTS,
            cursor("CREATED_AT:ASC", CREATED, 1)[:6]
            + "!"
            + cursor("CREATED_AT:ASC", CREATED, 1)[6:],
        ),
        (APPLICANTS, " " + cursor("CREATED_AT:ASC", CREATED, 1)),
        (APPLICANTS, cursor("CREATED_AT:ASC", CREATED, 1) + "="),
        (APPLICANTS, b64(json.dumps(["CREATED_AT:ASC", CREATED, 1]))),
        (APPLICANTS, cursor("CREATED_AT:ASC", "2026-01-01T00:00:00Z", 1)),
        (APPLICANTS, cursor("CREATED_AT:ASC", "2026-01-01T02:00:00+02:00", 1)),
        (AUDIT, cursor("SEQUENCE:ASC", "١٠", 1)),
        (AUDIT, cursor("SEQUENCE:ASC", "1_0", 1)),
        (APPLICANTS, cursor("CREATED_AT:ASC", CREATED, 0)),
        (APPLICANTS, cursor("CREATED_AT:ASC", CREATED, 1, 2)),
    ],
)
async def test_a_forged_cursor_is_refused_alike_on_both_paths(
    client, per_field_client, applicant, faults, query, forged
):
    # given a forged cursor
    variables = {"after": forged, "id": to_global_id("LoanApplication", applicant.id)}

    # when it is sent to both read paths
    body = await both_paths(client, per_field_client, query, variables)

    # then both refuse it as the client's error, and nothing is logged as a fault
    refused(body, "`after` is not a valid cursor.")


async def test_a_real_cursor_still_pages(client, per_field_client, applicant, engine):
    await create_application(engine)
    first = await both_paths(client, per_field_client, APPLICANTS, {"after": None})
    end = first["data"]["applicants"]["edges"][0]["cursor"]
    body = await both_paths(client, per_field_client, APPLICANTS, {"after": end})
    assert len(body["data"]["applicants"]["edges"]) == 1


FORGED_IDS = [
    b64("Applicant:²"),  # passes str.isdigit, int() refuses it
    b64("Applicant:١٠"),  # Arabic-Indic digits: int() read them as 10
    b64("Applicant:１"),  # fullwidth
    b64("Applicant:0"),
    b64("Applicant:01"),
    b64(f"Applicant:{2**63}"),
    b64("Applicant:-1"),
    b64("Applicant: 1"),
    b64("Appl icant:1"),
    b64("Applicant:1")[:4] + "!" + b64("Applicant:1")[4:],  # junk inside the base64
    " " + b64("Applicant:1"),
    b64("Applicant:1") + "=",
    "x",
    "",
]


@pytest.mark.parametrize("forged", FORGED_IDS)
@pytest.mark.parametrize(
    ("query", "argument"), [(NODE, "id"), (APPLICANT, "id"), (AUDIT_OF, "entityId")]
)
async def test_a_forged_id_is_refused_alike_on_both_paths(
    client, per_field_client, applicant, faults, query, argument, forged
):
    body = await both_paths(client, per_field_client, query, {"id": forged})
    refused(body, f"`{argument}` is not a valid id.")


async def test_one_forged_id_among_many_is_refused(client, per_field_client, applicant, faults):
    ids = [to_global_id("Applicant", applicant.applicant_id), b64("Applicant:²")]
    body = await both_paths(client, per_field_client, NODES, {"ids": ids})
    refused(body, "`ids` is not a valid id.")


async def test_well_formed_ids_of_nothing_read_as_null(client, per_field_client, applicant):
    ids = [to_global_id("Applicant", 999), to_global_id("Nope", 1)]
    body = await both_paths(client, per_field_client, NODES, {"ids": ids})
    assert body["data"]["nodes"] == [None, None]
    real = to_global_id("Applicant", applicant.applicant_id)
    body = await both_paths(client, per_field_client, NODE, {"id": real})
    assert body["data"]["node"] == {"id": real}
