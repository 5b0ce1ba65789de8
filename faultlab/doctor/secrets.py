"""What the user handed the doctor in confidence never comes back out of it: an app that echoes its settings
when it fails (a traceback, pydantic's ``input_value='...'``) or an error that repeats a header is shown, and
written, with those values masked.

The values masked: every header's value (and its last word, the token of ``Bearer TOKEN``), every field of
the login and the token it answered with, and the value of each ``--env`` setting whose name says it is a
secret (``..._PASSWORD``, ``SECRET_KEY``, ``API_TOKEN``, ...). Other settings (``ENVIRONMENT=local``) stay
readable: masking every short value would garble paths and messages that merely contain it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from faultlab.doctor.checkup import Project

__all__ = ["MASK", "Secrets"]

MASK = "***"
MIN_LENGTH = 3  # shorter values are in too many words to mask, and too short to be worth guessing
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|SALT|SIGNATURE|DSN", re.IGNORECASE)
T = TypeVar("T")


@dataclass(frozen=True)
class Secrets:
    values: tuple[str, ...] = ()

    @classmethod
    def given(cls, project: Project | None) -> Secrets:
        """What ``project`` was given in confidence; read when needed: the login's token comes later."""
        if project is None:
            return cls()
        found = {value for name, value in project.settings.env if SECRET_NAME.search(name)}
        for value in project.credentials.sent().values():
            found.update((value, *value.split()[-1:]))
        if project.credentials.login is not None:
            found.update(project.credentials.login.fields.values())
        # Longest first: a value that contains another is masked whole.
        return cls(tuple(sorted((v for v in found if len(v) >= MIN_LENGTH), key=len, reverse=True)))

    def mask(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def mask_all(self, obj: T) -> T:
        """Every string in ``obj`` (dataclasses, lists, tuples, dicts, nested) masked, in place where it can be."""
        return self._walk(obj) if self.values else obj

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, list):
            obj[:] = [self._walk(item) for item in obj]
            return obj
        if isinstance(obj, tuple):
            return type(obj)(self._walk(item) for item in obj) if not hasattr(obj, "_fields") else obj
        if isinstance(obj, dict):
            for key in list(obj):
                obj[key] = self._walk(obj[key])
            return obj
        if is_dataclass(obj) and not isinstance(obj, type):
            for field in fields(obj):
                object.__setattr__(obj, field.name, self._walk(getattr(obj, field.name)))
        return obj
