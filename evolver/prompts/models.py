"""Shared pieces of the roles' output models: strict objects and bounded one-line texts.

Bounds are checked here rather than in the JSON schema, so every provider accepts the schema
and a reply out of bounds fails to parse (and is retried once with the error).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Output", "bounded", "one_line"]


class Output(BaseModel):
    """Base of every role's reply: no extra keys, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def one_line(value: str, limit: int, what: str) -> str:
    """`value` as one trimmed line of at most `limit` characters; ValueError otherwise."""
    text = " ".join(value.split())
    if not text:
        raise ValueError(f"{what} is empty")
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text)} characters; at most {limit}")
    return text


def bounded(items: list[str], limit: int, line_limit: int, what: str) -> list[str]:
    """At most `limit` non-empty one-line items of at most `line_limit` characters each."""
    if len(items) > limit:
        raise ValueError(f"{what} has {len(items)} items; at most {limit}")
    return [one_line(item, line_limit, f"an item of {what}") for item in items]
