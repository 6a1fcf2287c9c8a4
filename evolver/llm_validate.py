"""The gate between a model's answer and the library: reject what the evidence does not support.

A model's text is rejected (not flagged) when it adds a URL, a shell command or a tool no
successful run used, injection phrasing, a secret or personal data, or HTML; when it changes
the frontmatter name or a person's text; or when the SKILL.md would fail the Agent Skills
check. Each check returns reasons; an empty list means the text may be committed.
`looks_injected` (from `evolver.markup`) is the one detector of such text in quotes from runs.
Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from evolver.markup import INSTRUCTION, looks_injected
from evolver.model import Trajectory
from evolver.redact import redact
from evolver.skilldoc import find_managed_block, is_managed, parse, problems, split

__all__ = [
    "commands_seen",
    "looks_injected",
    "validate_analysis",
    "validate_skill",
    "validate_text",
]

_URL = re.compile(
    r"(?i)\b(?:https?|ftp|file|data|javascript|ssh|git)://[^\s)\]>\"'`]+"
    r"|\bwww\.[^\s)\]>\"'`]+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|sh|ru|cn|xyz|info|biz|co|me|app|ai|gg|tk|top|"
    r"ly|to|site|online)\b(?:/[^\s)\]>\"'`]*)?"
)
_INJECTION = INSTRUCTION  # the same overrides a quote from a run may not hold
_HTML = re.compile(r"(?i)<\s*/?\s*[a-z!][^>]*>|javascript:|\bon(?:error|load|click)\s*=")
_CODE_BLOCK = re.compile(r"^(```+|~~~+)[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
_SHELL_WORDS = (
    r"curl|wget|bash|sh|zsh|sudo|rm|chmod|chown|nc|ncat|netcat|powershell|pwsh|iex|iwr|"
    r"python3?|pip3?|npm|npx|node|ssh|scp|docker|kubectl|apt(?:-get)?|brew|base64|dd|mkfs|"
    r"eval|exec|source|export|git|Invoke-\w+"
)
_SHELL_START = re.compile(rf"^\s*(?:\$\s+)?(?:{_SHELL_WORDS})(?:\s|$)")
_SHELL_ANYWHERE = re.compile(
    r"(?i)\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|\b(?:curl|wget)\s+\S|\brm\s+-[rf]+\b|\bsudo\s+\S"
    r"|\bchmod\s+[+0-7]|\bbase64\s+-d|\bos\.system\b|\bsubprocess\.|\beval\s*\(|\bexec\s*\("
    r"|\$\([^)]*\)|&&\s*\S|\bInvoke-(?:Expression|WebRequest)\b"
)
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def commands_seen(runs: Iterable[Trajectory]) -> frozenset[str]:
    """Tool names and string arguments (redacted) that successful runs passed to their tools:
    the only commands a model may repeat."""
    out: set[str] = set()
    for run in runs:
        if run.succeeded is not True:
            continue
        for call in run.tool_calls:
            out.add(redact(call.name))
            args = call.arguments if isinstance(call.arguments, dict) else {"": call.arguments}
            out.update(redact(v) for v in _strings(args))
    return frozenset(out)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _seen(snippet: str, allowed: str, commands: Collection[str]) -> bool:
    snippet = snippet.strip().strip("`").strip()
    if snippet.startswith("$ "):
        snippet = snippet[2:].strip()
    return not snippet or snippet in allowed or any(snippet in c for c in commands)


def validate_text(text: str, *, allowed: str, commands: Collection[str] = ()) -> list[str]:
    """Reasons to reject model-written `text`; parts already in `allowed` (the evidence and
    the current skill) are never held against it."""
    reasons: list[str] = []
    for url in _URL.findall(text):
        url = url.rstrip(".,;:!?")
        if url not in allowed:
            reasons.append(f"adds a URL the evidence does not show: {url}")
    fresh = [line for line in text.splitlines() if line.strip() and line.strip() not in allowed]
    for body in (m.group(2) for m in _CODE_BLOCK.finditer(text)):
        for line in body.splitlines():
            if not _seen(line, allowed, commands):
                reasons.append(f"a code block command no successful run used: {line.strip()}")
    for line in fresh:
        found = _INJECTION.search(line)
        if found:
            reasons.append(f"instruction-like text: {found.group(0)!r}")
        if _HTML.search(line):
            reasons.append(f"HTML or script in: {line.strip()[:80]!r}")
        if redact(line) != line:
            reasons.append(f"a secret or personal data in: {redact(line).strip()[:80]!r}")
        spans = _INLINE.findall(line)
        prose = _INLINE.sub(" ", line).strip()
        shell = [s for s in spans if _SHELL_START.match(s) or _SHELL_ANYWHERE.search(s)]
        if _SHELL_ANYWHERE.search(prose) or (prose.startswith("$ ") and _SHELL_START.match(prose)):
            shell.append(prose)
        for snippet in shell:
            if not _seen(snippet, allowed, commands):
                reasons.append(f"a shell command no successful run used: {snippet.strip()[:80]}")
        for span in spans:
            if _SNAKE.match(span) and span not in allowed:
                reasons.append(f"names a tool or argument the evidence does not show: {span}")
    return list(dict.fromkeys(reasons))


def _outside(body: str) -> tuple[str, str]:
    """The person's part of a body: text before and after the managed block."""
    span = find_managed_block(body)
    if span is None:
        return body.rstrip(), ""
    return body[: span[0]].rstrip(), body[span[1] :].strip()


def _person_frontmatter(fm: dict[str, Any]) -> dict[str, Any]:
    meta = fm.get("metadata") if isinstance(fm.get("metadata"), dict) else {}
    kept = {k: v for k, v in fm.items() if k not in ("description", "metadata")}
    kept["metadata"] = {k: v for k, v in meta.items() if not str(k).startswith("skillforge.")}
    return kept


def validate_skill(
    text: str,
    skill: str,
    *,
    base: str | None,
    allowed: str,
    commands: Collection[str] = (),
) -> list[str]:
    """Reasons to reject `text` as the new SKILL.md of `skill` ([] = commit it).

    `base` is the skill now in the library (None for a new one): its frontmatter name, its
    person-written frontmatter and every word outside the managed block must survive; a
    person's skill keeps its frontmatter byte for byte."""
    reasons = [f"fails the Agent Skills check: {p}" for p in problems(text, skill)]
    try:
        fm, body = parse(text)
        if find_managed_block(body) is None:
            reasons.append("has no skillforge managed block")
    except ValueError as exc:
        return [*reasons, f"does not parse: {exc}"]
    if fm.get("name") != skill:
        reasons.append(f"changes the frontmatter name to {fm.get('name')!r}")
    if base is not None:
        base_fm, base_body = parse(base)
        if base_fm.get("name") != fm.get("name"):
            reasons.append("changes the frontmatter name")
        if not is_managed(base_fm) and split(base.replace("\r\n", "\n"))[0] != split(text)[0]:
            reasons.append("changes a person-written skill's frontmatter")
        elif _person_frontmatter(base_fm) != _person_frontmatter(fm):
            reasons.append("changes frontmatter a person wrote")
        try:
            if _outside(base_body) != _outside(body):
                reasons.append("changes or removes person-written text outside the managed block")
        except ValueError as exc:
            reasons.append(f"the current skill's markers are malformed: {exc}")
    description = str(fm.get("description", ""))
    reasons += [
        f"description: {r}" for r in validate_text(description, allowed=allowed, commands=commands)
    ]
    reasons += validate_text(body, allowed=allowed + (base or ""), commands=commands)
    return list(dict.fromkeys(reasons))


def validate_analysis(
    patterns: Sequence[Any], *, failures: int, tools: Collection[str], allowed: str
) -> list[str]:
    """Reasons to reject an analyzer's patterns: counts beyond the failed runs, tools no run
    called, or text `validate_text` rejects."""
    reasons = []
    for p in patterns:
        if p.failed_runs > failures:
            reasons.append(f"{p.pattern!r} claims {p.failed_runs} failed runs of {failures}")
        unknown = sorted(set(p.tools) - set(tools))
        if unknown:
            reasons.append(f"{p.pattern!r} names tools no run called: {', '.join(unknown)}")
        text = "\n".join([p.pattern, p.cause, p.advice])
        reasons += validate_text(text, allowed=allowed)
    return list(dict.fromkeys(reasons))
