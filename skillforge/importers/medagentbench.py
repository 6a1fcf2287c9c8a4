"""MedAgentBench runs (AgentBench `medagentbench-std`): a text protocol over a FHIR server.

An `overall.json` document `{"validation", "custom": {"raw_results": [...]}}` is expanded by
`records_in_document` into one record per `raw_results` item, with the model attached (it is
only in the file's path). The agent speaks one action per turn: `GET <url>?<query>`,
`POST <url>\\n<json>` or `FINISH([...])`; the next user turn is the server's answer.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from evolver.model import Trajectory, content_id

from ..errors import InvalidTrajectory

FORMAT = "medagentbench"
SUCCESS_STATUS = "completedCorrect"
_ACTION = re.compile(r"^(GET|POST)[ \t]+([^\n]*?)[ \t]*(?:\n(.*))?\Z", re.DOTALL)  # URL: 1st line
_RESOURCE = re.compile(r"/fhir/(\w+)")
_QUESTION = re.compile(r"\bQuestion:\s*(.+)\Z", re.DOTALL)


def is_medagentbench_document(document: Any) -> bool:
    """A whole `overall.json`: `custom.raw_results` is a list."""
    custom = document.get("custom") if isinstance(document, dict) else None
    return isinstance(custom, dict) and isinstance(custom.get("raw_results"), list)


def is_medagentbench_record(record: dict[str, Any]) -> bool:
    """One `raw_results` item: `index`, `status` and a `history` of user/agent turns."""
    history = record.get("history")
    return (
        isinstance(history, list)
        and "status" in record
        and "index" in record
        and all(isinstance(t, dict) and t.get("role") in ("user", "agent") for t in history)
    )


def model_from_source(source_name: str | None) -> str | None:
    """`gpt-4o_overall.json` → gpt-4o; `.../<model>/medagentbench-std/overall.json` → model."""
    if not source_name:
        return None
    parts = [p for p in re.split(r"[\\/]", source_name) if p]
    if not parts:
        return None
    name = parts[-1]
    if name.endswith("_overall.json"):
        return name[: -len("_overall.json")] or None
    if name == "overall.json" and len(parts) >= 3:
        return parts[-3]
    return name.rsplit(".", 1)[0] or None


def medagentbench_records(
    document: dict[str, Any], source_name: str | None = None
) -> list[dict[str, Any]]:
    """Each raw result of an overall.json, with `model` attached when the file names one."""
    model = _model_in(document) or model_from_source(source_name)
    if model is None:  # no name anywhere: a digest keeps runs of different files apart
        model = content_id(document.get("validation"), prefix="file")[5:17]
    return [
        {**r, "model": r.get("model") or model} if isinstance(r, dict) else r
        for r in document["custom"]["raw_results"]
    ]


def from_medagentbench_record(record: dict[str, Any]) -> Trajectory:
    """One MedAgentBench run: GET/POST calls on FHIR resources, FINISH as the answer."""
    history = record["history"]
    if not history or history[0].get("role") != "user":
        raise InvalidTrajectory("history does not start with the user's prompt")
    prompt = _content(history[0])
    match = _QUESTION.search(prompt)
    task = (match.group(1) if match else prompt).strip()
    if not task:
        raise InvalidTrajectory("no task: the prompt has no question")
    steps: list[dict[str, Any]] = [{"type": "message", "role": "user", "text": task}]
    awaiting: dict[str, Any] | None = None  # the call the next user turn answers
    for turn in history[1:]:
        text = _content(turn)
        if turn["role"] == "user":
            if awaiting is not None:
                awaiting["result"] = text
                if _is_error(text):
                    awaiting["error"] = True
                    awaiting["error_text"] = text.strip().split("\n", 1)[0][:500]
                awaiting = None
            elif text.strip():
                steps.append({"type": "message", "role": "user", "text": text})
            continue
        call = _call(text)
        if call is None:
            awaiting = None
            if text.strip():
                steps.append({"type": "message", "role": "assistant", "text": text})
        else:
            steps.append(call)
            awaiting = call
    status = record.get("status")
    model = record.get("model")
    data = {
        "id": f"mab:{model}:{record['index']}" if model else content_id(record, prefix="mab"),
        "agent": model,
        "task": task,
        "steps": steps,
        "outcome": {
            "success": status == SUCCESS_STATUS,
            "reason": None if status == SUCCESS_STATUS else status,
        }
        if isinstance(status, str)
        else None,
        "metadata": {
            "format": FORMAT,
            "task_id": record["index"],
            "model": model,
            "status": status,
            "answer": record.get("result"),
        },
    }
    from . import validate  # late import: the package module imports this one

    return validate(data)


def _call(text: str) -> dict[str, Any] | None:
    """A `GET`/`POST` agent turn as a tool call named by method and FHIR resource."""
    match = _ACTION.match(text.strip())
    if match is None:
        return None
    method, url, body = match.group(1), match.group(2), match.group(3)
    resource = _RESOURCE.search(url)
    name = resource.group(1) if resource else urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    arguments = _query(urlsplit(url).query) if method == "GET" else _json_body(body or "")
    return {"type": "tool_call", "name": f"{method} {name or 'fhir'}", "arguments": arguments}


def _query(query: str) -> dict[str, Any]:
    """Query parameters as typed by the agent (`+` kept: it is often why a date filter failed)."""
    arguments: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value)
        previous = arguments.get(key)
        if previous is None:
            arguments[key] = value
        else:
            arguments[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
    return arguments


def _json_body(body: str) -> dict[str, Any] | str:
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        return body
    return parsed if isinstance(parsed, dict) else body


def _is_error(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("Error in sending") or stripped == "Invalid POST request"


def _content(turn: Any) -> str:
    if not isinstance(turn, dict):
        raise InvalidTrajectory("a history turn is not an object")
    content = turn.get("content")
    return content if isinstance(content, str) else ""


def _model_in(document: dict[str, Any]) -> str | None:
    validation = document.get("validation")
    for source in (document, validation if isinstance(validation, dict) else {}):
        for key in ("model", "agent"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None
