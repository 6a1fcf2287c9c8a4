"""The trajectory schema: what an agent run looks like once it is inside skillforge.

Every importer maps its source format onto these models, and every evolver stage reads
them. They hold plain data only (no I/O), so `evolver` stays usable on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evolver.redact import redact
from evolver.skilldoc import MAX_NAME, NAME_RE

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


# -- names from untrusted records --------------------------------------------------------------
# A run id, a loaded skill's name and version and a tool's name travel where trajectory text
# never goes unredacted: commit messages, proposals, store tables, file and graph labels. So
# each is made safe once, where a record becomes a trajectory (`with_safe_names`).

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]*")  # no spaces, markup, quotes or `@`
_LONG_NUMBER = re.compile(r"\d(?:-?\d){8,}")
_SAFE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def digest_id(text: str, prefix: str) -> str:
    """`prefix-` and 32 hex of the text's sha256: stable, so a re-sent record keeps its id."""
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def safe_run_id(raw: str) -> str:
    """The run id as given when it is plain and holds no secret; else a stable digest of it."""
    if SAFE_ID.fullmatch(raw) and redact(raw) == raw:
        return raw
    return digest_id(raw, "run")


def safe_skill(skill: LoadedSkill) -> LoadedSkill | None:
    """The loaded skill when its name is a valid skill name holding no secret, else None (no
    library skill can have that name); a version that is not plain text is dropped."""
    name, version = skill.name, skill.version
    if len(name) > MAX_NAME or not NAME_RE.match(name) or redact(name) != name:
        return None
    if _LONG_NUMBER.search(name):  # a card, phone or SSN spelt as a slug; never a skill's name
        return None
    if version is not None and (not _SAFE_VERSION.fullmatch(version) or redact(version) != version):
        return skill.model_copy(update={"version": None})
    return skill


def safe_tool_name(name: str) -> str:
    """The tool's name, or a stable `tool-<digest>` stand-in when it holds a secret."""
    return name if redact(name) == name else digest_id(name, "tool")[:17]


def with_safe_names(run: Trajectory) -> Trajectory:
    """The run with its id, loaded skills, tool names and call ids made safe (itself if they
    already are), so no secret in them reaches a commit, a proposal, a table or a label."""
    update: dict[str, Any] = {}
    run_id = safe_run_id(run.id)
    if run_id != run.id:
        update["id"] = run_id
    skills = [s for s in map(safe_skill, run.skills) if s is not None]
    if skills != run.skills:
        update["skills"] = skills
    if any(_safe_step(call) is not call for call in run.tool_calls):  # messages need nothing
        update["steps"] = [_safe_step(step) for step in run.steps]
    return run.model_copy(update=update) if update else run


def _safe_step(step: Message | ToolCall) -> Message | ToolCall:
    if not isinstance(step, ToolCall):
        return step
    name = safe_tool_name(step.name)
    call_id = step.id
    if call_id is not None and redact(call_id) != call_id:
        call_id = digest_id(call_id, "call")
    if name == step.name and call_id == step.id:
        return step
    return step.model_copy(update={"name": name, "id": call_id})
