"""Text from experiment files and servers, made safe for the Markdown it is written into.

An experiment file is data, but a report is read in a browser (GitHub, an editor's preview): a title such as
``<img src=x onerror=...>`` must show as text, and a backtick or a ``|`` in a path must not end its code span
or its table cell.
"""

from __future__ import annotations

import re
from html import escape

__all__ = ["code_span", "fence", "literal", "prose"]

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_BACKTICKS = re.compile(r"`+")
# What Markdown acts on inside a line (block markers such as "- " or "1." only count at a line's start, and
# ``literal`` text never starts one): emphasis, code spans, links and images, HTML, entities, table cells.
_INLINE_MARKUP = re.compile(r"([\\`*_\[\]<>&|~])")


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


def literal(text: str) -> str:
    """Text a server said (an exception's message, a database error), shown as it is, on one line: every
    character Markdown (or HTML inside it) would act on is escaped, so ``[x](http://...)``, ``*`` or a stray
    backtick in a message are text, never a link, emphasis or an unclosed code span."""
    return _INLINE_MARKUP.sub(r"\\\1", " ".join(text.split()))


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
