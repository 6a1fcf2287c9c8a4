"""Redaction of secrets and personal data, and neutralising of untrusted text for Markdown.

Trajectory text is untrusted: everything quoted into a skill goes through `redact` (so no
credential or PII reaches the library) and `sanitize_inline` (so it cannot inject Markdown,
HTML or the managed-block markers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["redact", "sanitize_inline", "placeholder"]

_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z-]+\]")


def placeholder(kind: str) -> str:
    """The text that stands in for a redacted value of `kind`."""
    return f"[REDACTED:{kind}]"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits) and len(set(digits)) > 1:
        return placeholder("card")
    return match.group(0)


def _intl_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return placeholder("phone") if 8 <= len(digits) <= 15 else match.group(0)


def _assignment(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in "\"'" else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{placeholder('secret')}{quote}"


_SECRET_WORDS = (
    r"password|passwd|passphrase|pwd|secret|secret[_-]?key|secret[_-]?access[_-]?key|token"
    r"|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret"
    r"|credentials?"
)
_NOT_PLACEHOLDER = r"(?!\[REDACTED:)"

# Order matters: whole blocks and specific token formats first, generic shapes last.
_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        placeholder("private-key"),
    ),
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20}://)[^\s:/@?#]+:[^\s@/?#]*@"),
        r"\1" + placeholder("credentials") + "@",
    ),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{16,}"), placeholder("anthropic-key")),
    (re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), placeholder("openai-key")),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), placeholder("aws-key")),
    (re.compile(r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{20,}\b"), placeholder("github-token")),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), placeholder("github-token")),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), placeholder("slack-token")),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), placeholder("google-key")),
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        placeholder("jwt"),
    ),
    (
        re.compile(r"(?i)\b(bearer)\s+" + _NOT_PLACEHOLDER + r"[A-Za-z0-9._~+/=-]{8,}"),
        r"\1 " + placeholder("token"),
    ),
    (
        re.compile(
            r"(?i)(?P<key>(?<![a-z0-9])(?:[a-z0-9]+[_.-])*(?:" + _SECRET_WORDS + r")"
            r"(?![a-z0-9])[\"']?)(?P<sep>\s*[:=]\s*)" + _NOT_PLACEHOLDER
            + r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&}\])]+)"
        ),
        _assignment,
    ),
    (
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        placeholder("email"),
    ),
    (re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-])"), _card),
    (
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])"),
        _intl_phone,
    ),
    (
        re.compile(
            r"(?<![\w.-])(?:1[ .-])?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
        ),
        placeholder("phone"),
    ),
]


def redact(text: str) -> str:
    """Replace API keys, tokens, credentials, emails, phone and card numbers with placeholders."""
    if not text:
        return text
    return _redact(text) if len(text) <= _CACHED_UP_TO else _apply(text)


_CACHED_UP_TO = 4096  # runs repeat the same short texts (tool names, errors) many times


@lru_cache(maxsize=1 << 16)
def _redact(text: str) -> str:
    return _apply(text)


def _apply(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_DROP = str.maketrans("", "", "`<>|")


def sanitize_inline(text: str, limit: int = 160) -> str:
    """Redact, then make untrusted text one safe Markdown line of at most `limit` characters."""
    if not text:
        return ""
    return _sanitize(text, limit) if len(text) <= _CACHED_UP_TO else _sanitize_text(text, limit)


@lru_cache(maxsize=1 << 16)
def _sanitize(text: str, limit: int) -> str:
    return _sanitize_text(text, limit)


def _sanitize_text(text: str, limit: int) -> str:
    text = redact(text)
    text = _CONTROL.sub(" ", text).translate(_DROP)
    text = " ".join(text.split())
    text = text.lstrip("#").lstrip()
    text = text.replace("](", "] (").replace("![", "! [").replace("\\", "/")
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text
