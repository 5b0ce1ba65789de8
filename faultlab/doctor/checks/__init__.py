"""The doctor's checks (``faultlab.doctor.contract``), one module each or per closely related pair, and the explicit
tuple of the built-in ones: the checkup calls each hook in this order, which is the order of the findings
and of the checks that did not run in its report. Checks from other distributions come after them, each
named by an entry point of ``ENTRY_POINT_GROUP`` (``name = "package.module:CheckClass"``)."""

from __future__ import annotations

from importlib.metadata import entry_points

from faultlab.doctor.checks.answers import LostWrite, ServerErrors
from faultlab.doctor.checks.budget import PoolBudget
from faultlab.doctor.checks.concurrency import SharedSession
from faultlab.doctor.checks.drift import SchemaDrift
from faultlab.doctor.checks.event_loop import EventLoop
from faultlab.doctor.checks.idle import IdleAfter, IdleDuring
from faultlab.doctor.checks.implicit_io import ImplicitIO
from faultlab.doctor.checks.os_leak import OsLeak
from faultlab.doctor.checks.pool import PoolExhaustion, PoolLeak
from faultlab.doctor.checks.restart import DatabaseRestart
from faultlab.doctor.checks.statements import StatementsPerRow
from faultlab.doctor.checks.timeout import StatementTimeout
from faultlab.doctor.contract import OPTIONS, Check
from faultlab.errors import PluginError
from faultlab.names import BACKENDS

__all__ = ["BUILTIN_CHECKS", "ENTRY_POINT_GROUP", "checks", "installed_checks"]

ENTRY_POINT_GROUP = "faultlab.doctor_checks"

BUILTIN_CHECKS: tuple[type[Check], ...] = (
    StatementTimeout,  # read at the start, on a whole pool: its finding is the engine's, first
    ServerErrors,
    LostWrite,
    PoolLeak,
    IdleAfter,
    EventLoop,
    IdleDuring,  # after the loop's: its finding comes from the same timed request
    PoolExhaustion,
    StatementsPerRow,
    ImplicitIO,  # after the statements' read with rows: its own read with rows leaves their count alone
    DatabaseRestart,  # on the doctor's own server only (--db own-cluster)
    PoolBudget,
    SharedSession,  # after the pool's budget: its burst of creates leaves rows behind
    OsLeak,  # its evidence joins the pool's leak on each operation; at the end, whether it could still read
    SchemaDrift,  # --compare-db only
)

_HOOKS = ("start", "operation", "after_operations", "end")


def _verify(cls: type[Check]) -> None:
    """The contract a check keeps, checked before any is run; the error names the check and the rule."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not getattr(cls, "name", None):
        raise PluginError(f"doctor check {where}: needs a name")
    if not cls.backends or not cls.backends <= BACKENDS:
        raise PluginError(f"doctor check {where}: backends must be some of {', '.join(sorted(BACKENDS))}")
    if unknown := sorted(set(cls.needs) - OPTIONS):
        raise PluginError(f"doctor check {where}: needs {', '.join(unknown)}, not among {', '.join(sorted(OPTIONS))}")
    if all(getattr(cls, hook) is getattr(Check, hook) for hook in _HOOKS):
        raise PluginError(f"doctor check {where}: implements none of {', '.join(_HOOKS)}")


def installed_checks() -> tuple[type[Check], ...]:
    """The built-in checks, then those other distributions name in ``ENTRY_POINT_GROUP``."""
    found: list[type[Check]] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"doctor check {entry_point.name} ({entry_point.value}, from the {ENTRY_POINT_GROUP} entry points) "
                f"could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, Check)):
            raise PluginError(
                f"doctor check {entry_point.name} ({entry_point.value}): names {cls!r}, not a subclass of "
                "faultlab.doctor.contract.Check"
            )
        found.append(cls)
    return BUILTIN_CHECKS + tuple(found)


def checks(classes: tuple[type[Check], ...] | None = None) -> list[Check]:
    """An instance of each check (the installed ones by default), for one checkup (a check may keep state
    between its hooks)."""
    classes = installed_checks() if classes is None else classes
    for cls in classes:
        _verify(cls)
    return [cls() for cls in classes]
