"""Versioned prompt templates for the LLM roles, and the `Prompt` they produce.

The evolver stays pure: a role turns structured evidence into a `Prompt` (plain data);
`skillforge.llm` sends it and hands back a parsed reply. A template's `VERSION` is part of
the cache key, so editing a template invalidates only that role's cached answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Prompt:
    """One request to a model: who it is for, what to say, and the shape of the answer."""

    role: str  # analyzer | writer | editor | trigger
    version: str  # the template's version, e.g. "writer/3"
    system: str
    user: str  # evidence goes in fenced, labelled blocks and is marked untrusted
    output: type[BaseModel]  # the reply must parse into this model
    max_output_tokens: int = 2048
    cache_key: str = ""  # hash of version + evidence; equal key, equal answer
    skill: str | None = None  # the skill it is about, for per-skill cost lines
    extra: dict[str, Any] = field(default_factory=dict)
