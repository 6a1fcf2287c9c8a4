"""Recognise tool errors that a format signals only in text (`Error: ...`, tracebacks), and cut
long observations so that the end, where a failure shows, is kept."""

from __future__ import annotations

import re

# Matched against the first line of a tool result (case-insensitive), from formats.md B11.
_FIRST_LINE = re.compile(
    r"""^\s*(?:
        (?:error|exception)\b[:\s]
      | traceback\ \(most\ recent\ call\ last\)
      | unknown\ (?:action|tool|function)\b
      | invalid\ (?:argument|parameter|arguments|parameters|request)\b
      | an\ error\ occurred\ while\ running\ the\ tool
      | permission\ denied
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_ANYWHERE = re.compile(
    r"Traceback \(most recent call last\)|\bexit code:? [1-9]\d*\b|\breturncode[=: ]+[1-9]"
    r"|: command not found\b",
    re.IGNORECASE,
)
_JSON_ERROR = re.compile(
    r'^\s*\{\s*"error"\s*:(?!\s*(?:null\b|false\b|""|\{\s*\}|\[\s*\]))', re.IGNORECASE
)


def looks_like_error(result: str | None) -> bool:
    """True when a tool result reads as a failure although no flag says so."""
    if not result:
        return False
    first_line = result.lstrip().split("\n", 1)[0]
    return bool(
        _FIRST_LINE.match(first_line)
        or _JSON_ERROR.match(result)
        or _ANYWHERE.search(result[:2000])
    )


def error_summary(result: str, limit: int = 500) -> str:
    """The part of an error result worth keeping as its error text: the first line, bounded."""
    line = result.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def head_and_tail(text: str, limit: int) -> str:
    """Head and tail of a long observation: the start says what ran, the end how it ended."""
    if len(text) <= limit:
        return text
    head, tail = limit * 4 // 5, limit // 5
    omitted = len(text) - head - tail
    return f"{text[:head]}\n… [{omitted} characters omitted] …\n{text[-tail:]}"
