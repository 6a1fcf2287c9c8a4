"""The trajectory schema: what an agent run looks like once it is inside skillforge.

Every importer maps its source format onto these models, and every evolver stage reads
them. They hold plain data only (no I/O), so `evolver` stays usable on its own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = "1"
SUCCESS_REWARD = 1.0 - 1e-6  # a reward at or above this counts as success (tau-bench's rule)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Model):
    """A piece of conversation: what the user asked, what the assistant said."""

    type: Literal["message"] = "message"
    role: Literal["system", "user", "assistant"]
    text: str


class ToolCall(_Model):
    """One tool call with its result. `error` is true when the call failed."""

    type: Literal["tool_call"] = "tool_call"
    id: str | None = Field(default=None, description="The call id the agent used, if any.")
    name: str = Field(min_length=1, max_length=200)
    arguments: dict[str, Any] | str = Field(
        default_factory=dict,
        description="The arguments as an object; a string when the agent sent something "
        "that is not a JSON object (kept verbatim, it is often the reason the call failed).",
    )
    result: str | None = Field(default=None, description="The tool's output as text.")
    error: bool = False
    error_text: str | None = Field(default=None, description="Why the call failed.")

    @model_validator(mode="after")
    def _error_text_implies_error(self) -> ToolCall:
        if self.error_text and not self.error:
            object.__setattr__(self, "error", True)
        return self


Step = Annotated[Message | ToolCall, Field(discriminator="type")]


class Outcome(_Model):
    """How the run ended. Give `success`, `reward`, or both."""

    success: bool | None = None
    reward: float | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _derive_success(self) -> Outcome:
        if self.success is None and self.reward is not None:
            object.__setattr__(self, "success", self.reward >= SUCCESS_REWARD)
        return self


class LoadedSkill(_Model):
    """A skill the agent had loaded during the run (name, and version if known)."""

    name: str = Field(min_length=1, max_length=200)
    version: str | None = None


class Trajectory(_Model):
    """One agent run: the task, every step in order, the outcome and the skills in use."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique id of the run. If omitted it is derived from a hash of the "
        "record, so the same record sent twice is still stored once.",
    )
    agent: str | None = Field(default=None, description="Which agent (and model) ran it.")
    task: str = Field(description="What the agent was asked to do.")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    steps: list[Step] = Field(default_factory=list)
    outcome: Outcome | None = Field(default=None, description="Absent when not known.")
    skills: list[LoadedSkill] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            data = {**data, "id": content_id(data)}
        return data

    @field_validator("started_at", "ended_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Trajectory:
        """A copy; with new `steps`, its tool calls are worked out afresh."""
        copy = super().model_copy(update=update, deep=deep)
        if update and "steps" in update:
            copy.__dict__.pop("tool_calls", None)
        return copy

    @cached_property
    def tool_calls(self) -> list[ToolCall]:
        """The run's tool calls in order (computed once: every stage asks, many times)."""
        return [s for s in self.steps if isinstance(s, ToolCall)]

    @property
    def succeeded(self) -> bool | None:
        """True, False, or None when the outcome is unknown."""
        return self.outcome.success if self.outcome else None


def content_id(record: Any, prefix: str = "sha256") -> str:
    """A stable id for a record that carries none: a hash of its canonical JSON."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return f"{prefix}:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"
