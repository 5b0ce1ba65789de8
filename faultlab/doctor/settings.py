"""The settings the doctor gives a user's app: ``--env NAME=VALUE`` (repeatable) and ``--db-env NAME``, whose values
may name the parts of the throwaway database the doctor made, so that an app configured by parts
(``POSTGRES_SERVER``, ``POSTGRES_DB``, ...) can be pointed at it as easily as one that reads a URL.

Placeholders, replaced in every ``--env`` value: ``{db.url}`` (the whole URL, with its driver),
``{db.host}``, ``{db.port}``, ``{db.user}``, ``{db.password}``, ``{db.name}`` (for SQLite, the file's path)
and ``{db.driver}``. Anything else in braces is left as it is. Values are never shown: the reports name the
variables only (they may hold the database's password, or a secret of the app's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from faultlab.errors import UsageError

__all__ = ["PLACEHOLDERS", "AppSettings", "parse_env"]

_PLACEHOLDER = re.compile(r"\{db\.(\w+)\}")
PLACEHOLDERS = ("url", "host", "port", "user", "password", "name", "driver")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env(given: list[str]) -> list[tuple[str, str]]:
    """``NAME=VALUE`` items, checked before anything starts: a bad name or placeholder is a usage error."""
    pairs = []
    for item in given:
        name, equals, value = item.partition("=")
        if not equals or not _NAME.match(name):
            raise UsageError(f"--env {item.split('=')[0]}=...: give NAME=VALUE, e.g. --env POSTGRES_DB={{db.name}}")
        unknown = sorted({part for part in _PLACEHOLDER.findall(value) if part not in PLACEHOLDERS})
        if unknown:
            known = ", ".join(f"{{db.{part}}}" for part in PLACEHOLDERS)
            raise UsageError(f"--env {name}: no placeholder {{db.{unknown[0]}}}; the throwaway database has {known}")
        pairs.append((name, value))
    return pairs


@dataclass(frozen=True)
class AppSettings:
    """What the user said about the app's settings, and whether to let it use its own configured database."""

    env: list[tuple[str, str]] = field(default_factory=list)  # --env, in order; a later one wins
    db_env: list[str] = field(default_factory=list)  # --db-env: variables that get the throwaway's whole URL
    use_configured_db: bool = False  # --use-configured-db: the user asked for the database the app is set up with

    def environment(self, url: str) -> dict[str, str]:
        """The variables for the app's server and the set-up commands, given the throwaway database's URL."""
        from sqlalchemy import make_url

        parsed = make_url(url)
        parts = {
            "url": url,
            "host": parsed.host or "",
            "port": str(parsed.port or ""),
            "user": parsed.username or "",
            "password": parsed.password or "",
            "name": parsed.database or "",
            "driver": parsed.drivername,
        }
        values = dict.fromkeys(self.db_env, url)
        for name, template in self.env:
            values[name] = _PLACEHOLDER.sub(lambda m: parts.get(m.group(1), m.group(0)), template)
        return values

    def names(self) -> list[str]:
        """The variables given, by name only: what the reports show."""
        return list(dict.fromkeys([*self.db_env, *(name for name, _ in self.env)]))
