"""Redaction of secrets and personal data, and neutralising of untrusted text for Markdown.

Trajectory text is untrusted: everything quoted into a skill goes through `redact` (so no
credential or PII reaches the library) and `sanitize_inline` (so it cannot inject Markdown,
HTML or the managed-block markers).
"""

from __future__ import annotations

import base64
import math
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


def _iban(match: re.Match[str]) -> str:
    """An IBAN when its mod-97 check holds; a spaced one may have run on into the next words."""
    text = match.group(0)
    candidate = text
    while True:
        compact = candidate.replace(" ", "")
        if 15 <= len(compact) <= 34 and _mod97(compact[4:] + compact[:4]) == 1:
            return placeholder("iban") + text[len(candidate) :]
        if " " not in candidate or len(compact) < 15:
            return text
        candidate = candidate.rsplit(" ", 1)[0]


def _mod97(text: str) -> int:
    return int("".join(str(int(ch, 36)) for ch in text)) % 97


def _basic_auth(match: re.Match[str]) -> str:
    """`Basic <base64>` after an Authorization header, or whose value decodes to `user:pass`."""
    value = match.group("value")
    before = match.string[max(0, match.start() - 40) : match.start()].lower()
    if "authoriz" in before or ":" in _b64_text(value):
        return f"{match.group(1)} {placeholder('basic-auth')}"
    return match.group(0)


def _b64_text(value: str) -> str:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""


def _aws_secret(match: re.Match[str]) -> str:
    """A bare 40-character AWS secret access key: base64 noise, not a hex sha or a word run."""
    text = match.group(0)
    mixed = any(c.isupper() for c in text) and any(c.islower() for c in text)
    noisy = any(c.isdigit() or c in "+/" for c in text) and text.count("/") <= 3
    if mixed and noisy and _entropy(text) >= 4.0:
        return placeholder("aws-secret")
    return text


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character (a random 40-char base64 key has about 4.7)."""
    counts = [text.count(c) for c in set(text)]
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts)


_SECRET_WORDS = (
    r"password|passwd|passphrase|pwd|secret|secret[_-]?key|secret[_-]?access[_-]?key|token"
    r"|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret"
    r"|credentials?"
)
_NOT_PLACEHOLDER = r"(?!\[REDACTED:)"
_START = r"(?<![A-Za-z0-9])"  # a token may follow `_` (a tool named `get_ghp_...`), not a letter
_AFTER_WORD = r"(?<![\w.])(?<!\d-)"  # a number may follow `word-` (a slug), not `123-`

# Token formats known by their prefix, in one pass (a regex each cost a pass over every text).
# Alternatives are tried in order: `sk-ant-` before `sk-`.
_TOKEN_FORMATS = {
    "anthropic-key": r"sk-ant-[A-Za-z0-9_-]{16,}",
    "openai-key": r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    "stripe-key": r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,}",
    "aws-key": r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])",
    "github-token": r"(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}",
    "gitlab-token": r"gl(?:pat|dt|rt|ptt|soat|cbt|ft|imt|oas|agent)-[A-Za-z0-9_-]{20,}",
    "huggingface-token": r"hf_[A-Za-z0-9]{30,}",
    "slack-token": r"xox[abprs]-[A-Za-z0-9-]{10,}",
    "google-key": r"AIza[0-9A-Za-z_-]{30,}",
    "jwt": r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
}
_TOKENS = re.compile(
    _START
    + "(?:"
    + "|".join(f"(?P<{kind.replace('-', '_')}>{p})" for kind, p in _TOKEN_FORMATS.items())
    + ")"
)


def _token(match: re.Match[str]) -> str:
    return placeholder((match.lastgroup or "token").replace("_", "-"))


# Order matters: whole blocks and specific token formats first, generic shapes last (an IBAN
# before card numbers, an SSN before phone numbers, a named token before the bare AWS secret).
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
    (_TOKENS, _token),
    (
        re.compile(r"(?i)\b(bearer)\s+" + _NOT_PLACEHOLDER + r"[A-Za-z0-9._~+/=-]{8,}"),
        r"\1 " + placeholder("token"),
    ),
    (
        re.compile(
            r"(?i)\b(basic)\s+" + _NOT_PLACEHOLDER + r"(?P<value>[A-Za-z0-9+/]{6,}={0,2})"
            r"(?![A-Za-z0-9+/=])"
        ),
        _basic_auth,
    ),
    # A `/` may end a key (`KEY/3`, `path/KEY/x`) as well as sit inside one.
    (re.compile(r"(?<![A-Za-z0-9+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9+])"), _aws_secret),
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
    (
        re.compile(
            r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}"
            r"(?: [A-Z0-9]{1,4})?)(?![A-Za-z0-9])"
        ),
        _iban,
    ),
    (
        # US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000.
        re.compile(
            _AFTER_WORD + r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"
        ),
        placeholder("ssn"),
    ),
    (
        re.compile(
            r"(?i)\b(ssn|social security(?: number| no\.?)?)(\s*[:#=]?\s*)"
            r"(?!000|666|9\d\d)\d{3}([ .]?)(?!00)\d{2}\3(?!0000)\d{4}(?![\w-])"
        ),
        r"\1\2" + placeholder("ssn"),
    ),
    (re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-])"), _card),
    (
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])"),
        _intl_phone,
    ),
    (
        re.compile(
            _AFTER_WORD + r"(?:1[ .-])?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
        ),
        placeholder("phone"),
    ),
]


def redact(text: str) -> str:
    """Replace keys, tokens, credentials and personal data (email, phone, card, SSN, IBAN)."""
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
