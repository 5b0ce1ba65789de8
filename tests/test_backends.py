"""The PostgreSQL URL a person gives with ``--db``: checked before anything starts, never shown with its password."""

from __future__ import annotations

import pytest

from faultlab.backends.base import postgres_admin_url, redact
from faultlab.errors import UsageError


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:PW1PW2@host/db", "postgresql://u:PW1@PW2@host/db", "postgresql://u:PW1/PW2:PW3@host:5432/db"],
)
def test_redact_hides_the_whole_password_whatever_it_contains(url: str) -> None:
    shown = redact(f"could not connect to {url}: refused")
    assert "PW" not in shown, shown
    assert shown.startswith("could not connect to postgresql://u:***@host") and shown.endswith(": refused")


def test_the_old_postgres_scheme_is_accepted_as_postgresql() -> None:
    assert postgres_admin_url("postgres://postgres@127.0.0.1/postgres") == "postgresql://postgres@127.0.0.1/postgres"


@pytest.mark.parametrize("url", ["postgresql+asyncpg://u@h/db", "postgres+psycopg2://u@h/db"])
def test_another_driver_is_a_usage_error_naming_it(url: str) -> None:
    with pytest.raises(UsageError, match=r"psycopg 3; write postgresql://\.\.\. \(no \+(asyncpg|psycopg2)\)"):
        postgres_admin_url(url)


def test_the_run_role_is_created_with_a_verifier_never_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that logs statements (log_statement = 'ddl') must not log the run role's password: every
    statement the lab sends is recorded, as the server would see it."""
    from typing import Any

    from faultlab.backends.base import DEFAULT_POSTGRES_URL, PostgresBackend, postgres_problem

    if problem := postgres_problem(DEFAULT_POSTGRES_URL):
        pytest.skip(problem)

    sent: list[str] = []

    class Recording:
        def __init__(self, connection: Any) -> None:
            self._connection = connection

        def execute(self, statement: Any, *args: Any) -> Any:
            sent.append(statement if isinstance(statement, str) else statement.as_string(self._connection))
            return self._connection.execute(statement, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._connection, name)

    connect = PostgresBackend._connect
    monkeypatch.setattr(PostgresBackend, "_connect", lambda self: Recording(connect(self)))
    backend = PostgresBackend(DEFAULT_POSTGRES_URL, "verifier")
    backend.create()
    backend.drop()
    (create,) = [statement for statement in sent if statement.startswith("CREATE ROLE")]
    assert "SCRAM-SHA-256$" in create and backend._password not in "".join(sent)


def test_a_password_in_the_query_is_hidden_too() -> None:
    shown = redact("no server at postgresql://u@host:5999/x?sslmode=disable&password=PW1&application_name=lab")
    assert "PW1" not in shown and "password=***&application_name=lab" in shown, shown


def test_an_unescaped_at_in_the_password_is_refused_before_anything_connects() -> None:
    with pytest.raises(UsageError) as error:
        postgres_admin_url("postgresql://postgres:se@cret@127.0.0.1:5999/x")
    assert "%40" in str(error.value) and "cret" not in str(error.value), str(error.value)
