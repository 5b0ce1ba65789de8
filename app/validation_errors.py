"""The 422 answer, with only a short excerpt of what was sent.

FastAPI's own 422 echoes each bad input whole: a 100 MB body came back as a 100 MB answer, and a title with
a lone surrogate (``"\\ud800x"``) could not be encoded at all (a 500 instead of the 422).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError

MAX_EXCERPT = 80  # characters of JSON text per bad input


def _excerpt(value: Any) -> Any:
    text = json.dumps(jsonable_encoder(value), ensure_ascii=True)
    return value if len(text) <= MAX_EXCERPT else f"{text[:MAX_EXCERPT]}... ({len(text)} characters)"


async def short_422(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{**error, "input": _excerpt(error["input"])} if "input" in error else error for error in exc.errors()]
    # ensure_ascii: a lone surrogate is written as the escape it came in as, never as invalid UTF-8.
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")
