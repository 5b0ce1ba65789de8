"""An experiment's ``[setup]``: the database its server starts on and what stands below the app (a PostgreSQL
server of the run's own, the fault proxy, a PgBouncer), and the rules that tie the steps to it: an action that stops the
database needs the run's own server, one that switches the proxy's faults needs the proxy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from faultlab.model.steps import ActionStepBase, Strict
from faultlab.names import BackendName
from faultlab.plugins.registry import Registry

if TYPE_CHECKING:
    from faultlab.model.steps import Step

__all__ = ["Row", "Setup", "machine_problem", "setup_problem"]


class Row(Strict):
    title: str
    completed: bool = False


class Setup(Strict):
    """The database the server starts on; by default none (the app creates it)."""

    migration: Literal["0001", "0002", "0003", "head"] | None = None
    rows: list[Row] = Field(default_factory=list)
    database: Literal["own-cluster"] | None = Field(
        None,
        description="own-cluster: a PostgreSQL server of the run's own (faultlab.backends.cluster), which the "
        "experiment may stop, restart, kill or pause; by default the server given with --db",
    )
    max_connections: int | None = Field(
        None,
        ge=10,
        le=200,
        description="own-cluster only: the server's max_connections (3 of them reserved for superusers, the lab's "
        "reads among them); by default 60",
    )
    network: Literal["fault-proxy"] | None = Field(
        None,
        description="fault-proxy: the app reaches its database through the lab's fault proxy "
        "(faultlab.backends.proxy), whose faults the steps switch; by default it connects directly",
    )

    pooler: Literal["pgbouncer"] | None = Field(
        None,
        description="pgbouncer: the app reaches its database through a PgBouncer of the run's own in transaction "
        "pooling mode (faultlab.backends.pooler); by default it connects directly",
    )

    @model_validator(mode="after")
    def _rows_need_a_schema(self) -> Setup:
        if self.rows and self.migration is None:
            raise ValueError("rows need a migration to insert them into")
        return self


def setup_problem(
    registry: Registry, setup: Setup, backends: Sequence[BackendName], together: bool, steps: Sequence[Step]
) -> str | None:
    """What is wrong between the set-up and the rest of the experiment, in one sentence; None when nothing
    (``registry`` says which actions stop the database or switch the proxy, which witnesses need the proxy)."""
    actions, witnesses = registry.actions, registry.witnesses
    if setup.database == "own-cluster":
        if tuple(backends) != ("postgresql",):
            return 'setup.database = "own-cluster" is a PostgreSQL server: use backends = ["postgresql"]'
        if together:
            return 'setup.database = "own-cluster": both runs share the server; use together = false'
    if setup.max_connections is not None and setup.database != "own-cluster":
        return 'setup.max_connections is a setting of a server of the run\'s own: set setup.database = "own-cluster"'
    if setup.network == "fault-proxy" and tuple(backends) != ("postgresql",):
        return 'setup.network = "fault-proxy" sits between the app and a database server: use backends = ["postgresql"]'
    if setup.pooler == "pgbouncer" and tuple(backends) != ("postgresql",):
        return 'setup.pooler = "pgbouncer" pools connections to a PostgreSQL server: use backends = ["postgresql"]'
    proxied = {spec.name for cls in witnesses.values() if cls.needs_proxy for spec in cls.observations}
    for number, step in enumerate(steps, 1):
        if isinstance(step, ActionStepBase):
            action = actions[step.action]
            if action.needs_own_cluster and setup.database != "own-cluster":
                return (
                    f"steps[{number}]: {step.action} stops or signals the database server; set setup.database = "
                    '"own-cluster" (the user\'s own server is never touched)'
                )
            if action.needs_proxy and setup.network != "fault-proxy":
                return f'steps[{number}]: {step.action} switches the fault proxy; set setup.network = "fault-proxy"'
        seen = sorted(proxied & {name for checks in step.expect.values() for name in checks})
        if seen and setup.network != "fault-proxy":
            return f'steps[{number}]: {", ".join(seen)} is seen by the fault proxy; set setup.network = "fault-proxy"'
    return None


def machine_problem(setup: Setup) -> str | None:
    """What this machine lacks to run an experiment with this set-up (binaries, not a running server), with what
    to install; None when nothing. Such an experiment is skipped, not failed."""
    from faultlab.backends.cluster import cluster_problem
    from faultlab.backends.pooler import pooler_problem

    if setup.database == "own-cluster" and (problem := cluster_problem()):
        return f"needs a PostgreSQL server of its own: {problem}"
    if setup.pooler == "pgbouncer" and (problem := pooler_problem()):
        return f"needs PgBouncer: {problem}"
    return None
