"""A page of another origin calling the API with fetch and a bearer key, as a browser enforces
CORS: answered from the origin CORS_ORIGINS lists (refusals readable too), blocked from another."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.async_api import BrowserContext

from tests.e2e.conftest import Demo


async def outcome(browser: BrowserContext, origin: str, api: str, key: str) -> str:
    """What tests/e2e/pages/cors.html, loaded from ``origin``, says of its call."""
    page = await browser.new_page()
    try:
        await page.goto(f"{origin}/cors.html?{urlencode({'api': api, 'key': key})}")
        await page.wait_for_function("() => document.getElementById('outcome').dataset.done")
        return await page.locator("#outcome").inner_text()
    finally:
        await page.close()


async def test_the_allowed_origin_reads_the_answer(browser: BrowserContext, demo: Demo) -> None:
    said = await outcome(browser, demo.allowed_origin, f"{demo.url}/graphql", "lnd_demo_admin")
    assert said.startswith("answered 200 id="), said
    assert "id=null" not in said  # the exposed X-Request-ID header is readable
    assert '"code":"PERSONAL-USD"' in said
    # A refusal is readable too: the page can tell a wrong key from a network failure.
    said = await outcome(browser, demo.allowed_origin, f"{demo.url}/graphql", "lnd_wrong")
    assert said.startswith("answered 401"), said
    assert "UNAUTHENTICATED" in said


async def test_an_origin_not_listed_is_blocked(browser: BrowserContext, demo: Demo) -> None:
    said = await outcome(browser, demo.other_origin, f"{demo.url}/graphql", "lnd_demo_admin")
    assert said == "refused TypeError: Failed to fetch", said
