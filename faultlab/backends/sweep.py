"""Remove what a lab that died without cleaning up left behind (``kill -9``, a power cut): its temp dirs and,
on PostgreSQL, its databases and roles. Only what carries the owner record of a process that is gone is
removed; another live lab's runs, and anything without a record, are never touched."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from faultlab.backends.cluster_watch import stop_cluster
from faultlab.backends.pooler_watch import INI, stop_pooler
from faultlab.owner import Owner

__all__ = ["OWNER_FILE", "PREFIX", "Swept", "sweep_postgres", "sweep_temp_dirs"]

PREFIX = "faultlab-run-"  # every run's temp dir: <temp>/faultlab-run-<experiment>-<random>
OWNER_FILE = ".faultlab-owner"


@dataclass
class Swept:
    temp_dirs: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.temp_dirs or self.databases or self.roles)

    def line(self) -> str:
        counts = [
            f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
            for items, noun in ((self.temp_dirs, "temp dir"), (self.databases, "database"), (self.roles, "role"))
            if items
        ]
        return f"removed what an earlier lab left behind when it died: {', '.join(counts)}"


def _gone(record: str | None) -> bool:
    owner = Owner.from_json(record) if record else None
    return owner is not None and owner.is_gone()


def sweep_temp_dirs(root: Path | None = None) -> list[str]:
    removed = []
    for candidate in sorted(Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*")):
        try:
            record = (candidate / OWNER_FILE).read_text(encoding="utf-8")
        except OSError:
            continue  # no record (yet): not provably abandoned
        if _gone(record):
            # A cluster of the dead lab's own (backends.cluster) whose watcher died with it: stopped first.
            for pid_file in candidate.glob("*/data/postmaster.pid"):
                stop_cluster(pid_file.parent)
            for ini in candidate.glob(f"*/pgbouncer/{INI}"):  # a PgBouncer of a run's own (backends.pooler)
                stop_pooler(ini.parent)
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(str(candidate))
    return removed


def sweep_postgres(admin_url: str) -> tuple[list[str], list[str]]:
    """Databases, then roles, named ``faultlab_*`` whose comment is the record of a lab that is gone."""
    import psycopg
    from psycopg import sql

    from faultlab.backends.postgres import admin_connection

    databases, roles = [], []
    with admin_connection(admin_url) as connection:
        rows = connection.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE 'faultlab\\_%'"
        ).fetchall()
        for name, record in rows:
            if _gone(record):
                try:
                    connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                    databases.append(name)
                except psycopg.Error:
                    continue  # in use in a way FORCE cannot end, or gone meanwhile: next time
        rows = connection.execute(
            "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname LIKE 'faultlab\\_%'"
        ).fetchall()
        for name, record in rows:
            if _gone(record):
                try:
                    connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
                    roles.append(name)
                except psycopg.Error:
                    continue  # still owns something: next time
    return databases, roles
