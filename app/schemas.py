"""Request and response bodies (Pydantic v2). What they accept is what the OpenAPI document says.

Unknown fields in a request body are rejected with 422 (``extra="forbid"``), so a typo such as
``"complete": true`` is an error rather than silently ignored. Types are strict: ``"completed": 0`` or
``"yes"`` is not a boolean. A whole number written as a float (``86.0``) is an integer, as JSON Schema says.

The title rule (``TITLE_PATTERN``, published in the document): at most 200 characters as sent; at least one
visible character (whitespace, zero-width and other invisible characters alone are not a title); no control
characters, line or paragraph separators, or bidirectional controls (U+202A-U+202E, U+2066-U+2069), which
could make a title display as something else. Surrounding whitespace is stripped before it is stored.
A tag follows the same rule with at most 50 characters; a todo has at most 20, and a repeated tag is kept
once.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Self

from annotated_types import Interval
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic.types import Strict

_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_INVISIBLE = r" \u00a0\u00ad\u1680\u180e\u2000-\u200f\u202f\u205f-\u2064\u3000\ufeff"
TITLE_PATTERN = f"^[{_INVISIBLE}]*[^{_FORBIDDEN}{_INVISIBLE}][^{_FORBIDDEN}]*$"
_TITLE = re.compile(TITLE_PATTERN)


def _visible_text(what: str) -> Any:
    def check(text: str) -> str:
        if not _TITLE.fullmatch(text):
            raise ValueError(
                f"{what} needs a visible character and cannot contain control characters, line breaks or bidi controls"
            )
        return text.strip()

    return check


def _distinct(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def _whole_float_to_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "default": null would contradict the type: an omitted field is unchanged


# The pattern is only published: _visible_text checks it (a 422 that echoed the regex would help no one).
Title = Annotated[
    str, Field(max_length=200, json_schema_extra={"pattern": TITLE_PATTERN}), AfterValidator(_visible_text("title"))
]
TagName = Annotated[
    str, Field(max_length=50, json_schema_extra={"pattern": TITLE_PATTERN}), AfterValidator(_visible_text("a tag"))
]
Priority = Annotated[int, Strict(), Interval(ge=0, le=100), BeforeValidator(_whole_float_to_int)]
PRIORITY = "0 (default) to 100, higher is more urgent"


class TodoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    completed: StrictBool = False
    priority: Priority = Field(0, description=PRIORITY)
    tags: Annotated[list[TagName], Field(max_length=20), AfterValidator(_distinct)] = []


class TodoUpdate(BaseModel):
    """A partial update: only the fields sent are changed; none of them may be null (the document says so)."""

    model_config = ConfigDict(extra="forbid")

    title: Title | SkipJsonSchema[None] = Field(None, json_schema_extra=_no_default)
    completed: StrictBool | SkipJsonSchema[None] = Field(None, json_schema_extra=_no_default)
    priority: Priority | SkipJsonSchema[None] = Field(None, description=PRIORITY, json_schema_extra=_no_default)

    @model_validator(mode="after")
    def _no_explicit_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)}")
        return self


def _tag_names(tags: Any) -> Any:
    """The model holds Tag rows; the API serves their names."""
    return [getattr(tag, "name", tag) for tag in tags] if isinstance(tags, list) else tags


class TodoRead(BaseModel):
    """A todo as the API serves it."""

    # Only these fields reach a client, whatever the ORM object holds: the model's created_by_ip stays
    # server-side (faults/missing_response_schema.py serves a route without this schema).
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    completed: bool
    priority: int
    created_at: datetime = Field(description="When it was created, in UTC (RFC 3339, e.g. 2026-11-25T00:36:57Z)")
    tags: Annotated[list[str], BeforeValidator(_tag_names)]


class TodoCount(BaseModel):
    total: int
    completed: int
    pending: int
