"""What the user handed the doctor in confidence never comes back out of it: an app that echoes its settings
when it fails (a traceback, pydantic's ``input_value='...'``) or an error that repeats a header is shown, and
written, with those values masked.

Masked: the password of every URL (``scheme://user:PASSWORD@host``, the throwaway database's included), the
value of each setting whose name says it is a secret (``..._PASSWORD``, ``SECRET_KEY``, ``API_TOKEN``, as the
app got it: placeholders filled in), the value of each header whose name says it carries credentials
(``Authorization``, ``Cookie``, ``X-Api-Key``: and its last word, the token of ``Bearer TOKEN``), the login's
secret fields (``password``, ``client_secret``) and the token it answered with. Other values
(``ENVIRONMENT=local``, a username, ``Accept: application/json``) stay readable: masking every short value
would garble the messages that merely contain it. Only what the app said is masked: the report's own parts
(operations, the files and lines of findings) are the doctor's, and stay as they are.
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
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|SALT|SIGNATURE|COOKIE|SESSION", re.I)
URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)([^@\s]+)@")
# The report's own parts, never text the app said: left as they are (a path that happens to contain a value).
NOT_SAID_BY_THE_APP = frozenset({"operation", "operations", "target", "file", "path", "function", "app_file", "python"})
T = TypeVar("T")


@dataclass(frozen=True)
class Secrets:
    values: tuple[str, ...] = ()

    @classmethod
    def given(cls, project: Project | None) -> Secrets:
        """What ``project`` was given in confidence; read when needed: the login's token comes later."""
        if project is None:
            return cls()
        settings = project.given_env or {name: value for name, value in project.settings.env if "{" not in value}
        found = {value for name, value in settings.items() if SECRET_NAME.search(name)}
        found.update(match.group(2) for value in settings.values() for match in URL_PASSWORD.finditer(value))
        credentials = project.credentials
        for name, value in credentials.sent().items():
            if SECRET_NAME.search(name):
                found.update((value, *value.split()[-1:]))
        if credentials.login is not None:
            found.update(value for name, value in credentials.login.fields.items() if SECRET_NAME.search(name))
        # Longest first: a value that contains another is masked whole.
        return cls(tuple(sorted((v for v in found if len(v) >= MIN_LENGTH), key=len, reverse=True)))

    def mask(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return URL_PASSWORD.sub(rf"\1{MASK}@", text)

    def mask_all(self, obj: T) -> T:
        """Every string the app said in ``obj`` (dataclasses, lists, dicts, nested) masked, in place."""
        return self._walk(obj)  # type: ignore[no-any-return]

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, list):
            obj[:] = [self._walk(item) for item in obj]
        elif isinstance(obj, dict):
            for key in list(obj):
                obj[key] = self._walk(obj[key])
        elif is_dataclass(obj) and not isinstance(obj, type):
            for field in fields(obj):
                if field.name not in NOT_SAID_BY_THE_APP:
                    object.__setattr__(obj, field.name, self._walk(getattr(obj, field.name)))
        return obj
