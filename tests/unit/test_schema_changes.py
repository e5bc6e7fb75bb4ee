"""`make schema-check`: breaking changes fail unless CHANGELOG.md lists them with a reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from graph.cli import main
from graph.server import schema_changes

ROOT = Path(__file__).resolve().parents[2]
RELEASED = """
type Query { loan(id: ID!): Loan, loans(first: Int): [Loan!]! }
type Loan { id: ID!, status: Status!, principal: String! }
enum Status { ACTIVE CLOSED }
"""
# Removes Loan.principal, makes loans' argument required, adds a Status value.
CURRENT = """
type Query { loan(id: ID!): Loan, loans(first: Int!): [Loan!]! }
type Loan { id: ID!, status: Status! }
enum Status { ACTIVE CLOSED WRITTEN_OFF }
"""
REMOVED = "Field Loan.principal was removed."


def project(tmp_path: Path, current: str, changelog: str | None) -> Path:
    (tmp_path / "releases").mkdir()
    (tmp_path / "releases" / "0.9.0.graphql").write_text("type Query { old: Int }")
    (tmp_path / "releases" / "0.10.0.graphql").write_text(RELEASED)  # the newest, by version
    (tmp_path / "schema.graphql").write_text(current)
    if changelog is not None:
        (tmp_path / "CHANGELOG.md").write_text(changelog)
    return tmp_path


def test_breaking_and_dangerous_changes_are_found() -> None:
    report = schema_changes.compare(RELEASED, CURRENT, "", "released")
    assert sorted(report.breaking) == [
        "Argument Query.loans(first:) has changed type from Int to Int!.",
        REMOVED,
    ]
    assert report.dangerous == ["Enum value Status.WRITTEN_OFF was added."]
    assert report.refused == report.breaking


def test_only_entries_with_a_reason_under_the_heading_are_accepted() -> None:
    changelog = f"""# Changelog
- `{REMOVED}` — not under the heading, so it accepts nothing
## Unreleased
### Breaking changes
- `{REMOVED}` — replaced by `Loan.amount` in 0.9, unused since.
- `Argument Query.loans(first:) has changed type from Int to Int!.`
### Added
- `Enum value Status.WRITTEN_OFF was added.` — not a breaking-changes entry
"""
    allowed = schema_changes.allowed_changes(changelog)
    assert allowed == {
        REMOVED: "replaced by `Loan.amount` in 0.9, unused since.",
        "Argument Query.loans(first:) has changed type from Int to Int!.": "",
    }
    report = schema_changes.compare(RELEASED, CURRENT, changelog, "released")
    assert report.refused == ["Argument Query.loans(first:) has changed type from Int to Int!."]


def test_the_command_fails_on_an_unlisted_change_and_passes_once_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, CURRENT, None)
    with pytest.raises(SystemExit) as failed:
        main(["schema-check", "--root", str(root)])
    assert failed.value.code == 1
    out = capsys.readouterr().out
    assert "Compared with releases/0.10.0.graphql:" in out
    assert f"breaking   `{REMOVED}` (NOT LISTED in CHANGELOG.md)" in out
    assert "dangerous  `Enum value Status.WRITTEN_OFF was added.`" in out

    (root / "CHANGELOG.md").write_text(
        "### Breaking changes\n"
        f"- `{REMOVED}` -- folded into Loan.amount\n"
        "- `Argument Query.loans(first:) has changed type from Int to Int!.` — pages must be"
        " bounded\n"
    )
    main(["schema-check", "--root", str(root)])
    assert "(allowed: folded into Loan.amount)" in capsys.readouterr().out


def test_the_base_can_be_a_git_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path, RELEASED, None)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q")
    git("add", "schema.graphql")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "released")
    git("tag", "v0.10.0")
    (root / "schema.graphql").write_text(CURRENT)
    with pytest.raises(SystemExit):
        main(["schema-check", "--root", str(root), "--ref", "v0.10.0"])
    assert "Compared with schema.graphql at v0.10.0:" in capsys.readouterr().out


def test_the_committed_schema_is_compatible_with_the_last_release() -> None:
    """What CI's `make schema-check` asserts, caught by `make test` already."""
    report = schema_changes.compare(
        schema_changes.last_release(ROOT).read_text(),
        (ROOT / "schema.graphql").read_text(),
        (ROOT / "CHANGELOG.md").read_text(),
        "last release",
    )
    assert report.refused == []
