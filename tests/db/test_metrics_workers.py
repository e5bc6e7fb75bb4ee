"""Metrics under `lending serve --workers 2`: whichever worker is scraped, the counts add up."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import servers

REQUESTS = 40


def counted(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lending_requests_total" and sample.labels["operation"] == "Counted"
    )


async def test_every_worker_reports_the_requests_of_all(server_url: str, tmp_path: Path) -> None:
    samples = tmp_path / "metrics"
    async with servers(
        server_url,
        "lending_metrics_workers",
        count=1,
        args=("--workers", "2"),
        env={"PROMETHEUS_MULTIPROC_DIR": str(samples)},
    ) as found:
        base = f"http://127.0.0.1:{found.ports[0]}"
        headers = {"Authorization": f"Bearer {found.key}"}
        for _ in range(REQUESTS):
            # A connection each, so that both workers take some.
            async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                response = await client.post(
                    "/graphql", json={"query": "query Counted { loanProducts { code } }"}
                )
                assert response.status_code == 200
        writers = {path.stem.rsplit("_", 1)[-1] for path in samples.glob("counter_*.db")}
        assert len(writers) >= 2, "both workers should have answered"
        for _ in range(6):
            async with httpx.AsyncClient(base_url=base) as client:
                assert counted((await client.get("/metrics")).text) == REQUESTS
