"""Small value types shared by the experiment schema, the backends and the plugins: a leaf module, importing
nothing of the lab, so that what builds on it never forms an import circle."""

from typing import Literal

__all__ = ["BACKENDS", "POSTGRESQL_ONLY", "RELATIVE_DIR", "RUNS", "SQLITE_ONLY", "BackendName", "RunName"]

RELATIVE_DIR = r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$"  # a directory inside the run's temp dir: no "..", no "/"

RunName = Literal["fault", "fix"]
RUNS: tuple[RunName, ...] = ("fault", "fix")

BackendName = Literal["sqlite", "postgresql"]
BACKENDS: frozenset[BackendName] = frozenset({"sqlite", "postgresql"})
SQLITE_ONLY: frozenset[BackendName] = frozenset({"sqlite"})
POSTGRESQL_ONLY: frozenset[BackendName] = frozenset({"postgresql"})
