"""The credentials the doctor sends with every request: ``--header 'NAME: VALUE'`` (repeatable) and a login step,
``--login 'POST /api/v1/login/access-token form:username=me@example.com,password=...'`` (or ``json:``), sent once
the app answers; the ``access_token`` (or ``token``) of its JSON answer becomes ``Authorization: Bearer ...``.

Values are never shown: the reports say which headers were sent and which fields the login had, by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx

from faultlab.errors import UsageError

__all__ = ["Credentials", "Login", "parse_header", "parse_login"]

_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s*(.+)$")
_LOGIN = re.compile(r"^(GET|POST|PUT|PATCH)\s+(/\S*)(?:\s+(form|json):(.*))?$", re.DOTALL)
LOGIN_EXAMPLE = "--login 'POST /api/v1/login/access-token form:username=me@example.com,password=...'"


def parse_header(text: str) -> tuple[str, str]:
    if not (match := _HEADER.match(text.strip())):
        raise UsageError(
            f"--header {text.split(':')[0]}...: give 'NAME: VALUE', e.g. --header 'Authorization: Bearer TOKEN'"
        )
    return match.group(1), match.group(2).strip()


@dataclass(frozen=True)
class Login:
    method: str
    path: str
    kind: str = "form"  # how the fields are sent: form (OAuth2's password flow) or json
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        """The step without its values: ``POST /api/v1/login/access-token (form: username, password)``."""
        return f"{self.method} {self.path} ({self.kind}: {', '.join(self.fields) or 'no fields'})"


def parse_login(text: str) -> Login:
    if not (match := _LOGIN.match(text.strip())):
        raise UsageError(f"--login: give 'METHOD /PATH form:NAME=VALUE,...' (or json:), e.g. {LOGIN_EXAMPLE}")
    method, path, kind, rest = match.groups()
    fields: dict[str, str] = {}
    for item in (rest or "").split(","):
        if not item.strip():
            continue
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--login: a field {name.strip()!r} without '=VALUE'; e.g. {LOGIN_EXAMPLE}")
        fields[name.strip()] = value
    return Login(method, path, kind or "form", fields)


@dataclass
class Credentials:
    headers: list[tuple[str, str]] = field(default_factory=list)
    login: Login | None = None
    _token: str = ""  # the login's answer, once sent

    def sent(self) -> dict[str, str]:
        """The headers every request of the doctor carries."""
        sent = dict(self.headers)
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        return sent

    def log_in(self, client: httpx.Client) -> None:
        """The login step, once the app answers: its token kept; a refusal is a usage error saying what came back."""
        if self.login is None:
            return
        login = self.login
        data = login.fields if login.kind == "form" else None
        body = login.fields if login.kind == "json" else None
        response = client.request(login.method, login.path, data=data, json=body, headers=dict(self.headers))
        token = _token(response)
        if not token:
            raise UsageError(
                f"--login {login.shown}: the app answered {response.status_code} "
                f"{_detail(response)!r} and no access_token; check the path and the fields (python run_lab.py "
                "doctor --help), or pass a token with --header 'Authorization: Bearer TOKEN'"
            )
        self._token = token

    def shown(self) -> list[str]:
        """What was sent, without a value: header names, and the login step's fields."""
        shown = [f"header {name}" for name, _ in self.headers]
        if self.login is not None:
            shown.append(f"login {self.login.shown} → bearer token" + ("" if self._token else " (not sent yet)"))
        return shown


def _token(response: httpx.Response) -> str:
    if not response.is_success:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    token = body.get("access_token") or body.get("token") if isinstance(body, dict) else None
    return token if isinstance(token, str) else ""


def _detail(response: httpx.Response) -> str:
    """The answer's reason, never the values it echoes (a 422 repeats the fields sent: the password too)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors: where and what, not the input
        return "; ".join(
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}" for e in detail[:3] if isinstance(e, dict)
        )[:200]
    return detail[:120] if isinstance(detail, str) else ""
