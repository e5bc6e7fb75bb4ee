"""The measured part of bench/RESULTS.md, rendered from a run's results."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.queries import READS

# The measured part sits between these markers; the prose around them is the reader's.
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a and b else "–"


def _find(results: list[dict[str, Any]], **where: Any) -> dict[str, Any] | None:
    for r in results:
        if all(r[k] == v for k, v in where.items()):
            return r
    return None


# The targets of the compiled read path: (label, workload, reference, at least), each at
# concurrency 1 and at the highest concurrency of the run (16 by default).
TARGETS = (
    ("R1 ≥ 1.0× PostGraphile's throughput", "R1", "postgraphile", 1.0),
    ("R2 ≥ 1.5× PostGraphile's throughput", "R2", "postgraphile", 1.5),
    ("R3 ≥ 1.5× PostGraphile's throughput", "R3", "postgraphile", 1.5),
    ("R2 ≥ 0.6× the ceiling SQL's throughput", "R2", "ceiling-sql", 0.6),
)
P99_LIMIT_MS = 100.0  # R2 at the highest concurrency with two workers
STATEMENTS_LIMIT = 8.0  # W1, per mutation


def _verdict(met: bool | None) -> str:
    return "–" if met is None else ("met" if met else "**missed**")


def targets(results: list[dict[str, Any]], scale: float) -> list[str]:
    """The targets table: each figure of this run against what the compiled path must reach."""
    out = [
        "",
        f"### Targets of the compiled read path (scale {scale:g}, one worker unless noted)",
        "",
        "| target | c | measured | |",
        "|---|---:|---:|---|",
    ]
    top = max((r["concurrency"] for r in results), default=16)
    for label, workload, reference, at_least in TARGETS:
        for c in sorted({1, top}):
            mine = _find(results, scale=scale, workload=workload, server="ours-1w", concurrency=c)
            other = _find(results, scale=scale, workload=workload, server=reference, concurrency=c)
            ratio = mine["rps"] / other["rps"] if mine and other and other["rps"] else None
            shown = f"{ratio:.2f}×" if ratio is not None else "–"
            met = None if ratio is None else ratio >= at_least
            out.append(f"| {label} | {c} | {shown} | {_verdict(met)} |")
    two = _find(results, scale=scale, workload="R2", server="ours-2w", concurrency=top)
    p99 = two["p99_ms"] if two else None
    out.append(
        f"| R2 p99 < {P99_LIMIT_MS:g} ms, two workers | {top} | "
        + (f"{p99:.1f} ms" if p99 is not None else "–")
        + f" | {_verdict(None if p99 is None else p99 < P99_LIMIT_MS)} |"
    )
    writes = _find(results, scale=scale, workload="W1", server="ours-1w", concurrency=1)
    statements = writes["statements"] if writes else None
    out.append(
        f"| W1 ≤ {STATEMENTS_LIMIT:g} statements per mutation | 1 | "
        + (f"{statements:g}" if statements is not None else "–")
        + f" | {_verdict(None if statements is None else statements <= STATEMENTS_LIMIT)} |"
    )
    out += ["", "Compiled ÷ field by field, our throughput at the same concurrency:", ""]
    out += [
        "| workload | c | compiled req/s | field by field req/s | × |",
        "|---|---:|---:|---:|---:|",
    ]
    for workload in READS:
        for c in sorted({r["concurrency"] for r in results if r["workload"] == workload}):
            on = _find(results, scale=scale, workload=workload, server="ours-1w", concurrency=c)
            off = _find(
                results, scale=scale, workload=workload, server="ours-off-1w", concurrency=c
            )
            if on and off:
                out.append(
                    f"| {workload} | {c} | {on['rps']:.1f} | {off['rps']:.1f} | "
                    f"{_ratio(on['rps'], off['rps'])} |"
                )
    return out


def render(run: dict[str, Any]) -> str:
    """The measured part of RESULTS.md."""
    results: list[dict[str, Any]] = run["results"]
    main_scale = run["scales"]["main"]
    small_scale = run["scales"]["small"]
    machine = run["machine"]
    out = [
        BEGIN,
        f"Run {run['when']} with `{run['command']}` in {run['minutes']} minutes, on "
        f"{machine['cores']} cores ({machine['system']}, Python {machine['python']}); load "
        "generator, servers and PostgreSQL share those cores. Each measurement: "
        f"{run['budget']['warmup_seconds']:g} s warm-up, then up to "
        f"{run['budget']['requests']} requests or {run['budget']['seconds']:g} s. "
        f"PostGraphile: {run['postgraphile']}.",
        "",
        "Data: "
        + "; ".join(
            f"scale {k} = {v['loans']:,} loans, {v['applications']:,} applications, "
            f"{v['installments']:,} instalments ("
            + ("reused" if v["reused"] else f"generated in {v['seconds']} s")
            + ")"
            for k, v in run["generation"].items()
        )
        + ".",
        "",
        f"### Ratios at scale {main_scale:g} (ours ÷ reference)",
        "",
        "Throughput ratio = our requests/s ÷ theirs (above 1: we are faster); latency ratio = "
        "our p50 ÷ theirs (below 1: we are faster).",
        "",
        "| workload | c | ours | vs ceiling SQL: rps | p50 | vs ceiling Python: rps | p50 "
        "| vs PostGraphile: rps | p50 |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in READS:
        for c in sorted({r["concurrency"] for r in results if r["workload"] == workload}):
            for ours_name, label in (("ours-1w", "compiled"), ("ours-off-1w", "per field")):
                mine = _find(results, scale=main_scale, workload=workload, server=ours_name,
                             concurrency=c)  # fmt: skip
                if mine is None:
                    continue
                cells = []
                for ref in ("ceiling-sql", "ceiling-py", "postgraphile"):
                    other = _find(results, scale=main_scale, workload=workload, server=ref,
                                  concurrency=c)  # fmt: skip
                    if other is None:
                        cells += ["–", "–"]
                    else:
                        cells += [_ratio(mine["rps"], other["rps"]),
                                  _ratio(mine["p50_ms"], other["p50_ms"])]  # fmt: skip
                out.append(f"| {workload} | {c} | {label} | " + " | ".join(cells) + " |")
    out += targets(results, main_scale)
    out += [
        "",
        "### Every measurement",
        "",
        "CPU ms are per request: the server's process tree, and all of PostgreSQL's processes. "
        "Statements per request are counted from PostgreSQL's own log (log_statement = all) in a "
        "separate window of 20 requests at concurrency 1 (W1: 5 sequences), transaction control "
        "excluded.",
        "",
        "| scale | workload | c | server | req/s | p50 ms | p99 ms | server CPU ms | "
        "PG CPU ms | statements | peak RSS MiB | requests | errors |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        statements = "" if r["statements"] is None else f"{r['statements']:g}"
        out.append(
            f"| {r['scale']:g} | {r['workload']} | {r['concurrency']} | {r['server']} | "
            f"{r['rps']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['server_cpu_ms']:.2f} | "
            f"{r['pg_cpu_ms']:.2f} | {statements} | {r['rss_mb']:.0f} | {r['requests']} | "
            f"{r['errors']} |"
        )
    notes = [r for r in results if r["note"]]
    if notes:
        out += ["", "Notes: " + "; ".join(f"{r['workload']} {r['server']} c={r['concurrency']}: "
                                           f"{r['note']}" for r in notes)]  # fmt: skip
    if small_scale:
        out += [
            "",
            f"### Table size: p50 ms at concurrency 1, scale {small_scale:g} → {main_scale:g}",
            "",
            "| workload | server | small | main |",
            "|---|---|---:|---:|",
        ]
        for workload in READS:
            for server in ("ours-1w", "ours-off-1w", "postgraphile"):
                small = _find(results, scale=small_scale, workload=workload, server=server,
                              concurrency=1)  # fmt: skip
                big = _find(results, scale=main_scale, workload=workload, server=server,
                            concurrency=1)  # fmt: skip
                if small and big:
                    out.append(
                        f"| {workload} | {server} | {small['p50_ms']:.2f} | {big['p50_ms']:.2f} |"
                    )
    top = max((r["concurrency"] for r in results if r["server"] == "ours-2w"), default=16)
    out += [
        "",
        f"### One worker process or two (ours, concurrency {top})",
        "",
        "| workload | 1 worker req/s | 2 workers req/s |",
        "|---|---:|---:|",
    ]
    for workload in (*READS, "W1"):
        one = _find(results, scale=main_scale, workload=workload, server="ours-1w",
                    concurrency=top)  # fmt: skip
        two = _find(results, scale=main_scale, workload=workload, server="ours-2w",
                    concurrency=top)  # fmt: skip
        if one and two:
            out.append(f"| {workload} | {one['rps']:.1f} | {two['rps']:.1f} |")
    out += write_ceiling(results, main_scale)
    out += observability(results, main_scale)
    out += pooler(results, main_scale)
    out += scales(results)
    out += borrowers(results, main_scale)
    out += fanout(run.get("fanout"))
    for profile in run["profiles"]:
        how = "compiled" if profile["compiled"] else "field by field"
        if profile["workload"].startswith("W1"):
            how = "one kind of W1's mutations"
        out += [
            "",
            f"### Profile of {profile['workload']}, {how} (pyinstrument, in-process, "
            f"{profile['requests']} requests, {profile['ms_per_request']} ms each)",
            "",
            "| layer | ms per request | share |",
            "|---|---:|---:|",
        ]
        layers = profile["layers_ms"]
        total = sum(layers.values()) or 1
        for name, ms in sorted(layers.items(), key=lambda kv: -kv[1]):
            if ms >= 0.005:
                out.append(f"| {name} | {ms:.2f} | {ms / total:.0%} |")
    out.append(END)
    return "\n".join(out)


# W1 against the write ceiling: our share of its throughput, our server's CPU per mutation at
# concurrency 1, our statements per mutation.
WRITE_SHARE = 0.5
WRITE_CPU_LIMIT_MS = 4.0
WRITE_STATEMENTS_LIMIT = 7.0


def write_ceiling(results: list[dict[str, Any]], scale: float) -> list[str]:
    """W1 on our server (one worker) against the write ceiling, concurrency by concurrency."""
    rows = [
        r
        for r in results
        if r["scale"] == scale and r["workload"] == "W1" and r["server"] == "ceiling-w1"
    ]
    if not rows:
        return []
    out = [
        "",
        f"### The write ceiling (W1, scale {scale:g})",
        "",
        "ceiling-w1: bench/write_ceiling.py, a bare ASGI app with an asyncpg pool of ten doing "
        "each W1 mutation (idempotency claim and result, row lock and version, the writes, the "
        "hash-chained audit events and their announcements, the payload) in one transaction of "
        "three hand-written statements, with the same pure rules (validation, schedule, "
        "allocation, audit hashes). Driven by the same W1 driver on the same copied database. "
        "CPU and statements are per mutation; each pair is (ours, ceiling).",
        "",
        f"| c | ours-1w mutations/s | ceiling-w1 mutations/s | ours ÷ ceiling | "
        f"target ≥ {WRITE_SHARE:g} | server CPU ms | target ours ≤ {WRITE_CPU_LIMIT_MS:g} ms "
        f"| PostgreSQL CPU ms | statements | target ours ≤ {WRITE_STATEMENTS_LIMIT:g} |",
        "|---:|---:|---:|---:|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: r["concurrency"]):
        c = row["concurrency"]
        mine = _find(results, scale=scale, workload="W1", server="ours-1w", concurrency=c)
        if mine is None:
            continue
        share = mine["rps"] / row["rps"] if row["rps"] else None
        cpu = mine["server_cpu_ms"]
        statements = mine["statements"]
        out.append(
            f"| {c} | {mine['rps']:.1f} | {row['rps']:.1f} | "
            + (f"{share:.2f}" if share is not None else "–")
            + f" | {_verdict(None if share is None else share >= WRITE_SHARE)} | "
            f"{cpu:.2f}, {row['server_cpu_ms']:.2f} | "
            f"{_verdict(cpu <= WRITE_CPU_LIMIT_MS if c == 1 else None)} | "
            f"{mine['pg_cpu_ms']:.2f}, {row['pg_cpu_ms']:.2f} | "
            f"{_count(statements)}, {_count(row['statements'])} | "
            f"{_verdict(None if statements is None else statements <= WRITE_STATEMENTS_LIMIT)} |"
        )
    return out


def _count(statements: float | None) -> str:
    """Statements per request, or – where they were not counted (above concurrency 1)."""
    return "–" if statements is None else f"{statements:g}"


OVERHEAD_LIMIT = 0.05  # metrics and JSON request logs may cost this share of R2's throughput


SCOPING_LIMIT = 0.15  # what a borrower's token and scoping may cost against an API key


def borrowers(results: list[dict[str, Any]], scale: float) -> list[str]:
    """R1 and R2 as a borrower's token against an API key reading the same rows."""
    rows = [r for r in results if r["scale"] == scale and r["server"] == "ours-borrower"]
    if not rows:
        return []
    out = [
        "",
        f"### A borrower's token against an API key (compiled reads, scale {scale:g})",
        "",
        "One server; the same rows both ways: the key's R2 filters by the borrower's email, the"
        " token's R2 is scoped to the borrower by the server (R1: the borrower's approved"
        f" applications with loans, {rows[0]['note']}). Cost = 1 − token req/s ÷ key req/s.",
        "",
        f"| workload | c | key req/s | token req/s | cost | target ≤ {SCOPING_LIMIT:.0%} "
        "| statements (key, token) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        key = _find(
            results,
            scale=scale,
            workload=row["workload"],
            server="ours-key",
            concurrency=row["concurrency"],
        )
        if key is None or not key["rps"]:
            continue
        cost = 1 - row["rps"] / key["rps"]
        out.append(
            f"| {row['workload']} | {row['concurrency']} | {key['rps']:.1f} | {row['rps']:.1f} | "
            f"{cost:+.1%} | {_verdict(cost <= SCOPING_LIMIT)} | "
            f"{_count(key['statements'])}, {_count(row['statements'])} |"
        )
    return out


def observability(results: list[dict[str, Any]], scale: float) -> list[str]:
    """R2's throughput with nothing recorded and with metrics and JSON logs (tracing unset):
    the median of the alternating rounds, and what the second costs."""
    rows = [r for r in results if r["workload"] == "R2" and r["scale"] == scale]
    concurrencies = sorted({r["concurrency"] for r in rows if r["server"] == "ours-observed"})
    if not concurrencies:
        return []
    out = [
        "",
        f"### What metrics and JSON request logs cost (R2, scale {scale:g}, one worker)",
        "",
        "ours-quiet: `METRICS=off`, `LOG_LEVEL=WARNING` (nothing recorded). ours-observed:"
        " `METRICS=on`, `LOG_LEVEL=INFO`, `LOG_FORMAT=json` (one line per request, written to a"
        " file), `OTEL_EXPORTER_OTLP_ENDPOINT` unset. Both servers run side by side and are"
        " measured in alternating rounds; the median round is shown.",
        "",
        f"| c | quiet req/s | observed req/s | cost | target < {OVERHEAD_LIMIT:.0%} |",
        "|---:|---:|---:|---:|---|",
    ]
    for c in concurrencies:
        quiet = statistics.median(
            r["rps"] for r in rows if r["server"] == "ours-quiet" and r["concurrency"] == c
        )
        observed = statistics.median(
            r["rps"] for r in rows if r["server"] == "ours-observed" and r["concurrency"] == c
        )
        cost = 1 - observed / quiet if quiet else 0.0
        out.append(
            f"| {c} | {quiet:.1f} | {observed:.1f} | {cost:+.1%} | "
            f"{_verdict(cost < OVERHEAD_LIMIT)} |"
        )
    return out


def pooler(results: list[dict[str, Any]], scale: float) -> list[str]:
    """What PgBouncer in transaction mode costs (DB_POOLER=transaction) against direct
    connections: R1, R2 and W1 on one worker, measured one after the other in the same run."""
    rows = [r for r in results if r["scale"] == scale and r["server"] == "ours-pooled"]
    if not rows:
        return []
    out = [
        "",
        f"### Through PgBouncer in transaction mode (scale {scale:g}, one worker)",
        "",
        "ours-direct: `DATABASE_URL` is the primary. ours-pooled: `DATABASE_URL` is PgBouncer "
        "(Debian's 1.18, `pool_mode = transaction`, 20 server connections) with "
        "`DB_POOLER=transaction`: unnamed statements, the timeouts sent with each `BEGIN`, "
        "compiled reads cancelled by the client at the statement timeout. CPU per request (W1: "
        "per mutation); PgBouncer's own CPU is in the last column.",
        "",
        "| workload | c | direct req/s | pooled req/s | pooled / direct | server CPU ms direct,"
        " pooled | PostgreSQL CPU ms direct, pooled | PgBouncer CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        where = {"workload": row["workload"], "concurrency": row["concurrency"], "scale": scale}
        direct = _find(results, server="ours-direct", **where)
        if direct is None:
            continue
        out.append(
            f"| {row['workload']} | {row['concurrency']} | {direct['rps']:.1f} | "
            f"{row['rps']:.1f} | {_ratio(row['rps'], direct['rps'])} | "
            f"{direct['server_cpu_ms']}, {row['server_cpu_ms']} | "
            f"{direct['pg_cpu_ms']}, {row['pg_cpu_ms']} | {row['pooler_cpu_ms']} |"
        )
    return out


KEYSET_GROWTH_LIMIT = 1.2  # R1–R3's cost from the smallest scale to the largest


def scales(results: list[dict[str, Any]]) -> list[str]:
    """Each request's cost at every scale of --scales, relative to the smallest: p50 latency
    and CPU (our server's and PostgreSQL's) per request, at concurrency 1."""
    rows = [r for r in results if r["server"] == "ours-scale"]
    if not rows:
        return []
    sizes = sorted({r["scale"] for r in rows})
    smallest, largest = sizes[0], sizes[-1]
    head = " | ".join(f"{s:g}: p50 ms, CPU ms (×)" for s in sizes)
    out = [
        "",
        "### Cost as the book grows (one worker, concurrency 1)",
        "",
        f"Scale 1 is 10,000 loans. Each cell: median latency, then our server's plus "
        f"PostgreSQL's CPU per request (W1: per mutation), and in brackets that CPU relative to "
        f"scale {smallest:g}. Target: the keyset reads (R1–R3) within "
        f"{KEYSET_GROWTH_LIMIT:g}× from scale {smallest:g} to {largest:g}.",
        "",
        f"| workload | {head} | target |",
        "|---|" + "---:|" * len(sizes) + "---|",
    ]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        cells, base, growth = [], None, None
        for size in sizes:
            row = _find(rows, workload=workload, scale=size)
            if row is None:
                cells.append("–")
                continue
            cpu = row["server_cpu_ms"] + row["pg_cpu_ms"]
            base = base or cpu
            growth = cpu / base if base else None
            cells.append(f"{row['p50_ms']:.2f}, {cpu:.2f} ({growth:.2f}×)")
        keyset = workload in READS and growth is not None
        verdict = _verdict(growth <= KEYSET_GROWTH_LIMIT) if keyset and growth else "–"
        out.append(f"| {workload} | {' | '.join(cells)} | {verdict} |")
    return out


FANOUT_P99_LIMIT_MS = 250.0


def fanout(found: dict[str, Any] | None) -> list[str]:
    """Event fan-out: from a mutation's answer to its event at the last (and the median)
    subscriber."""
    if not found:
        return []
    p99 = found["last_p99_ms"]
    return [
        "",
        f"### Event fan-out ({found['subscribers']:,} WebSocket subscribers, two workers)",
        "",
        "Each subscriber selects `loanEvents { type applicationId application { status } }`; an "
        "application is submitted, one at a time, and the time runs from the mutation's answer "
        "to the moment the last subscriber (and the median one) received its SUBMITTED event. "
        "The subscribers run in two client processes on the same two cores.",
        "",
        "| events | last subscriber p50 | p99 | max | median subscriber p50 | lost | "
        f"target p99 < {FANOUT_P99_LIMIT_MS:g} ms |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {found['events']} | {found['last_p50_ms']} ms | {p99} ms | "
        f"{found['last_max_ms']} ms | {found['median_p50_ms']} ms | {found['lost']} | "
        f"{_verdict(None if p99 is None else p99 < FANOUT_P99_LIMIT_MS)} |",
    ]


def write_results(path: Path, run: dict[str, Any]) -> None:
    """Replace the measured part of ``path``; keep what is written around it."""
    measured = render(run)
    if path.exists() and BEGIN in (text := path.read_text()) and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(head + measured + tail)
    else:
        path.write_text("# Benchmark results\n\n" + measured + "\n")
