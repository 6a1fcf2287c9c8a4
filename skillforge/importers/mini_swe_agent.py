"""mini-swe-agent runs: `<output_dir>/<instance_id>/<instance_id>.traj.json` (SWE-bench batch
runs) or one `<name>.traj.json` per run.

A run is one JSON object: `info` (exit_status, submission, model_stats, config with the model,
mini_version), `messages` (the chat) and `trajectory_format` ("mini-swe-agent-1", "-1.1"). The
agent's only tool is a shell; each command is one `bash` call {command}, in one of two shapes:

    text-based (1.x, 2.x text configs)     tool-call (2.x toolcall models)
    the assistant's one ```bash block       the assistant's OpenAI `tool_calls` (function bash)
    (or ```mswea_bash_command) is the      are the calls; `role: "tool"` messages their
    call; the next user message its        results, matched by tool_call_id
    result

A result reads `<returncode>N</returncode>` and `<output>` (`<output_head>`/`<output_tail>` when
long): a non-zero return code is the call's failure, as is a timeout message. The assistant's
text outside the code block is its thought. A format error (no code block, several, a bad tool
call) is no call: it is counted in metadata `format_errors`. The submission command (`echo
COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`) is answered by the patch itself, not by the template.

Resolution is not in the run (`exit_status == "Submitted"` only says a patch was sent):
`records_in_document` attaches `run`, `instance_id` and `resolved` from a SWE-bench harness
report beside the run, as for SWE-agent; without one, outcome is None.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evolver.model import Trajectory

from ..errors import InvalidTrajectory
from .chat import _arguments
from .errortext import clip, error_summary, head_and_tail, shell_failure
from .swe_agent import (
    MAX_RESULT_CHARS,
    PR_DESCRIPTION,
    SAFE_ID_PART,
    message_text,
    run_labels,
    swe_bench_trajectory,
)

FORMAT = "mini-swe-agent"
DOMAIN = "swe-bench"
MAX_COMMAND_CHARS = 2_000
_SUFFIX = ".traj.json"
_BLOCK = re.compile(r"```(?:bash|mswea_bash_command)[ \t]*\n(.*?)\n?```", re.DOTALL)
_ISSUE = re.compile(
    r"^\s*Please solve this issue:\s*(.*?)\s*(?:\n\s*You can execute bash commands\b.*)?\Z",
    re.DOTALL,
)
_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")
_OUTPUT = re.compile(r"<output>\n?(.*?)\n?</output>", re.DOTALL)
_HEAD = re.compile(r"<output_head>\n?(.*?)\n?</output_head>", re.DOTALL)
_TAIL = re.compile(r"<output_tail>\n?(.*?)\n?</output_tail>", re.DOTALL)
_ELIDED = re.compile(r"<elided_chars>\s*(\d+)")
_EXCEPTION = re.compile(r"<exception>(.*?)</exception>", re.DOTALL)
_TIMEOUT = re.compile(r"^\s*The last command <command>.*?</command> timed out", re.DOTALL)
_FORMAT_ERROR = re.compile(
    r"^\s*(?:Please always provide EXACTLY ONE action|Tool call error:)", re.IGNORECASE
)


def is_mini_swe_agent_record(record: dict[str, Any]) -> bool:
    """A run object: `trajectory_format` "mini-swe-agent…", or `info.mini_version` beside
    `messages`."""
    if not isinstance(record.get("messages"), list):
        return False
    given = record.get("trajectory_format")
    if isinstance(given, str) and given.startswith("mini-swe-agent"):
        return True
    info = record.get("info")
    return isinstance(info, dict) and "mini_version" in info


def mini_swe_agent_records(
    record: dict[str, Any], source_name: str | None = None
) -> list[dict[str, Any]]:
    """The run of a .traj.json file, with its run folder, instance id and resolved label."""
    if not source_name:
        return [record]
    path = Path(source_name)
    name = path.name
    file_id = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else path.stem
    instance_id = _given_instance(record) or file_id
    return [{**record, **run_labels(path, file_id, instance_id)}]


def from_mini_swe_agent_record(record: dict[str, Any]) -> Trajectory:
    """One mini-swe-agent run: its shell commands as bash calls; resolved as outcome."""
    messages = record["messages"]
    info = record.get("info") if isinstance(record.get("info"), dict) else {}
    first = next(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"),
        None,
    )
    task = _task(message_text(messages[first].get("content"))) if first is not None else ""
    if not task:
        raise InvalidTrajectory("no task: the run has no user message")
    steps: list[dict[str, Any]] = [{"type": "message", "role": "user", "text": task}]
    waiting: list[dict[str, Any]] = []  # calls not yet answered, in order
    format_errors = 0
    refused = False  # the last assistant message held no command: what follows says why
    shape = "text"
    for position, message in enumerate(messages[first + 1 :], start=first + 1):
        if not isinstance(message, dict):
            raise InvalidTrajectory(f"messages[{position}] is not an object")
        role = message.get("role")
        text = message_text(message.get("content"))
        if role == "assistant":
            waiting = []  # a call left unanswered stays without a result
            commands, thought = _commands(message, text)
            refused = not commands
            if message.get("tool_calls"):
                shape = "tool-call"
            if thought:
                steps.append({"type": "message", "role": "assistant", "text": thought})
            for call_id, command in commands:
                call: dict[str, Any] = {
                    "type": "tool_call",
                    "name": "bash",
                    "arguments": {"command": clip(command, MAX_COMMAND_CHARS)},
                }
                if call_id:
                    call["id"] = call_id
                steps.append(call)
                waiting.append(call)
        elif role in ("user", "tool"):
            if _FORMAT_ERROR.match(text) or (refused and role == "user"):
                format_errors += 1
                refused = False
                continue
            call = _answered(waiting, message.get("tool_call_id"))
            if call is not None:
                _attach(call, text, message.get("extra"))
            elif role == "user" and text.strip():
                steps.append({"type": "message", "role": "user", "text": text})
        # system and exit messages are no steps
    stats = info.get("model_stats")
    return swe_bench_trajectory(
        record,
        FORMAT,
        task,
        steps,
        instance_id=record.get("instance_id") or _given_instance(record),
        model=_model(info),
        version=_version(record, info, shape),
        metadata={
            "shape": shape,
            "api_calls": stats.get("api_calls") if isinstance(stats, dict) else None,
            "format_errors": format_errors,
        },
    )


def _commands(message: dict[str, Any], text: str) -> tuple[list[tuple[str | None, str]], str]:
    """The (call id, command) pairs of an assistant message, and its thought."""
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list) and tool_calls:
        found = []
        for item in tool_calls:
            function = item.get("function") if isinstance(item, dict) else None
            if not isinstance(function, dict):
                continue
            arguments = _arguments(function.get("arguments"))
            command = arguments.get("command") if isinstance(arguments, dict) else arguments
            if isinstance(command, str) and command.strip():
                call_id = item.get("id")
                found.append((call_id if isinstance(call_id, str) and call_id else None, command))
        return found, text.strip()
    blocks = _BLOCK.findall(text)
    if len(blocks) != 1:  # a format error: the harness ran nothing
        return [], text.strip()
    return [(None, blocks[0].strip())], _BLOCK.sub("", text).strip()


def _answered(waiting: list[dict[str, Any]], call_id: Any) -> dict[str, Any] | None:
    """The waiting call a result answers: the one with its tool_call_id, else the first."""
    if not waiting:
        return None
    at = next((i for i, c in enumerate(waiting) if call_id and c.get("id") == call_id), 0)
    return waiting.pop(at)


def _attach(call: dict[str, Any], text: str, extra: Any) -> None:
    """The output of an observation as the call's result; failed on a non-zero return code,
    a timeout or an exception."""
    extra = extra if isinstance(extra, dict) else {}
    code = _RETURNCODE.search(text)
    returncode = int(code[1]) if code else extra.get("returncode")
    output = _output(text)
    call["result"] = head_and_tail(output, MAX_RESULT_CHARS)
    why = None
    if _TIMEOUT.match(text):
        why = "timed out: " + error_summary(call["arguments"]["command"], 200)
    elif (exception := _EXCEPTION.search(text)) is not None and exception[1].strip():
        why = error_summary(exception[1])
    elif isinstance(returncode, int) and not isinstance(returncode, bool) and returncode != 0:
        last = output.strip().rsplit("\n", 1)[-1]  # a test run's summary, a shell's complaint
        why = shell_failure(output, viewer=False) or error_summary(last)
        why = why or f"returncode {returncode}"
    if why is not None:
        call["error"], call["error_text"] = True, why


def _output(text: str) -> str:
    """What the command printed, out of the observation template (the text itself if none)."""
    head, tail = _HEAD.search(text), _TAIL.search(text)
    if head and tail:
        elided = _ELIDED.search(text)
        gap = f"{elided[1]} characters elided" if elided else "characters elided"
        return f"{head[1]}\n… [{gap}] …\n{tail[1]}"
    found = _OUTPUT.search(text)
    return found[1] if found else text


def _task(first: str) -> str:
    """The problem statement inside the instance template, else the whole first message."""
    found = PR_DESCRIPTION.search(first) or _ISSUE.match(first)
    text = found[1] if found else first
    return text.strip().removeprefix("Consider the following PR description:").strip()


def _given_instance(record: dict[str, Any]) -> str | None:
    info = record.get("info")
    for holder in (record, info if isinstance(info, dict) else {}):
        value = holder.get("instance_id")
        if isinstance(value, str) and value:
            return value
    return None


def _model(info: dict[str, Any]) -> str | None:
    config = info.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    name = model.get("model_name") if isinstance(model, dict) else None
    return name if isinstance(name, str) and SAFE_ID_PART.fullmatch(name) else None


def _version(record: dict[str, Any], info: dict[str, Any], shape: str) -> str | None:
    """`1.x` or `2.x`: mini-swe-agent's own version, else what the run's shape says."""
    given = info.get("mini_version")
    if isinstance(given, str) and re.match(r"\d+\.", given):
        return given.split(".", 1)[0] + ".x"
    if shape == "tool-call":
        return "2.x"
    return "1.x" if record.get("trajectory_format") == "mini-swe-agent-1" else None
