"""Where the doctor gets the app's OpenAPI document: from the app itself (its ``openapi_url``, which the harness
reads inside the server: ``/api/v1/openapi.json`` as readily as ``/openapi.json``), or from ``--openapi``, a file
or a URL path on the served app. A document that cannot be had, or that lists no operation, is a usage error
that says what to do: the doctor never reports "nothing found" on an app it did not exercise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from faultlab.doctor.openapi import Operation, operations
from faultlab.errors import UsageError
from faultlab.inside import wire

__all__ = ["Document", "load_document"]

_DEFAULT_URL = "/openapi.json"
_HOW = (
    "give it with --openapi PATH (a JSON or YAML file, or the URL path your app serves it at, e.g. "
    "/api/v1/openapi.json)"
)


class Document:
    """The document, where it came from (for the report and its errors), and its operations."""

    def __init__(self, raw: dict[str, Any], source: str) -> None:
        self.raw, self.source = raw, source
        self.operations: list[Operation] = operations(raw)


def load_document(client: httpx.Client, given: str | None) -> Document:
    """The document ``--openapi`` names (a file that exists, else a URL path), or the one the app serves at its
    own ``openapi_url``; a ``UsageError`` when there is none or it lists no operation."""
    if given is not None and Path(given).is_file():
        document = Document(_read_file(Path(given)), f"the file {given}")
    elif given is not None:
        if not given.startswith("/"):
            raise UsageError(f"--openapi {given}: no such file, and not a URL path (those start with /)")
        document = Document(_fetch(client, given, "--openapi"), f"{given} on your app")
    else:
        url, why = _served_at(client)
        document = Document(_fetch(client, url, why), f"{url} on your app ({why})")
    if not document.operations:
        raise UsageError(
            f"the OpenAPI document from {document.source} lists no operation the doctor can send (its 'paths' are "
            f"empty or hold no GET, POST, PUT, PATCH or DELETE), so there is nothing to check; if your routes are "
            f"in another document, {_HOW}"
        )
    return document


def _served_at(client: httpx.Client) -> tuple[str, str]:
    """The app's own ``openapi_url`` as the harness read it inside the server, and how it was found."""
    try:
        said = client.get(wire.PROBE_PREFIX + "app").json()
    except (httpx.HTTPError, ValueError):
        said = {}
    if said.get("fastapi") and said.get("openapi_url") is None:
        raise UsageError(f"your app serves no OpenAPI document (its openapi_url is None); {_HOW}")
    if isinstance(url := said.get("openapi_url"), str):
        return url, "the app's openapi_url"
    return _DEFAULT_URL, "FastAPI's default: the app object has no openapi_url the doctor could read"


def _fetch(client: httpx.Client, url: str, why: str) -> dict[str, Any]:
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise UsageError(f"the doctor could not read the OpenAPI document at {url} ({why}): {exc}; {_HOW}") from None
    if response.status_code != 200:
        raise UsageError(f"your app answered {response.status_code} at {url} ({why}), not an OpenAPI document; {_HOW}")
    try:
        raw = response.json()
    except ValueError:
        raise UsageError(f"what your app serves at {url} ({why}) is not JSON; {_HOW}") from None
    return _checked(raw, url)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        raw = _yaml(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"--openapi {path}: cannot be read as an OpenAPI document: {exc}") from None
    return _checked(raw, str(path))


def _yaml(text: str) -> object:
    import yaml  # schemathesis's dependency, so it is there with the doctor

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def _checked(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("paths", {}), dict):
        raise UsageError(f"{where} is not an OpenAPI document (no 'paths' object); {_HOW}")
    return raw
