"""Schema safety: what `schema.graphql` breaks for clients of the last released schema.

Clients are built against a released schema; a change that can break them (a field removed, an
argument made required, a type changed) must not ship by accident. graphql-core finds those
changes between two schemas. A breaking change is accepted only when CHANGELOG.md lists it,
with a reason, under a "Breaking changes" heading:

    ### Breaking changes
    - `Field Loan.foo was removed.` — replaced by Loan.bar in 0.1.0, unused since.

The text in backquotes is graphql-core's own description of the change, as `make
schema-check` prints it. Dangerous changes (an enum value added, an argument default changed)
are reported, never refused: a client that switches over every enum value should know.

The released schema is the newest ``releases/<version>.graphql`` (copied there at each release
by `make release-schema`), or the `schema.graphql` of any git ref (``--ref v0.1.0``).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

RELEASES = "releases"
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
# - `description` — reason   (an em dash, "--" or "-" between them)
_ENTRY = re.compile(r"^\s*[-*]\s+`([^`]+)`\s*(?:(?:—|--|-|:)\s*(.*?))?\s*$")


@dataclass(frozen=True)
class Report:
    """The changes from a released schema to the current one, and which are refused."""

    base: str
    breaking: list[str]
    dangerous: list[str]
    allowed: dict[str, str]

    @property
    def refused(self) -> list[str]:
        """Breaking changes that the changelog does not list with a reason."""
        return [change for change in self.breaking if not self.allowed.get(change)]

    def lines(self) -> list[str]:
        """The report, for a person reading CI's output."""
        out = [f"Compared with {self.base}:"]
        for change in self.breaking:
            reason = self.allowed.get(change)
            mark = f"allowed: {reason}" if reason else "NOT LISTED in CHANGELOG.md"
            out.append(f"  breaking   `{change}` ({mark})")
        out += [f"  dangerous  `{change}`" for change in self.dangerous]
        if not self.breaking and not self.dangerous:
            out.append("  no breaking or dangerous change")
        if self.refused:
            out.append(
                "List each breaking change under '### Breaking changes' in CHANGELOG.md as"
                " - `<change>` — <reason>, or keep the schema compatible."
            )
        return out


def allowed_changes(changelog: str) -> dict[str, str]:
    """The breaking changes a changelog accepts, with their reasons (an entry without a reason
    maps to "" and accepts nothing)."""
    found: dict[str, str] = {}
    in_section = False
    for line in changelog.splitlines():
        heading = _HEADING.match(line)
        if heading:
            in_section = heading.group(1).strip().lower() == "breaking changes"
            continue
        entry = _ENTRY.match(line) if in_section else None
        if entry:
            found[entry.group(1).strip()] = entry.group(2) or ""
    return found


def compare(released_sdl: str, current_sdl: str, changelog: str, base: str) -> Report:
    """The report for ``current_sdl`` against ``released_sdl``."""
    old, new = build_schema(released_sdl), build_schema(current_sdl)
    return Report(
        base=base,
        breaking=[change.description for change in find_breaking_changes(old, new)],
        dangerous=[change.description for change in find_dangerous_changes(old, new)],
        allowed=allowed_changes(changelog),
    )


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in path.stem.split("."))


def last_release(root: Path) -> Path:
    """The newest released schema under ``root/releases``."""
    releases = sorted((root / RELEASES).glob("*.graphql"), key=_version)
    if not releases:
        raise FileNotFoundError(f"no released schema under {RELEASES}/")
    return releases[-1]


def released_at(root: Path, ref: str) -> str:
    """`schema.graphql` as it was at the git ``ref``."""
    return subprocess.run(
        ["git", "show", f"{ref}:schema.graphql"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
