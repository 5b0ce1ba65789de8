"""What the doctor sends: the operations of an app's own OpenAPI document, with bodies made from its schemas.

A body is the smallest one the schema accepts (required fields only, each the simplest valid value), so
the doctor exercises the app's ordinary path, not its validation. Anything it cannot make a value for is
left out and said, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Operation", "body_for", "is_collection_read", "operations", "plan"]

MAX_DEPTH = 6


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # as documented, e.g. /todos/{todo_id}
    body_schema: dict[str, Any] | None = None
    path_params: tuple[str, ...] = ()
    required_query: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, item_id: object | None = None) -> str:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", str(item_id))
        return path


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in sorted((document.get("paths") or {}).items()):
        if not isinstance(item, dict):
            continue
        for method, spec in item.items():
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not isinstance(spec, dict):
                continue
            params = [p for p in spec.get("parameters") or [] if isinstance(p, dict)]
            content = ((spec.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    body_schema=content.get("schema"),
                    path_params=tuple(p["name"] for p in params if p.get("in") == "path"),
                    required_query=tuple(p["name"] for p in params if p.get("in") == "query" and p.get("required")),
                )
            )
    return found


def plan(ops: list[Operation]) -> list[Operation]:
    """The order the doctor sends them in: reads of collections, then creates, then the rest by id, deletes last."""
    collection_reads = [o for o in ops if o.method == "GET" and not o.path_params]
    creates = [o for o in ops if o.method == "POST" and not o.path_params]
    by_id = [o for o in ops if o.path_params and o.method != "DELETE"]
    deletes = [o for o in ops if o.path_params and o.method == "DELETE"]
    return [*collection_reads, *creates, *by_id, *deletes]


def is_collection_read(operation: Operation) -> bool:
    return operation.method == "GET" and not operation.path_params


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}
    return schema


def _string(schema: dict[str, Any]) -> str:
    low, high = int(schema.get("minLength", 1)), int(schema.get("maxLength", 40))
    text = "doctor"
    if (pattern := schema.get("pattern")) and not _matches(pattern, text):
        text = next((c for c in ("x", "a1", "doctor-1", "1") if _matches(pattern, c)), text)
    return (text * (low // len(text) + 1))[: max(low, min(len(text), high))]


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True  # a pattern Python cannot read: the app will say


def body_for(schema: dict[str, Any] | None, document: dict[str, Any], depth: int = 0) -> Any:
    """The simplest value ``schema`` accepts, or None when it accepts nothing the doctor can make."""
    if schema is None or depth > MAX_DEPTH:
        return None
    schema = _resolve(schema, document)
    for key in ("anyOf", "oneOf", "allOf"):
        if choices := schema.get(key):
            options = [_resolve(c, document) for c in choices if isinstance(c, dict)]
            preferred = [o for o in options if o.get("type") != "null"] or options
            return body_for(preferred[0], document, depth + 1) if preferred else None
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: body_for(properties.get(name, {}), document, depth + 1) for name in schema.get("required") or []}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [body_for(schema.get("items") or {}, document, depth + 1) for _ in range(count)]
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        low, above = schema.get("minimum"), schema.get("exclusiveMinimum")
        number: float = low if low is not None else (above + 1 if above is not None else 1)
        if (high := schema.get("maximum")) is not None:
            number = min(number, high)
        return int(number) if kind == "integer" else float(number)
    if kind == "boolean":
        return False
    return None
