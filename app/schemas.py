"""Request and response bodies (Pydantic v2).

Unknown fields in a request body are rejected with 422 (``extra="forbid"``), so a typo such as
``"complete": true`` is an error rather than silently ignored. A title is stripped of surrounding blanks,
must keep 1-200 characters, and may not contain control characters.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator


def _no_control_characters(title: str) -> str:
    if any(unicodedata.category(char) == "Cc" for char in title):
        raise ValueError("title cannot contain control characters (tabs, newlines, escapes)")
    return title


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_characters),
]
Priority = Annotated[int, Field(strict=True, ge=0, le=100, description="0 (default) to 100, higher is more urgent")]


class TodoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    completed: bool = False
    priority: Priority = 0


class TodoUpdate(BaseModel):
    """A partial update: only the fields sent are changed; none of them may be null."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    completed: bool | None = None
    priority: Priority | None = None

    @model_validator(mode="after")
    def _no_explicit_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)}")
        return self


class TodoRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    completed: bool
    priority: int
    created_at: datetime


class TodoCount(BaseModel):
    total: int
    completed: int
    pending: int
