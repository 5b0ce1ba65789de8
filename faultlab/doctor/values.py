"""The values of the doctor's requests, generated from the app's own OpenAPI document by schemathesis (a
maintained generator of OpenAPI requests, built on Hypothesis): bodies as JSON, forms or multipart, with the
formats honoured (``email`` gives an address, ``uuid`` a UUID, ``date-time`` a timestamp), and the required
query parameters and headers.

Each operation gets one request's values, made once before any is sent: the simplest the generator finds (the
first case Hypothesis tries is the simplest one the schema allows), with a fixed seed for the cases it must
search for, so two runs send the same requests. No form field is empty (FastAPI reads an empty field as a
missing one). Optional parameters are left out, so the doctor exercises the
app's ordinary path, not its validation; no NUL character is generated (PostgreSQL refuses them in text), and
no security parameter (credentials are the user's to give). The path's parameters are the ids the doctor
found (``faultlab.doctor.ids``), filled in when the request is sent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from faultlab.doctor.openapi import FORM, MULTIPART, Operation

__all__ = ["SEED", "Request", "Values"]

SEED = 20211  # the doctor's requests are the same on every run


@dataclass(frozen=True)
class Request:
    """What the doctor sends for one operation, but the path's ids."""

    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    media_type: str | None = None

    def httpx_kwargs(self) -> dict[str, Any]:
        """As ``httpx.Client.request``'s keyword arguments."""
        sent: dict[str, Any] = {"params": self.query or None, "headers": self.headers or None}
        if self.media_type is None:
            return sent
        if self.media_type == FORM:
            return {**sent, "data": _form(self.body)}
        if self.media_type == MULTIPART:  # every field a part (a file where the value is bytes), so it is multipart
            fields = self.body if isinstance(self.body, dict) else {}
            parts = {str(k): ("upload", v) if isinstance(v, bytes) else (None, _text(v)) for k, v in fields.items()}
            return {**sent, "files": parts}
        return {**sent, "json": self.body}


class Values:
    """Each sendable operation's request, or why none could be made (``problems``, by label)."""

    def __init__(self, document: dict[str, Any], operations: list[Operation], *, seed: int = SEED) -> None:
        self.requests: dict[str, Request] = {}
        self.problems: dict[str, str] = {}
        try:
            schema = _load(document)
        except Exception as exc:  # schemathesis refuses the document: every operation says why
            why = f"schemathesis could not read the document: {_first_line(exc)}"
            self.problems = dict.fromkeys((o.label for o in operations), why)
            return
        for operation in operations:
            if operation.unsendable:
                continue
            try:
                self.requests[operation.label] = _made(schema, operation, seed)
            except Exception as exc:  # a schema it cannot generate from: this operation is not checked, and says so
                self.problems[operation.label] = f"no request could be generated from its schema: {_first_line(exc)}"

    def request(self, operation: Operation) -> Request:
        return self.requests.get(operation.label) or Request()


def _load(document: dict[str, Any]) -> Any:
    import schemathesis
    from schemathesis.config import GenerationConfig, ProjectsConfig, SchemathesisConfig

    generation = GenerationConfig(allow_x00=False, with_security_parameters=False, allow_extra_parameters=False)
    # Built here, not discovered: a schemathesis.toml in the user's folder must not change what the doctor sends.
    config = SchemathesisConfig(projects=ProjectsConfig(default=_project(generation)))
    document = copy.deepcopy(document)  # schemathesis rewrites what it is given, and so does the next line
    _non_empty_form_fields(document)
    return schemathesis.openapi.from_dict(document, config=config)


def _non_empty_form_fields(document: dict[str, Any]) -> None:
    """Every string field of a form body gets ``minLength: 1``: FastAPI reads an empty form field as a missing
    one (422), and the simplest string is the empty one."""
    components = (document.get("components") or {}).get("schemas") or {}
    for item in (document.get("paths") or {}).values():
        for spec in item.values() if isinstance(item, dict) else ():
            content = ((spec.get("requestBody") or {}).get("content") or {}) if isinstance(spec, dict) else {}
            for media_type in (FORM, MULTIPART):
                schema = (content.get(media_type) or {}).get("schema") or {}
                if isinstance(ref := schema.get("$ref"), str):
                    schema = components.get(ref.rsplit("/", 1)[-1]) or {}
                for field_schema in (schema.get("properties") or {}).values():
                    for option in [field_schema, *(field_schema.get("anyOf") or [])]:
                        if isinstance(option, dict) and option.get("type") == "string":
                            option.setdefault("minLength", 1)


def _project(generation: Any) -> Any:
    from schemathesis.config import ProjectConfig

    return ProjectConfig(generation=generation)


def _made(schema: Any, operation: Operation, seed: int) -> Request:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from schemathesis.generation import GenerationMode

    api_operation = schema[operation.path][operation.method]
    strategy = api_operation.as_strategy(
        GenerationMode.POSITIVE,
        path_parameters=dict.fromkeys(operation.path_params, 1),  # the doctor's ids replace them
        media_type=operation.media_type,
    )
    cases: list[Any] = []

    @fixed_seed(seed)
    @settings(
        max_examples=1, phases=[Phase.generate], database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def first(case: Any) -> None:
        cases.append(case)

    first()
    if not cases:
        raise ValueError("the generator found no value the schema accepts")
    case = cases[0]
    required = set(operation.required)
    has_body = operation.media_type is not None and not _unset(case.body)
    return Request(
        query={k: v for k, v in (case.query or {}).items() if ("query", k) in required},
        headers={str(k): str(v) for k, v in (case.headers or {}).items() if ("header", k) in required},
        body=case.body if has_body else None,
        media_type=operation.media_type if has_body else None,
    )


def _unset(value: object) -> bool:
    from schemathesis.core import NotSet

    return isinstance(value, NotSet)


def _form(body: object) -> dict[str, Any]:
    """A form's fields as httpx sends them: strings, lists of them, JSON-ish values as their text."""
    if not isinstance(body, dict):
        return {}
    return {str(k): v if isinstance(v, str | list) else _text(v) for k, v in body.items()}


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
