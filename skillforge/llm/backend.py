"""What every provider backend offers the client: send one structured request, get a `Reply`.

Backends translate their SDK's exceptions into `LLMUnavailableError` (the API failed hard,
after the SDK's own retries with backoff) or `LLMRequestRejected` (this request was refused),
so the client handles two cases whatever the provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from evolver.redact import sanitize_inline

from ..errors import LLMRequestRejected, LLMUnavailableError


@dataclass(frozen=True)
class Reply:
    """A model's answer before validation: the JSON object it gave, or why there is none."""

    data: Any  # the decoded JSON value, or None
    text: str  # the raw text or tool input, for the parse-retry message
    input_tokens: int | None  # None when the server did not report usage
    output_tokens: int | None
    problem: str = ""  # "" when `data` is usable; else "cut at max_tokens", "refused: ..."


class Backend(Protocol):
    provider: str
    model: str

    def send(
        self, system: str, user: str, *, name: str, schema: dict[str, Any], max_tokens: int
    ) -> Reply:
        """Send one request whose answer must match `schema`; raise an `LLMError` on failure."""
        ...

    def adapt(self, error: LLMRequestRejected) -> bool:
        """Change how requests are made after a refusal; False when there is nothing to try."""
        ...

    def close(self) -> None:
        """Close the SDK's connection pool."""
        ...


TIMED_OUT = "timed out"  # in the message of an `LLMUnavailableError` for a timeout


# Statuses that will not get better by asking again within this cycle.
_HARD = {401, 402, 403, 404}


def translate(status: int | None, message: str, attempts: int) -> Exception:
    """Map an SDK failure (already retried by the SDK) onto the skillforge error tree; the
    server's message is untrusted text, so it is redacted and made inline-safe."""
    message = sanitize_inline(message, 300)  # it ends up in proposals: one safe Markdown line
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    if status is None:
        return LLMUnavailableError(f"API unavailable: {message} ({tries})")
    if status in (400, 413, 422):
        return LLMRequestRejected(f"request rejected: {status} {message}")
    if status in _HARD:
        return LLMUnavailableError(f"API unavailable: {status} {message}")
    return LLMUnavailableError(f"API unavailable: {status} {message} ({tries})")


def schema_instruction(name: str, schema: dict[str, Any]) -> str:
    """The text that asks for JSON when a server cannot enforce a schema itself."""
    return (
        f"\n\nReply with only one JSON object (the `{name}` output), no prose and no code fence,"
        f" valid against this JSON Schema:\n{json.dumps(schema, sort_keys=True)}"
    )
