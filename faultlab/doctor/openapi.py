"""The operations of an app's OpenAPI document, and the order the doctor sends them in.

Every operation of the document is one here, including those the doctor cannot send (a method it does not
send, a body of a media type it cannot make): ``unsendable`` says why, and the checkup lists it as not checked
with that reason. The values of a request come from ``faultlab.doctor.values``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["SENT_METHODS", "Operation", "is_collection_read", "operations", "plan"]

SENT_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_METHODS = (*SENT_METHODS, "HEAD", "OPTIONS", "TRACE")
# The body media types the doctor makes, in the order it prefers them when an operation accepts several.
JSON, FORM, MULTIPART = "application/json", "application/x-www-form-urlencoded", "multipart/form-data"


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # as documented, e.g. /todos/{todo_id}
    path_params: tuple[str, ...] = ()
    media_type: str | None = None  # of the body the doctor sends; None: no body
    required: tuple[tuple[str, str], ...] = ()  # (where, name) of its required query, header and cookie parameters
    unsendable: str = ""  # why the doctor cannot send it ("" when it can)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def collection(self) -> str:
        """The path up to its first parameter, without a trailing slash: ``/items`` for ``/items/{id}``."""
        return self.path.split("{", 1)[0].rstrip("/")

    def url(self, item_id: object | None = None) -> str:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", str(item_id))
        return path


def _media_type(spec: dict[str, Any]) -> tuple[str | None, str]:
    """The body's media type the doctor will send, or why it cannot send one."""
    body = spec.get("requestBody")
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, dict) or not content:
        return None, ""
    types = [name.split(";")[0].strip().lower() for name in content]
    for wanted in (JSON, FORM, MULTIPART):
        if wanted in types:
            return wanted, ""
    if json_like := next((t for t in types if t.endswith("+json")), None):
        return json_like, ""
    return None, f"its body is {' or '.join(types)}; the doctor makes JSON, form and multipart bodies only"


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in sorted((document.get("paths") or {}).items()):
        if not isinstance(item, dict):
            continue
        for method, spec in item.items():
            if method.upper() not in _METHODS or not isinstance(spec, dict):
                continue
            shared, own = item.get("parameters") or [], spec.get("parameters") or []
            params = [p for p in [*shared, *own] if isinstance(p, dict)]
            media_type, unsendable = _media_type(spec)
            if method.upper() not in SENT_METHODS:
                unsendable = f"the doctor sends {', '.join(SENT_METHODS)} only"
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(re.findall(r"{([^{}]+)}", path)),  # the template's, declared or not
                    media_type=media_type,
                    required=tuple((p["in"], p["name"]) for p in params if p.get("in") != "path" and p.get("required")),
                    unsendable=unsendable,
                )
            )
    return found


def plan(ops: list[Operation]) -> list[Operation]:
    """The order the doctor sends them in: reads of collections, creates, the other writes without an id (PUT
    /users/me), then reads and writes by id, deletes by id, and deletes without an id last (they may remove
    what the others use). Nothing is left out: an operation it cannot send comes last, to be listed."""
    sendable = [o for o in ops if not o.unsendable]
    no_id = [o for o in sendable if not o.path_params]
    by_id = [o for o in sendable if o.path_params]
    order = [
        *[o for o in no_id if o.method == "GET"],
        *[o for o in no_id if o.method == "POST"],
        *[o for o in no_id if o.method in ("PUT", "PATCH")],
        *[o for o in by_id if o.method == "GET"],
        *[o for o in by_id if o.method not in ("GET", "DELETE")],
        *[o for o in by_id if o.method == "DELETE"],
        *[o for o in no_id if o.method == "DELETE"],
    ]
    return [*order, *[o for o in ops if o.unsendable]]


def is_collection_read(operation: Operation) -> bool:
    return operation.method == "GET" and not operation.path_params
