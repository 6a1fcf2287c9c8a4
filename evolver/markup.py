"""Untrusted text on its way out: the detector of text that reads as instructions, and the one
Markdown escape for everything quoted from runs.

Trajectory text (errors, results, argument values, requests, run ids, tool names) is written
by agents, tools and users, any of which may be hostile. `looks_injected` tells text that
reads as instructions to an agent, a shell command, a link, markup or a role tag from an
ordinary message ("Error: order is shipped", "KeyError: 'x'"); such text is never quoted into a
skill, a commit message, a proposal or an LLM request: `withheld` stands in for it. `inline` is
the one escape for untrusted text in Markdown prose (`code` in a code span): redacted, one
line, length-capped, no HTML, link, image, heading, list marker, table break or backtick. Pure.
"""

from __future__ import annotations

import re
from functools import lru_cache

from evolver.redact import sanitize_inline

__all__ = [
    "INSTRUCTION",
    "code",
    "injected_spans",
    "inline",
    "lines",
    "looks_injected",
    "quote",
    "strip_injected",
    "withheld",
]

# Overrides of an agent's instructions, role-play and exfiltration: what a skill, a model's
# answer or a quote may never say (llm_validate rejects a model's line holding one too).
INSTRUCTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget|disobey)\b[^.\n]{0,40}?"
    r"\b(?:previous|prior|above|earlier|preceding|all|any|your|the|these|those|other|system"
    r"|original|existing)\b[^.\n]{0,20}?"
    r"\b(?:instructions?|prompts?|rules|guidelines|directions?|directives?|messages?"
    r"|polic(?:y|ies)|guardrails|safeguards)\b"
    r"|\b(?:override|bypass|circumvent)\b[^.\n]{0,40}?"
    r"\b(?:previous|prior|above|earlier|preceding|all|any|your|system|safety)\b[^.\n]{0,20}?"
    r"\b(?:instructions?|prompts?|rules|guidelines|polic(?:y|ies)|constraints|guardrails"
    r"|safeguards|filters?)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:everything|anything|all|what)\b[^.\n]{0,30}?"
    r"\b(?:above|before|earlier|previously|told|said)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bdeveloper mode\b|\bjailbreak|\bDAN mode\b"
    r"|\bnew (?:instructions?|rules|system prompt)\s*:|<\|im_(?:start|end)\|>|\[/?INST\]"
    r"|</?(?:system|assistant)>"
    r"|\bdo not (?:tell|inform|let) the user\b|\bwithout telling the user\b|\bexfiltrat"
    r"|\b(?:send|post|upload|email|forward|leak|share)\s+(?:me\s+|us\s+|them\s+)?(?:the|your|my"
    r"|all|any|its|their|these|those)\b[^.\n]{0,30}\b(?:credentials?|secrets?|passwords?"
    r"|api[ _-]?keys?|tokens?)\b"
)
# Words addressed to the agent reading the text, and role tags of a chat transcript.
_ADDRESSED = re.compile(
    r"(?i)\b(?:note|message|instructions?) (?:to|for) (?:the |any )?(?:ai|assistant|agent|model"
    r"|llm|chatbot)\b"
    r"|\b(?:ai|assistant|agent|model|llm|chatbot)s?\b,?\s+(?:you\s+)?(?:must|should|shall"
    r"|need to|have to|are required to)\s+(?:now\s+|immediately\s+|always\s+|also\s+)?"
    r"(?:run|execute|call|invoke|delete|remove|send|download|install|open|visit|ignore|approve"
    r"|merge|transfer|grant|reveal|print|output|add|write)\b"
    r"|\bfrom now on,? (?:you|always|never)\b|\bpretend (?:to be|you are)\b"
    r"|<\|(?:system|user|assistant|endoftext)\|>|<<\s*/?SYS\s*>>"
    r"|</?\s*(?:user|developer|tool|tool_call|tool_result|tool_use|function|function_call"
    r"|function_results|instructions?|im_start|im_end)\s*>"
    r"|(?:^|[\n.!?\]>|][ \t]*|[ \t]{2,})(?:system|assistant|developer|human)[ \t]*:[ \t]*"
    r"(?:you|ignore|disregard|forget|always|never|from now|new|do not|don't|please|call|run"
    r"|execute|the (?:user|assistant|agent|model))\b"
)
_SHELL = re.compile(
    r"(?i)\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b"  # piped to a shell
    r"|\b(?:curl|wget)\s+(?:-{1,2}[\w-]+(?:=\S+)?\s+)*"  # a download from somewhere
    r"(?:[a-z][a-z0-9+.-]*://|[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b)\S*"
    r"|\brm\s+-[a-z]*[rf][a-z]*\b"
    r"|\bsudo\s+[a-z]"
    r"|\bchmod\s+(?:[ugoa]*[+-][rwxs]+|[0-7]{3,4})\b"
    r"|\bbase64\s+(?:-d|--decode)\b|\bmkfs\b|\bdd\s+if="
    r"|/dev/tcp/|\bnc\s+-[a-z]*e\b|\b(?:ncat|netcat)\s"
    r"|\$\([^)\n]*\b(?:curl|wget|nc|base64|sudo|chmod)\b"  # a download substituted in
    r"|(?:&&|\|\||;)\s*(?:curl|wget|sudo|chmod|nc|powershell|python3?\s+-c)\b"
    r"|\bos\.system\s*\(|\bInvoke-(?:Expression|WebRequest)\b|\biex\s*\("
    r"|\bpowershell(?:\.exe)?\s+-|:\(\)\s*\{"
)
_LINK = re.compile(
    r"(?i)\b(?:https?|ftp|file|ssh|git|s3|gs)://\S+|\b(?:javascript|vbscript)\s*:"
    r"|\bdata:[a-z]+/[a-z0-9.+-]+[;,]"
    r"|\bwww\.[a-z0-9-]+\.[a-z]{2,}\S*"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|sh|ru|cn|xyz|info|biz|co|me|app|ai|gg|tk|top"
    r"|ly|to|site|online|club|live|pw|cc|su|ws|zip|example|test|invalid|local|onion)/\S*"
    # a host and a path: evil.example/x.sh, not numpy.libs/x.so
)
_MARKUP = re.compile(
    r"(?i)<\s*/?\s*(?:script|img|iframe|a|svg|object|embed|style|link|meta|form|input|button"
    r"|body|html|head|details|summary|div|span|p|br|hr|table|tr|td|th|h[1-6]|b|i|u|em|strong"
    r"|code|pre|blockquote|ul|ol|li|video|audio|source|base|frame|frameset|marquee|math"
    r"|template|textarea|select|option)\b[^>\n]*>"
    r"|<!--|\bon(?:error|load|click|mouseover|focus|blur|submit|change|input|key\w+)\s*="
    r"|!?\[[^\]\n]{0,200}\]\([^)\n]*\)"  # a Markdown link or image
    r"|\bskillforge:(?:begin|end)\b"
)
_DETECTORS = (INSTRUCTION, _ADDRESSED, _SHELL, _LINK, _MARKUP)
_CACHED_UP_TO = 4096


def looks_injected(text: str) -> bool:
    """Whether untrusted text reads as instructions to an agent, a shell command, a link, markup
    or a chat role tag: such text is never quoted (`withheld` stands in for it)."""
    if not text:
        return False
    if len(text) <= _CACHED_UP_TO:
        return _looks_injected(text)
    return any(d.search(text) for d in _DETECTORS)


@lru_cache(maxsize=1 << 16)  # runs repeat the same errors and requests
def _looks_injected(text: str) -> bool:
    return any(d.search(text) for d in _DETECTORS)


@lru_cache(maxsize=1 << 14)
def injected_spans(text: str) -> tuple[str, ...]:
    """The parts of `text` that `looks_injected` finds, in order (none for ordinary text)."""
    found = sorted((m.start(), m.end()) for d in _DETECTORS for m in d.finditer(text or ""))
    return tuple(text[a:b] for a, b in found if b > a)


def strip_injected(text: str) -> str:
    """`text` without the parts that read as instructions, commands, links or markup."""
    for span in sorted(injected_spans(text), key=len, reverse=True):
        text = text.replace(span, " ")
    return " ".join(text.split()) if text.strip() else ""


def withheld(what: str = "error text") -> str:
    """The neutral words that stand in for untrusted text of kind `what` that reads as
    instructions: "an error text withheld: it reads as instructions"."""
    article = "an" if what[:1].lower() in "aeiou" else "a"
    return f"{article} {what} withheld: it reads as instructions"


def quote(text: str, what: str = "error text", limit: int = 120) -> str:
    """Untrusted text made one inert line to quote, or the `withheld` stand-in when it (or
    its redacted, one-line form) reads as instructions."""
    flat = _flat(text, limit)
    if looks_injected(text) or looks_injected(flat):
        return withheld(what)
    return flat


# --- the escape -------------------------------------------------------------------------------

_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])://|\bwww\.")
_BULLET = re.compile(r"^(?:[-+*=>](?=\s|$)|\[)")  # a list, quote or link definition
_NUMBERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_UNSAFE = str.maketrans({"`": None, "<": None, ">": None, "|": None, "\n": " ", "\r": " "})


def _flat(text: str, limit: int) -> str:
    """Redacted, one line, no `<`, `>`, `|` or backtick, no leading `#` (whatever
    `sanitize_inline` does besides)."""
    flat = sanitize_inline(text, limit).translate(_UNSAFE)
    return " ".join(flat.split()).lstrip("#").lstrip()


def _defang(match: re.Match[str]) -> str:
    return ":/ /" if match.group(0) == "://" else match.group(0)[:3] + " ."


def inline(text: str, limit: int = 160) -> str:
    """Untrusted text as one inert line of Markdown prose: redacted, no raw HTML (no `<` or
    `>`), no link, image or autolink, no heading or list marker at its start, no newline, `|`
    or backtick, at most `limit` characters before escaping."""
    flat = _AUTOLINK.sub(_defang, _flat(text, limit))  # `](` and `![` are broken already
    flat = flat.replace("][", "\\]\\[")  # no reference link
    flat = _BULLET.sub(lambda m: "\\" + m.group(0), flat)
    return _NUMBERED.sub(lambda m: m.group(1) + "\\" + m.group(2), flat)


def code(text: str, limit: int = 80) -> str:
    """Untrusted text as a Markdown code span: inert inside it, one line, no backtick or `|`
    (which would end the span or a table cell), no URL a lax renderer could link; `?` when
    nothing is left."""
    return f"`{_AUTOLINK.sub(_defang, _flat(text, limit)) or '?'}`"


_OWN_BULLET = re.compile(r"^- (?=\S)")


def lines(text: str, limit: int = 2000) -> str:
    """A paragraph of several lines, each escaped as `inline` (a leading "- " bullet, as in
    reviewers' feedback, stays a bullet); blank lines stay blank."""
    out = []
    for line in text.splitlines():
        bullet = _OWN_BULLET.match(line)
        body = inline(line[2:] if bullet else line, limit) if line.strip() else ""
        out.append(f"- {body}" if bullet else body)
    return "\n".join(out)
