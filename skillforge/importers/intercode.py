"""InterCode experiment logs (Yang et al. 2023): an agent acting in bash, SQL, Python or CTF.

A log file `results/<env>/<model>/<name>.json` is `{"<idx>": record}`, or `{"meta", "logs":
{"<idx>": record}}` for the plan-and-solve runs. `records_in_document` expands it into one record
per run with `log` attached: the file's stem, the run's index and the model and strategy that
only the path names. Model: the folder under `results/<env>/` when the file name repeats it,
else the model the file name names (`python/gpt-3.5/` holds a `..._gpt-4_7_turns.json`).
Strategy: the file name without `ic_<env>_`, the model and the `fs_<n>` data split
(`multiturn_10_turns`, `multiturn_1_turns_handicap`, `react_10_turns`, `plan_solve`, ...).

Each action is one call: `bash` {"command"} in ic_bash and ic_ctf, `sql` {"query"}, `python`
{"code"}, unwrapped from the ReAct `execute[...]` and the CTF agent's `cmd ...`; `submit` (with
the flag as `answer` in CTF) is a call of its own. A ReAct thought or plan step comes before its
action as an assistant message. `blocked` (PaLM withheld the reply; nothing ran) is an assistant
message. A call failed when `valid_action` is false (bash: a non-zero exit) or its observation
reads as an error; a failed unit test of ic_python is a 0 reward, not a tool error. Outcome:
`summary.max_reward` (success = 1.0), or the human sessions' `reward`; without either, None.
The task files beside the logs (data/nl2bash, data/sql/spider, ...) are lists of tasks, never
claimed here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory
from .errortext import error_summary, head_and_tail, looks_like_error

FORMAT = "intercode"
MAX_RESULT_CHARS = 20_000  # one observation reached 940k characters (a recursive ls)
_TOOLS = {  # environment -> (tool name, argument key)
    "ic_bash": ("bash", "command"),
    "ic_ctf": ("bash", "command"),
    "ic_sql": ("sql", "query"),
    "ic_python": ("python", "code"),
}
# The human SQL sessions name no dataset: their query_idx and query are Spider dev's.
_DEFAULT_DATASET = {"ic_sql": "dev_spider"}
_STEM = re.compile(r"^ic_([a-z]+)_(.*)\Z")
_MODEL = re.compile(
    r"gpt-\d+(?:\.\d+)?(?:-turbo)?|text-davinci-\d+|(?:chat|text)-bison-\d+|starchat|vicuna|human"
)
_SPLIT = re.compile(r"(?:^|_)fs_\d+(?=_|$)")
_REACT = re.compile(r"^\s*execute\[(.*)\]\s*\Z", re.DOTALL)
_SUBMIT = re.compile(r"^\s*submit\b\s*(.*?)\s*\Z", re.DOTALL)
_CMD = re.compile(r"^\s*cmd\s+(.+)\Z", re.DOTALL)
_SHELL_ERROR = re.compile(
    r"^[^\s:][^\n:]*:(?: [^\n]*?:)? (?:No such file or directory|command not found"
    r"|Permission denied|syntax error\b|cannot \w+|invalid option|unrecognized option"
    r"|missing operand|Is a directory|Not a directory|unexpected EOF)",
    re.MULTILINE,
)
_PYTHON_ERROR = re.compile(r"""^\s*\{.*'error':\s*(?:'[^']|"[^"])""")


def is_intercode_document(document: Any) -> bool:
    """A whole log file: every value (of `logs`, in plan-and-solve files) an InterCode run."""
    if not isinstance(document, dict):
        return False
    runs = document.get("logs") if isinstance(document.get("meta"), dict) else document
    return (
        isinstance(runs, dict)
        and bool(runs)
        and all(isinstance(r, dict) and is_intercode_record(r) for r in runs.values())
    )


def is_intercode_record(record: dict[str, Any]) -> bool:
    """One run: an `ic_*` environment and a `turn_history` (or a human `trajectory`)."""
    environment = record.get("environment")
    return (
        isinstance(environment, str)
        and environment.startswith("ic_")
        and (
            isinstance(record.get("turn_history"), dict)
            or isinstance(record.get("trajectory"), list)
        )
    )


def intercode_records(
    document: dict[str, Any], source_name: str | None = None
) -> list[dict[str, Any]]:
    """Each run of a log file, with `log` (file, index, model, strategy) attached."""
    meta = document.get("meta")
    runs = document["logs"] if isinstance(meta, dict) else document
    log: dict[str, Any] = _log_of(source_name)
    if isinstance(meta, dict) and isinstance(meta.get("data_path"), str):
        log["dataset"] = meta["data_path"]
    return [{**run, "log": {**log, "index": index}} for index, run in runs.items()]


def from_intercode_record(record: dict[str, Any]) -> Trajectory:
    """One InterCode run: the agent's commands, queries or code with their observations."""
    environment = record["environment"]
    task = record.get("query")
    if not isinstance(task, str) or not task.strip():
        raise InvalidTrajectory("no task: the run has no query")
    log = record.get("log") if isinstance(record.get("log"), dict) else {}
    steps: list[dict[str, Any]] = [{"type": "message", "role": "user", "text": task}]
    for turn in _turns(record):
        steps.extend(_steps(environment, *turn))
    task_id = record.get("task_id", record.get("query_idx"))
    model, strategy = log.get("model"), log.get("strategy")
    data = {
        "id": _id(record, environment, log),
        "agent": "/".join(p for p in (model, strategy) if p) or None,
        "task": task,
        "steps": steps,
        "outcome": _outcome(record),
        "metadata": {
            "format": FORMAT,
            "source": FORMAT,
            "task_id": task_id,
            "domain": f"{environment}/{_dataset(record, log)}",
            "strategy": strategy,
            "model": model,
            "hardness": record.get("hardness"),
            "log": {"file": log.get("file"), "index": log.get("index")},
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _log_of(source_name: str | None) -> dict[str, Any]:
    """Model and strategy from `.../results/<env>/<model>/ic_<env>_<strategy+model>.json`."""
    if not source_name:
        return {}
    parts = [p for p in re.split(r"[\\/]", source_name) if p]
    stem = parts[-1].rsplit(".", 1)[0] if parts else ""
    match = _STEM.match(stem)
    if not match:
        return {"file": stem or None}
    env, rest = match.groups()
    folder = parts[-2] if len(parts) >= 3 and parts[-3] == env else None
    named = _MODEL.search(rest)
    if folder and folder in rest:
        model: str | None = folder
    else:
        model = named.group(0) if named else folder
    if model and model in rest:
        rest = rest.replace(model, "_", 1)
    strategy = re.sub(r"[-_]+", "_", _SPLIT.sub("_", rest)).strip("_")
    return {"file": stem, "model": model, "strategy": strategy or None}


def _turns(record: dict[str, Any]) -> list[tuple[Any, Any, Any, Any, bool]]:
    """(action, observation, valid_action, thought, observed) per turn, in both shapes."""
    history = record.get("turn_history")
    if not isinstance(history, dict):  # a human session: [{"action", "observation"}]
        turns = []
        for position, item in enumerate(record["trajectory"]):
            if not isinstance(item, dict):
                raise InvalidTrajectory(f"trajectory[{position}] is not an object")
            turns.append((item.get("action"), item.get("observation"), None, None, True))
        return turns
    actions = history.get("actions")
    if not isinstance(actions, list):
        raise InvalidTrajectory("turn_history.actions is not a list")
    observations, valid = _list(history, "observations"), _list(history, "valid_action")
    thoughts = _list(history, "thoughts") or _list(history, "steps")  # ReAct / plan-and-solve
    return [
        (
            action,
            observations[i] if i < len(observations) else None,
            valid[i] if i < len(valid) else None,
            thoughts[i] if i < len(thoughts) else None,
            i < len(observations),
        )
        for i, action in enumerate(actions)
    ]


def _steps(
    environment: str, action: Any, observation: Any, valid: Any, thought: Any, observed: bool
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if isinstance(thought, str) and thought.strip():
        steps.append({"type": "message", "role": "assistant", "text": thought})
    text = action if isinstance(action, str) else _text(action)
    if text.strip() == "blocked" and not observed:
        text = "blocked: the model API withheld the reply, no action ran"
        return [*steps, {"type": "message", "role": "assistant", "text": text}]
    steps.append(_call(environment, text, observation, valid))
    return steps


def _call(environment: str, action: str, observation: Any, valid: Any) -> dict[str, Any]:
    name, key = _TOOLS.get(environment, (environment.removeprefix("ic_") or "action", "action"))
    react = _REACT.match(action)
    command = react.group(1) if react else action
    submit = _SUBMIT.match(command)
    wrapped = _CMD.match(command) if name == "bash" else None
    if submit:
        name, arguments = "submit", {"answer": submit.group(1)} if submit.group(1) else {}
    else:
        arguments = {key: wrapped.group(1) if wrapped else command}
    call: dict[str, Any] = {"type": "tool_call", "name": name, "arguments": arguments}
    if observation is None:
        return call
    result = observation if isinstance(observation, str) else _text(observation)
    call["result"] = head_and_tail(result, MAX_RESULT_CHARS)
    if valid is False or (name != "submit" and _reads_as_error(result)):
        call["error"] = True
        call["error_text"] = (
            error_summary(result) if result.strip() else "the environment rejected the action"
        )
    return call


def _reads_as_error(text: str) -> bool:
    head = text[:2000]
    return looks_like_error(text) or bool(_SHELL_ERROR.search(head) or _PYTHON_ERROR.match(head))


def _outcome(record: dict[str, Any]) -> dict[str, Any] | None:
    summary = record.get("summary")
    reward = summary.get("max_reward") if isinstance(summary, dict) else record.get("reward")
    if isinstance(reward, bool) or not isinstance(reward, int | float):
        return None
    return {"reward": float(reward), "success": reward == 1.0}


def _dataset(record: dict[str, Any], log: dict[str, Any]) -> str:
    """`./data/nl2bash/nl2bash_fs_1.json` -> nl2bash_fs_1: task ids restart in each file."""
    path = record.get("dataset") or log.get("dataset")
    if isinstance(path, str) and path.strip():
        return re.split(r"[\\/]", path.strip())[-1].rsplit(".", 1)[0]
    return _DEFAULT_DATASET.get(record["environment"], "unknown")


def _id(record: dict[str, Any], environment: str, log: dict[str, Any]) -> str:
    if log.get("file") is None or log.get("index") is None:
        return content_id(record, prefix="intercode")
    env = environment.removeprefix("ic_")
    rid = f"intercode:{env}:{log.get('model') or 'unknown'}:{log['file']}:{log['index']}"
    return rid if len(rid) <= 200 else content_id(record, prefix="intercode")


def _list(history: dict[str, Any], key: str) -> list[Any]:
    value = history.get(key)
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)
