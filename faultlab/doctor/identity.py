"""Which app the doctor served and which database its engine uses (as the harness reports them,
``faultlab.inside.identity``), and the rule: no request goes to an app whose engine is not on the throwaway
database the doctor made, unless the user asked for its configured one (``--use-configured-db``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from faultlab.backends.base import redact
from faultlab.errors import UsageError

__all__ = ["AppIdentity", "WrongDatabase", "only_db", "refused_database", "require_throwaway"]

_REFUSED = re.compile(r"faultlab: refused a connection to the (\w+) database '([^']*)'")


class WrongDatabase(UsageError):
    """The app's engine is not on the throwaway database: nothing was sent to it."""


@dataclass(frozen=True)
class AppIdentity:
    app_file: str = ""
    openapi_url: str = ""
    python: str = ""  # the interpreter the server runs on, as it says itself
    engine_url: str = ""  # password hidden; "" when no engine was found
    engine_backend: str = ""
    engine_database: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppIdentity:
        return cls(**{k: str(data.get(k) or "") for k in cls.__dataclass_fields__})


def only_db(url: str) -> str:
    """``BACKEND:DATABASE`` of the throwaway database: the one the harness lets the app connect to."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    database = parsed.database or ""
    return f"{backend}:{os.path.realpath(database) if backend == 'sqlite' else database}"


def _advice(backend: str) -> str:
    example = (
        "--env POSTGRES_SERVER={db.host} --env POSTGRES_PORT={db.port} --env POSTGRES_USER={db.user} "
        "--env POSTGRES_PASSWORD={db.password} --env POSTGRES_DB={db.name}"
        if backend == "postgresql"
        else "--env SQLITE_FILE={db.name}"
    )
    return (
        "so no request was sent. Point the app at it: --env NAME=VALUE for each variable your settings read, e.g. "
        f"{example} (the placeholders are the throwaway database's parts), or --db-env NAME for the variable that "
        "holds its whole URL; or, to check the app on the database it is configured with (the doctor will write "
        "rows there), pass --use-configured-db"
    )


def require_throwaway(identity: AppIdentity, url: str) -> None:
    """Raise ``WrongDatabase`` when the app's engine is on another database than the throwaway one at ``url``."""
    if not identity.engine_database:
        return  # no engine found: the harness's guard still refuses any other database to SQLAlchemy
    backend, _, database = only_db(url).partition(":")
    if (identity.engine_backend, identity.engine_database) == (backend, database):
        return
    raise WrongDatabase(
        f"your app's engine uses {redact(identity.engine_url)}, not the throwaway {backend} database the doctor "
        f"made for this run ({os.path.basename(database) if backend == 'sqlite' else database}), {_advice(backend)}"
    )


def refused_database(log: str, url: str) -> WrongDatabase | None:
    """The harness refused the app a connection to another database (at import or start-up): why, and what to do."""
    if not (match := _REFUSED.search(log)):
        return None
    backend, database = match.groups()
    throwaway = only_db(url).partition(":")[0]
    return WrongDatabase(
        f"your app tried to connect to the {backend} database {database!r} (its configured one, it seems), not the "
        f"throwaway {throwaway} database the doctor made; the doctor refused the connection, {_advice(throwaway)}"
    )
