"""Where a checkup keeps the app's data: a SQLite file in its run dir, a throwaway database and role on the user's
PostgreSQL server, or one on a PostgreSQL server of the checkup's own (``--db own-cluster``,
``faultlab.backends.cluster``), the only server the doctor ever restarts (the "database restart" check)."""

from __future__ import annotations

import shutil
from pathlib import Path

from faultlab.backends.base import Backend, PostgresBackend, SqliteBackend
from faultlab.backends.cluster import OwnCluster, cluster_problem
from faultlab.errors import UsageError
from faultlab.interrupts import deferred

__all__ = ["OWN_CLUSTER", "require_cluster", "start_cluster", "throwaway"]

OWN_CLUSTER = "own-cluster"  # --db: a PostgreSQL server of the checkup's own


def require_cluster() -> None:
    """Before anything is made: where no cluster can be started, a usage error that says what to install."""
    if problem := cluster_problem():
        raise UsageError(f"--db {OWN_CLUSTER}: {problem}")


def start_cluster(workdir: Path) -> OwnCluster:
    """A PostgreSQL server of the checkup's own, running (its port is known only then), watched on the lab's lifeline
    as an experiment's is; removed with the run's dir if it cannot start, or on Ctrl+C while it starts."""
    cluster = OwnCluster(workdir)
    try:
        cluster.create()
    except BaseException:
        with deferred():
            cluster.remove()
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    return cluster


def throwaway(workdir: Path, postgres_url: str | None, cluster: OwnCluster | None) -> Backend:
    """A SQLite file in the run's dir, or a throwaway database and role on the user's server or on the checkup's own."""
    if cluster is not None:
        made = PostgresBackend(cluster.admin_url, "doctor")
        made.cluster = cluster
        return made
    return SqliteBackend(workdir) if postgres_url is None else PostgresBackend(postgres_url, "doctor")
