"""tau2-bench simulations: one `SimulationRun` of a `Results` file, joined to its task.

A `Results` document `{"info", "tasks", "simulations"}` is expanded by `records_in_document`
into one record per simulation: the simulation object with its task under `task` and the
run's `info` (agent model, domain) beside it. Only the agent's own tool calls are kept
(`requestor == "assistant"`); in the dual-control telecom domain the simulated user also
calls tools on their phone, and those calls are the user's, not the agent's skills.
"""

from __future__ import annotations

from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import error_summary, looks_like_error

FORMAT = "tau2-bench"
_DROPPED_INFO = ("policy", "tool_defs")  # large texts shared by every run of a file


def is_tau2_results(document: Any) -> bool:
    """A whole tau2 `Results` object: `simulations` and `tasks` lists."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("simulations"), list)
        and isinstance(document.get("tasks"), list)
    )


def is_tau2_record(record: dict[str, Any]) -> bool:
    """One tau2 `SimulationRun` (as expanded from a Results file, or written alone)."""
    return (
        isinstance(record.get("messages"), list)
        and "task_id" in record
        and ("reward_info" in record or "termination_reason" in record)
    )


def tau2_records(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each simulation of a Results object, with its task and the file's `info` attached."""
    tasks = {str(t.get("id")): t for t in document["tasks"] if isinstance(t, dict)}
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    env = info.get("environment_info") if isinstance(info.get("environment_info"), dict) else {}
    slim_info = {
        **{k: v for k, v in info.items() if k != "environment_info"},
        "environment_info": {k: v for k, v in env.items() if k not in _DROPPED_INFO},
    }
    records: list[dict[str, Any]] = []
    for sim in document["simulations"]:
        if not isinstance(sim, dict):
            records.append(sim)  # left for parse_record to reject with a reason
            continue
        record = {**sim, "info": slim_info}
        task = tasks.get(str(sim.get("task_id")))
        if task is not None and "task" not in sim:
            record["task"] = task
        records.append(record)
    return records


def from_tau2_record(record: dict[str, Any]) -> Trajectory:
    """A tau2 simulation as a trajectory: the agent's calls, the user's words, the reward."""
    info = record.get("info") if isinstance(record.get("info"), dict) else {}
    agent_info = info.get("agent_info") if isinstance(info.get("agent_info"), dict) else {}
    env = info.get("environment_info") if isinstance(info.get("environment_info"), dict) else {}
    task = record.get("task") if isinstance(record.get("task"), dict) else {}
    steps = _steps(record["messages"])
    reward_info = record.get("reward_info") if isinstance(record.get("reward_info"), dict) else {}
    reward = reward_info.get("reward")
    outcome = None
    if isinstance(reward, int | float):
        outcome = {"reward": float(reward), "reason": record.get("termination_reason")}
    domain = env.get("domain_name") or _scenario(task).get("domain")
    data = {
        "id": f"tau2:{record['id']}" if record.get("id") else content_id(record, prefix="tau2"),
        "agent": agent_info.get("llm") or agent_info.get("implementation"),
        "task": _task_text(task) or _first_user_text(steps),
        "started_at": record.get("start_time"),
        "ended_at": record.get("end_time"),
        "steps": steps,
        "outcome": outcome,
        "metadata": {
            "format": FORMAT,
            "task_id": record.get("task_id"),
            "domain": domain,
            "trial": record.get("trial"),
            "action_checks": _action_checks(reward_info.get("action_checks")),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _steps(messages: list[Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidTrajectory(f"messages[{position}] is not an object")
        role = message.get("role")
        text = message.get("content") if isinstance(message.get("content"), str) else ""
        if role == "tool":
            call = pending.pop(str(message.get("id")), None)
            if call is not None:  # a result of a user-side call has no pending agent call
                _attach(call, text, message.get("error"))
            continue
        if role not in ("assistant", "user", "system"):
            raise InvalidTrajectory(f"messages[{position}] has unknown role {role!r}")
        if text.strip():
            steps.append({"type": "message", "role": role, "text": text})
        for item in message.get("tool_calls") or []:
            if not isinstance(item, dict) or not item.get("name"):
                raise InvalidTrajectory(f"messages[{position}] has a tool call without a name")
            if item.get("requestor", role) != "assistant":
                continue  # the simulated user's own device actions
            arguments = item.get("arguments")
            call = {
                "type": "tool_call",
                "id": item.get("id"),
                "name": item["name"],
                "arguments": arguments if isinstance(arguments, dict | str) else {},
            }
            steps.append(call)
            if item.get("id"):
                pending[str(item["id"])] = call
    return steps


def _attach(call: dict[str, Any], text: str, flag: Any) -> None:
    """The explicit `error` flag decides; only a producer that leaves it out gets the text test."""
    call["result"] = text
    if flag is True or (not isinstance(flag, bool) and looks_like_error(text)):
        call["error"] = True
        call["error_text"] = error_summary(text) if text.strip() else "tool reported an error"


def _instructions(task: dict[str, Any]) -> Any:
    scenario = task.get("user_scenario")
    return scenario.get("instructions") if isinstance(scenario, dict) else None


def _scenario(task: dict[str, Any]) -> dict[str, Any]:
    instructions = _instructions(task)
    return instructions if isinstance(instructions, dict) else {}


def _task_text(task: dict[str, Any]) -> str:
    """reason_for_call + task_instructions, else plain-text instructions, else the description."""
    instructions = _instructions(task)
    if isinstance(instructions, str) and instructions.strip():
        return instructions.strip()
    scenario = _scenario(task)
    parts = [scenario.get("reason_for_call"), scenario.get("task_instructions")]
    text = "\n\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    if text:
        return text
    description = task.get("description")
    if isinstance(description, dict):
        parts = [description.get("purpose"), description.get("notes")]
        return "\n\n".join(p for p in parts if isinstance(p, str) and p.strip())
    return description if isinstance(description, str) else ""


def _action_checks(checks: Any) -> list[dict[str, Any]]:
    out = []
    for check in checks or []:
        action = check.get("action") if isinstance(check, dict) else None
        if isinstance(action, dict) and action.get("name"):
            out.append(
                {
                    "name": action["name"],
                    "match": bool(check.get("action_match")),
                    "requestor": action.get("requestor") or "assistant",
                }
            )
    return out


def _first_user_text(steps: list[dict[str, Any]]) -> str:
    for step in steps:
        if step["type"] == "message" and step["role"] == "user":
            return step["text"]
    raise InvalidTrajectory("no task: the simulation has no joined task and no user message")
