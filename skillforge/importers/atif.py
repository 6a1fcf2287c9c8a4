"""Harbor ATIF trajectories (Agent Trajectory Interchange Format, `schema_version` "ATIF-v1.x").

Harbor writes one per trial at `<trial>/agent/trajectory.json` (and, when an agent's context
was summarised, `trajectory.cont-N.json` segments and `trajectory.summarization-*.json`
subagent runs beside it). A trajectory is `{schema_version, session_id, trajectory_id?, agent:
{name, version, model_name}, steps, final_metrics, subagent_trajectories?}`; each step has a
`source` (system, user, agent), a `message` (a string or text/image parts) and, on agent
steps, `tool_calls` [{tool_call_id, function_name, arguments}] with their results in
`observation.results` [{source_call_id, content}]:

    the first user step          the task; later user steps are user messages
    an agent step's message      an assistant message, then its calls
    a result                     the result of the call with its source_call_id (else of the
                                 step's first unanswered call); no flag: a failure by its text

As in ADP records (`adp.py`), harness rules the agent answers with "Ok." are a system message
and the next user step is the task; an AgentBench OS user step "Now, I will start a new
problem ..." leaves out the solved example before it; `generic_tool` is a call of `tool_name`.

Steps copied from an earlier segment (`is_copied_context`) are left out, so a continuation
holds only its own calls. Embedded `subagent_trajectories` are not merged: their count is in
metadata. ATIF has no outcome: `records_in_document` attaches the trial's reward from the
Harbor `result.json` beside the run (`verifier_result.rewards.reward`, in the trial folder, the
parent of `agent/`) to the trial's own trajectory and its continuations, not to the subagent
runs beside them. A trajectory that ADP converted from its own records keeps their `details`
in `extra.adp_details`, read as the ADP importer reads them. Else the outcome is None.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .adp import (
    RunBuilder,
    details_outcome,
    restarted_task,
    result_error,
    tool_call,
)
from .errortext import head_and_tail
from .swe_agent import SAFE_ID_PART

FORMAT = "atif"
MAX_RESULT_CHARS = 10_000
MAX_TRIAL_RESULT_BYTES = 32 << 20  # result.json can hold the agent's whole message log
TRIAL_RESULT = "result.json"
_SEGMENT = re.compile(r"trajectory\.(.+)\.json")  # trajectory.cont-1.json -> cont-1
_ATTACHED = ("harbor_trial", "atif_segment")  # what atif_records adds to a record
_SOURCES = ("system", "user", "agent")


def is_atif_record(record: dict[str, Any]) -> bool:
    """An ATIF trajectory: a `schema_version` starting with "ATIF"."""
    version = record.get("schema_version")
    return isinstance(version, str) and version.startswith("ATIF")


def atif_records(record: dict[str, Any], source_name: str | None = None) -> list[dict[str, Any]]:
    """The trajectory of a file, with its segment and, for the trial's own trajectory and its
    continuations, the Harbor trial result beside it."""
    if not source_name:
        return [record]
    path = Path(source_name)
    attached: dict[str, Any] = {}
    segment = _SEGMENT.fullmatch(path.name)
    if segment:
        attached["atif_segment"] = segment[1]
    if segment is None or segment[1].startswith("cont-"):  # not a subagent's run
        trial = trial_result(path)
        if trial is not None:
            attached["harbor_trial"] = trial
    return [{**record, **attached}]


def trial_result(path: Path) -> dict[str, Any] | None:
    """The task, trial, reward and exception of the Harbor `result.json` beside a trajectory
    (in its folder, or the trial folder above `agent/`), or None when there is none."""
    folders = [path.parent]
    if path.parent.name == "agent":
        folders.append(path.parent.parent)
    for folder in folders:
        found = _read_trial(folder / TRIAL_RESULT)
        if found is not None:
            return found
    return None


def from_atif_record(record: dict[str, Any]) -> Trajectory:
    """One ATIF trajectory: its agent's calls with their results; the trial's reward if known."""
    given = record.get("steps")
    if not isinstance(given, list) or not given:
        raise InvalidTrajectory("steps is not a non-empty list")
    agent = record.get("agent") if isinstance(record.get("agent"), dict) else {}
    run = _Run()
    for position, step in enumerate(given):
        run.add(position, step)
    if run.task is None:
        raise InvalidTrajectory("no task: the trajectory has no user step with a message")
    trial = record.get("harbor_trial") if isinstance(record.get("harbor_trial"), dict) else {}
    outcome, outcome_from = _outcome(record, trial)
    model = _name(agent.get("model_name"))
    name = _name(agent.get("name"))
    subagents = record.get("subagent_trajectories")
    final = record.get("final_metrics") if isinstance(record.get("final_metrics"), dict) else {}
    data = {
        "id": _id(record),
        "agent": "/".join(p for p in (model, name) if p) or None,
        "task": run.task,
        "started_at": _time(given[0]),
        "ended_at": _time(given[-1]),
        "steps": run.steps,
        "outcome": outcome,
        "metadata": {
            "format": FORMAT,
            "source": FORMAT,
            "schema_version": record.get("schema_version"),
            "session_id": record.get("session_id"),
            "trajectory_id": record.get("trajectory_id"),
            "segment": record.get("atif_segment"),
            "agent_name": name,
            "agent_version": _name(agent.get("version")),
            "model": model,
            "task_id": trial.get("task_name"),
            "trial": trial.get("trial_name"),
            "rewards": trial.get("rewards"),
            "outcome_from": outcome_from,
            "cost": final.get("total_cost_usd"),
            "copied_steps": run.copied,
            "example_steps": run.example_steps,
            "subagent_trajectories": len(subagents) if isinstance(subagents, list) else 0,
            "continued_trajectory_ref": record.get("continued_trajectory_ref"),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


class _Run(RunBuilder):
    """The run so far (`RunBuilder`), and the calls by id."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, Any]] = {}
        self.copied = 0  # steps copied from an earlier segment, left out

    def add(self, position: int, step: Any) -> None:
        where = f"steps[{position}]"
        if not isinstance(step, dict):
            raise InvalidTrajectory(f"{where} is not an object")
        source = step.get("source")
        if source not in _SOURCES:
            raise InvalidTrajectory(f"{where}.source {source!r} is not system, user or agent")
        text = _text(step.get("message"), f"{where}.message")
        if source == "user" and self.task is None:
            self.task = text.strip() or None  # a copied first step still says what was asked
            return
        if step.get("is_copied_context") is True:
            self.copied += 1
            return
        if self.acknowledged is not None and source == "user":
            self.after_rules(text)
            return
        self.no_task_followed()
        if source == "user" and (restarted := restarted_task(text)):
            self.restart(restarted)
            return
        if source == "agent" and not step.get("tool_calls") and self.acknowledges(text):
            return
        if source == "user":
            self.said("user", text)
        elif source == "agent":
            self.said("assistant", text)
        given = step.get("tool_calls") or []
        if not isinstance(given, list):
            raise InvalidTrajectory(f"{where}.tool_calls is not a list")
        calls = [self._call(f"{where}.tool_calls[{i}]", c) for i, c in enumerate(given)]
        observation = step.get("observation")
        if observation is None:
            return
        if not isinstance(observation, dict):
            raise InvalidTrajectory(f"{where}.observation is not an object")
        results = observation.get("results") or []
        if not isinstance(results, list):
            raise InvalidTrajectory(f"{where}.observation.results is not a list")
        for index, result in enumerate(results):
            self._result(f"{where}.observation.results[{index}]", result, calls)

    def restart(self, task: str) -> None:
        """As `RunBuilder.restart`; the example's calls are not waited for either."""
        super().restart(task)
        self.by_id.clear()

    def _call(self, where: str, given: Any) -> dict[str, Any]:
        if not isinstance(given, dict):
            raise InvalidTrajectory(f"{where} is not an object")
        name = given.get("function_name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidTrajectory(f"{where}.function_name is not a name")
        arguments = given.get("arguments")
        if arguments is None:
            arguments = {}
        elif not isinstance(arguments, dict | str):
            raise InvalidTrajectory(f"{where}.arguments is not an object")
        if isinstance(arguments, dict):
            name, arguments = tool_call(name, arguments)
        call: dict[str, Any] = {"type": "tool_call", "name": name, "arguments": arguments}
        call_id = given.get("tool_call_id")
        if isinstance(call_id, str) and call_id:
            call["id"] = call_id
            self.by_id[call_id] = call
        self.steps.append(call)
        return call

    def _result(self, where: str, given: Any, calls: list[dict[str, Any]]) -> None:
        """A result: for the call with its source_call_id, else the step's first call without
        one; a result for no call (feedback of the environment) is a user message."""
        if not isinstance(given, dict):
            raise InvalidTrajectory(f"{where} is not an object")
        text = _text(given.get("content"), f"{where}.content")
        call_id = given.get("source_call_id")
        call = self.by_id.pop(call_id, None) if isinstance(call_id, str) else None
        if call is None:
            call = next((c for c in calls if "result" not in c), None)
            if call is not None and "id" in call:
                self.by_id.pop(call["id"], None)
        if call is None:
            self.said("user", text)
            return
        call["result"] = head_and_tail(text, MAX_RESULT_CHARS)
        why = result_error(call["name"], call["arguments"], text)
        if why is not None:
            call["error"], call["error_text"] = True, why



def _outcome(
    record: dict[str, Any], trial: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """The trial's reward (an exception that ended it as the reason); for a trajectory that
    ADP's `adp_to_atif` converted, the outcome its `extra.adp_details` give; else None."""
    reward = trial.get("reward")
    if isinstance(reward, float):
        return {"reward": reward, "reason": trial.get("exception")}, "harbor result.json"
    extra = record.get("extra")
    details = extra.get("adp_details") if isinstance(extra, dict) else None
    if isinstance(details, dict):
        outcome, given_by = details_outcome(details)
        return outcome, f"extra.adp_{given_by}" if given_by else None
    return None, None


def _read_trial(path: Path) -> dict[str, Any] | None:
    """A Harbor `TrialResult` (it names its trial or has a verifier result), or None."""
    try:
        if path.stat().st_size > MAX_TRIAL_RESULT_BYTES:
            return None
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not (
        "verifier_result" in document or "trial_name" in document
    ):
        return None  # a job's result.json (its stats) sits one folder up: not this trial's
    verifier = document.get("verifier_result")
    rewards = verifier.get("rewards") if isinstance(verifier, dict) else None
    exception = document.get("exception_info")
    return {
        "task_name": _name(document.get("task_name")),
        "trial_name": _name(document.get("trial_name")),
        "reward": _reward(rewards, verifier),
        "rewards": rewards if isinstance(rewards, dict) else None,
        "exception": _name(exception.get("exception_type"))
        if isinstance(exception, dict)
        else None,
    }


def _reward(rewards: Any, verifier: Any) -> float | None:
    """`rewards["reward"]`, else the one reward there is; an older `verifier_result.reward`."""
    value = None
    if isinstance(rewards, dict):
        value = rewards.get("reward")
        if value is None and len(rewards) == 1:
            value = next(iter(rewards.values()))
    elif isinstance(verifier, dict):
        value = verifier.get("reward")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(content: Any, where: str) -> str:
    """A message or result: a string, or its text parts (an image part as its path)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidTrajectory(f"{where} is not a string or a list of parts")
    parts = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif part.get("type") == "image":
            source = part.get("source")
            path = source.get("path") if isinstance(source, dict) else None
            parts.append(f"[image: {path}]" if isinstance(path, str) else "[image]")
    return "\n".join(parts)


def _id(record: dict[str, Any]) -> str:
    """`atif:<session>[:<trajectory>][:<segment>]` (segments of one session share its id),
    else a hash of the trajectory as written (what `atif_records` attached left out)."""
    session, trajectory = record.get("session_id"), record.get("trajectory_id")
    parts = [session if session is not None else trajectory]
    if trajectory is not None and trajectory != parts[0]:
        parts.append(trajectory)
    if record.get("atif_segment") is not None:
        parts.append(record["atif_segment"])
    if all(isinstance(p, str) and SAFE_ID_PART.fullmatch(p) for p in parts):
        return ":".join((FORMAT, *parts))
    own = {k: v for k, v in record.items() if k not in _ATTACHED}
    return content_id(own, prefix=FORMAT)


def _time(step: Any) -> datetime | None:
    stamp = step.get("timestamp") if isinstance(step, dict) else None
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
