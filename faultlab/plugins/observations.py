"""What the lab records after each step: named values (names and types from ``registry``), what could not
be observed here and why, a timeline sampled during the step, and the server's exceptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ExceptionRecord", "Link", "Observation", "Sample", "Where"]


class Where(BaseModel):
    """A line of the app's own code: the first frame outside the libraries (``faultlab.inside.sites``)."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{Path(self.file).name}:{self.line} in {self.function}"


class Link(BaseModel):
    """One exception of a chain: the one raised, what caused it, what it interrupted, or a group's leaf."""

    type: str
    message: str
    relation: str = "raised"
    where: Where | None = None

    def __str__(self) -> str:
        return f"{self.type.rsplit('.', 1)[-1]}: {self.message}"


class ExceptionRecord(BaseModel):
    """An exception that escaped the app, with the request it came from."""

    step: str | None = Field(None, description="'<run>:<step>' of the request, from the lab's header")
    method: str | None = None
    path: str | None = None
    chain: list[Link]
    where: Where | None = Field(None, description="the app's line nearest the chain's first exception it raised")
    loading: dict[str, Any] | None = Field(
        None, description="what the ORM was loading in that request when it raised (the doctor's runs only)"
    )

    def __str__(self) -> str:
        head, *rest = self.chain
        return "; ".join([str(head), *(f"{link.relation} {link}" for link in rest)])


class Sample(BaseModel):
    t: float = Field(description="seconds since the step began")
    values: dict[str, int | float]


class Observation(BaseModel):
    """Evidence after one step. A value of ``None`` means "no value" (and fails any check); an observation
    in ``unavailable`` could not be made on this machine (its checks are n/a)."""

    values: dict[str, Any] = Field(default_factory=dict)
    unavailable: dict[str, str] = Field(default_factory=dict, description="observation -> why it was not observed")
    timeline: list[Sample] = Field(default_factory=list)
    exceptions: list[ExceptionRecord] = Field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)
