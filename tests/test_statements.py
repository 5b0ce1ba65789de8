"""The statement log the harness keeps in shared memory, read back from outside (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faultlab.inside import statements
from faultlab.inside.statements import StatementWriter, normalize, read_statements
from faultlab.witnesses.statements import MAX_LINES, describe


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("SELECT tags.id\n  FROM tags\n WHERE ? = tags.todo_id", "SELECT tags.id FROM tags WHERE ? = tags.todo_id"),
        ("SELECT a FROM t WHERE t.id = %(pk_1)s::INTEGER", "SELECT a FROM t WHERE t.id = ?"),
        ("INSERT INTO t (a, b) VALUES (%s, %s)", "INSERT INTO t (a, b) VALUES (?, ?)"),
        ("SELECT a FROM t WHERE x IN (?, ?, ?, ?, ?)", "SELECT a FROM t WHERE x IN (?, … 5 values)"),
        ("SELECT a::text FROM t WHERE b = :b AND c = $1", "SELECT a::text FROM t WHERE b = ? AND c = ?"),
    ],
)
def test_normalize_shows_placeholders_the_same_on_every_backend(raw: str, shown: str) -> None:
    assert normalize(raw) == shown


def test_counts_and_order_of_latest_run_are_read_from_outside(tmp_path: Path) -> None:
    writer = StatementWriter(tmp_path)
    for statement in ["SELECT 1", "SELECT  2", "SELECT 1", "SELECT 1"]:
        writer.record(statement)
    found = read_statements(tmp_path)
    assert {text: count for text, (count, _) in found.items()} == {"SELECT 1": 3, "SELECT 2": 1}
    assert found["SELECT 1"][1] > found["SELECT 2"][1], found
    assert read_statements(tmp_path, pids={-1}) == {}


def test_statements_beyond_the_last_slot_are_counted_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statements, "MAX_DISTINCT", 3)
    writer = StatementWriter(tmp_path)
    for statement in ["A", "B", "C", "D", "C", "A"]:
        writer.record(statement)
    counts = {text: count for text, (count, _) in read_statements(tmp_path).items()}
    assert counts == {"A": 2, "B": 1, statements.OTHER: 3}, counts


def test_describe_is_bounded() -> None:
    ran = [(f"SELECT {i}", 2) for i in range(MAX_LINES + 3)]
    lines = describe(ran).splitlines()
    assert len(lines) == MAX_LINES + 1 and lines[0] == "2× SELECT 0"
    assert lines[-1] == "(+6 more of 3 other statements)"
    assert len(describe([("SELECT " + "x" * 1000, 1)])) < 300
