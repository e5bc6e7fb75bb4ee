"""The whole benchmark harness at a tiny scale: it runs, measures every server and reports.

Starts its own embedded PostgreSQL in a temporary folder, with PostGraphile left out (it needs
Node from the npm registry) and budgets of a fraction of a second. No timing is asserted: only
that every workload was answered without errors and that the report holds what it promises.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import BEGIN, END
from bench.run import ROOT, WORK


def test_the_harness_runs_end_to_end(tmp_path: Path) -> None:
    # given a results file with prose around the measured part
    output = tmp_path / "RESULTS.md"
    output.write_text(f"# Results\n\nBefore.\n\n{BEGIN}\nold numbers\n{END}\n\nAfter.\n")

    # when the harness runs at a tiny scale
    command = [
        sys.executable, "-m", "bench.run", "--scale", "0.01", "--small-scale", "0",
        "--seconds", "0.3", "--requests", "6", "--warmup", "0", "--profile-requests", "2",
        "--concurrency", "1", "--no-postgraphile", "--observed-rounds", "1",
        "--subscribers", "20", "--fanout-events", "2",
        "--pgdata", str(tmp_path / "pg"), "--output", str(output),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # then every workload was answered by every server, without errors
    run = json.loads((WORK / "results.json").read_text())
    measured = {(r["scale"], r["workload"], r["server"], r["concurrency"]) for r in run["results"]}
    for workload in ("R1", "R2", "R3"):
        for server in ("ours-1w", "ours-off-1w", "ceiling-sql", "ceiling-py"):
            assert (0.01, workload, server, 1) in measured
        assert (0.01, workload, "ours-2w", 1) in measured
    assert (0.01, "W1", "ours-1w", 1) in measured
    assert (0.01, "W1", "ours-2w", 1) in measured
    assert (0.01, "W1", "ceiling-w1", 1) in measured
    assert (0.01, "R2", "ours-quiet", 1) in measured
    assert (0.01, "R2", "ours-observed", 1) in measured
    for workload in ("R1", "R2", "W1"):
        assert (0.01, workload, "ours-direct", 1) in measured
        assert (0.01, workload, "ours-pooled", 1) in measured
    for workload in ("R1", "R2"):
        assert (0.01, workload, "ours-key", 1) in measured
        assert (0.01, workload, "ours-borrower", 1) in measured
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in run["results"]), run["results"]

    # and the statement counts are those of the design: one for the hand-written SQL and for
    # compiled reads, a handful of batched statements field by field, whatever the page size
    counts = {
        (r["workload"], r["server"]): r["statements"]
        for r in run["results"]
        if r["scale"] == 0.01 and r["statements"] is not None
    }
    assert counts[("R2", "ceiling-sql")] == 1
    assert counts[("R2", "ours-1w")] == counts[("R3", "ours-1w")] == 1
    assert 1 < counts[("R2", "ours-off-1w")] <= 8
    assert counts[("R3", "ours-off-1w")] == counts[("R2", "ours-off-1w")]
    assert counts[("W1", "ours-1w")] <= 8
    # the write ceiling: three statements a mutation (claim and lock, writes, audit and payload)
    assert counts[("W1", "ceiling-w1")] == 3
    # a borrower's scoped reads are one statement too (the key's first request also looks
    # its key up)
    # through PgBouncer a compiled read is still one statement (in no transaction at all),
    # and a mutation's statements are the same ones
    assert counts[("R2", "ours-pooled")] == counts[("R2", "ours-direct")] == 1
    assert counts[("W1", "ours-pooled")] == counts[("W1", "ours-direct")]
    for workload in ("R1", "R2"):
        assert counts[(workload, "ours-borrower")] == 1
        assert counts[(workload, "ours-key")] < 1.5

    # and the report replaced only its measured part
    text = output.read_text()
    assert text.startswith("# Results\n\nBefore.\n\n")
    assert text.endswith("\n\nAfter.\n")
    assert "old numbers" not in text
    assert "### Ratios at scale 0.01" in text
    assert "### Targets of the compiled read path" in text
    assert "### What metrics and JSON request logs cost (R2, scale 0.01" in text
    assert "### The write ceiling (W1, scale 0.01)" in text
    assert "### Through PgBouncer in transaction mode (scale 0.01" in text
    assert "### A borrower's token against an API key (compiled reads, scale 0.01)" in text
    assert "### Profile of R1, compiled" in text
    assert "### Profile of R2, field by field" in text
    for step in ("apply", "decide", "disburse", "pay"):
        assert f"### Profile of W1 {step}, one kind of W1's mutations" in text
    assert all(profile["layers_ms"] for profile in run["profiles"])
    # and every subscriber of the fan-out heard every event
    assert run["fanout"]["events"] == 2
    assert run["fanout"]["lost"] == 0
    assert "### Event fan-out (20 WebSocket subscribers, two workers)" in text
