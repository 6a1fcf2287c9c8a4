"""Recognise tool errors that a format signals only in text (`Error: ...`, tracebacks, a shell's
`x: No such file or directory`), and cut long observations so that the end, where a failure
shows, is kept."""

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


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- shell output: the SWE-agent, mini-swe-agent and ADP importers read failures this way ------

# Commands whose output is file content or search hits: only their first line says they failed.
_VIEWERS = frozenset(
    {"open", "goto", "scroll_up", "scroll_down", "search_dir", "search_file", "find_file",
     "grep", "egrep", "fgrep", "rg", "ag", "cat", "head", "tail", "nl", "less", "more", "sed",
     "awk", "find", "ls", "tree", "git", "diff", "wc", "echo", "printf", "str_replace_editor"}
)  # fmt: skip
_REFUSED = re.compile(
    r"""^\s*(?:
        (?:error|exception|fatal):\s
      | usage:\s
      | your\ proposed\ edit\ has\ introduced\ new\ syntax\ error
      | no\ file\ open\b
      | (?:file|directory)\ .{1,300}?\ not\ found\b
      | no\ replacement\ was\ performed
      | file\ already\ exists\b
      | the\ path\ \S+\ does\ not\ exist
      | invalid\ `?\w+`?\ parameter
      | more\ than\ \d+\ files\ matched
      | execution\ timed\ out
      | your\ bash\ command\ contained\ syntax\ errors
      | interactive\ operation\ .{0,300}?\ is\ not\ supported
      | (?:the\ )?command\ .{0,300}?(?:was\ cancelled|timed\ out)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_SHELL_ERROR = re.compile(
    r"^[^\s:][^\n:]*:(?: [^\n]*?:)? (?:\[Errno \d+\] )?(?:No such file or directory"
    r"|command not found|Permission denied|syntax error\b|cannot \w+|can't open file"
    r"|invalid option|unrecognized option|missing operand|Is a directory|Not a directory"
    r"|unexpected EOF)",
)
_PYTHON_ERROR = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)|Error): .*$", re.MULTILINE)
_SYNTAX_ERROR = re.compile(r"^(?:SyntaxError|IndentationError|TabError): .*$", re.MULTILINE)


def prints_file_content(command: str) -> bool:
    """Whether the command that prints is one whose output is file content or search hits
    (`cd /testbed && grep -rn x .` prints what grep found)."""
    last = re.split(r"&&|;", command.split("\n", 1)[0])[-1].split()
    return bool(last) and last[0] in _VIEWERS


def shell_failure(result: str, *, viewer: bool) -> str | None:
    """Why an observation reads as a failed command, if it does. A shell error is the first
    or the last line: a script's own output may say "x: cannot y" anywhere."""
    text = result.strip()
    if not text:
        return None
    first, last = text.split("\n", 1)[0], text.rsplit("\n", 1)[-1].strip()
    if _REFUSED.match(first):
        return error_summary(text)
    for line in (first,) if viewer else (first, last):
        if _SHELL_ERROR.match(line):
            return error_summary(line)
    if viewer:
        return None
    syntax = _SYNTAX_ERROR.search(text[:4000]) or _SYNTAX_ERROR.search(text[-2000:])
    if syntax:
        return error_summary(syntax.group(0))
    if _PYTHON_ERROR.fullmatch(last):  # an uncaught exception ends the process's output
        return error_summary(last)
    if looks_like_error(text):
        return error_summary(text)
    return None
