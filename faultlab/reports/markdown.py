"""Text from experiment files and servers, made safe for the Markdown it is written into.

An experiment file is data, but a report is read in a browser (GitHub, an editor's preview): a title such as
``<img src=x onerror=...>`` must show as text, and a backtick or a ``|`` in a path must not end its code span
or its table cell.
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["code_span", "fence", "prose"]

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_BACKTICKS = re.compile(r"`+")


def prose(text: str) -> str:
    """Markdown written by a person (an explanation, a note): its own formatting and code spans are kept,
    but no HTML gets through (``<`` and ``&`` are escaped outside code spans, where they would be markup)."""
    parts, last = [], 0
    for span in _CODE_SPAN.finditer(text):
        parts.append(escape(text[last : span.start()], quote=False))
        parts.append(span.group(0))
        last = span.end()
    parts.append(escape(text[last:], quote=False))
    return "".join(parts)


def _longest_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def code_span(text: str, *, in_table: bool = False) -> str:
    """Literal text in a code span that nothing inside can close (and, in a table, no ``|`` can split)."""
    ticks = "`" * (_longest_run(text) + 1)
    body = text.replace("\n", " ")
    if in_table:
        body = body.replace("|", "\\|")
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{ticks}{pad}{body}{pad}{ticks}"


def fence(text: str, language: str = "") -> list[str]:
    """A fenced block that no line of ``text`` can close."""
    ticks = "`" * max(3, _longest_run(text) + 1)
    return [f"{ticks}{language}", text.rstrip("\n"), ticks]
