"""Buckets of cost points and a key's share of requests at work, without a server."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from graph.budgets import CostBudgets, KeyShares
from graph.server.shares import KeyShareMiddleware
from lending.access import ROLE_BUDGETS, Budget, Principal, Role


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_pays_while_it_holds_enough_and_refills_at_its_rate():
    clock = Clock()
    budgets = CostBudgets(clock)
    caller = Principal("k", Role.AGENT, Budget(1000, 100))
    assert budgets.charge(caller, 600).paid
    refused = budgets.charge(caller, 600)
    assert not refused.paid
    assert refused.wait_s == pytest.approx(2.0)  # 200 missing at 100 a second
    assert refused.status == {
        "maximumAvailable": 1000,
        "currentlyAvailable": 400,
        "restoreRate": 100,
    }
    clock.now += 2.0
    assert budgets.charge(caller, 600).paid
    clock.now += 3600
    assert budgets.charge(caller, 0).status["currentlyAvailable"] == 999  # full, less one point


def test_a_refund_gives_back_and_a_changed_budget_starts_a_new_bucket():
    clock = Clock()
    budgets = CostBudgets(clock)
    assert budgets.charge(Principal("k", Role.AGENT, Budget(100, 1)), 100).paid
    budgets.refund(Principal("k", Role.AGENT, Budget(100, 1)), 100)
    assert budgets.charge(Principal("k", Role.AGENT, Budget(100, 1)), 100).paid
    assert budgets.charge(Principal("k", Role.AGENT, Budget(500, 1)), 100).paid
    # a key without a budget of its own spends its role's
    status = budgets.charge(Principal("r", Role.SERVICER), 1).status
    assert status["maximumAvailable"] == ROLE_BUDGETS[Role.SERVICER].capacity


@pytest.mark.parametrize(
    "text", ["", "100", "0/1", "1/0", "-1/5", "1_000/5", "١٠/5", " 5/5", "5/5/5"]
)
def test_a_budget_is_two_plain_whole_numbers(text):
    with pytest.raises(ValueError, match="a budget"):
        Budget.parse(text)


def test_a_budget_parses_and_prints_the_same():
    assert str(Budget.parse("2000000/100000")) == "2000000/100000"


async def test_a_key_beyond_its_share_waits_then_is_throttled_and_others_pass():
    release = asyncio.Event()
    working = 0

    async def slow(scope, receive, send):
        nonlocal working
        working += 1
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = KeyShareMiddleware(slow, KeyShares(limit=2, wait_s=0.2))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        def post(key: str):
            return client.post("/graphql", json={}, headers={"Authorization": f"Bearer {key}"})

        held = [asyncio.create_task(post("greedy")) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert working == 2
        third = await post("greedy")  # waits 0.2 s for a place, then is refused
        assert third.status_code == 429
        assert third.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert third.headers["retry-after"] == "1"
        other = asyncio.create_task(post("other"))  # another key has its own share
        await asyncio.sleep(0.05)
        assert working == 3
        release.set()
        assert [r.status_code for r in await asyncio.gather(*held, other)] == [200, 200, 200]
        # the places are given back: the key may work again, and nothing is left behind
        assert (await post("greedy")).status_code == 200
        assert app.shares._shares == {}


async def test_a_key_told_to_wait_is_held_until_then_or_refused():
    calls = 0
    wait = b"1"

    async def budget(scope, receive, send):
        nonlocal calls
        calls += 1
        headers = [(b"retry-after", wait), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    app = KeyShareMiddleware(budget, KeyShares(limit=2, wait_s=0.2))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        headers = {"Authorization": "Bearer greedy"}
        assert (await client.post("/graphql", json={}, headers=headers)).status_code == 429
        assert calls == 1
        # told to wait 1 s: the next request is held until then, and goes through
        began = time.monotonic()
        await client.post("/graphql", json={}, headers=headers)
        assert time.monotonic() - began > 0.9
        assert calls == 2
        # told to wait 3 s this time: the next is held 1 s, then refused without going through
        wait = b"3"
        await client.post("/graphql", json={}, headers=headers)
        began = time.monotonic()
        again = await client.post("/graphql", json={}, headers=headers)
        assert 0.9 < time.monotonic() - began < 1.5
        assert again.status_code == 429
        assert again.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert again.headers["retry-after"] == "2"
        assert calls == 3
