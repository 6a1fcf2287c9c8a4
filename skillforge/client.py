"""Record an agent run and deliver it to skillforge: to the inbox, or to a daemon over HTTP.

    with TrajectoryRecorder("Cancel order W123", inbox="trajectories") as run:
        run.tool_call("get_order", {"order_id": "W123"}, result='{"status": "pending"}')
        run.succeed()

In the inbox a run is one line of a per-process file, written by one `os.write` on an
O_APPEND descriptor, so intake (which reads complete lines only) never sees half of it. Over
HTTP the daemon answers 202 once the run is stored; a retry after a lost answer is harmless
(the same id is stored once).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from evolver.model import LoadedSkill, Message, Outcome, Step, ToolCall, Trajectory

from .errors import ClientError, DeliveryError

__all__ = [
    "TrajectoryRecorder",
    "from_anthropic_messages",
    "from_openai_messages",
    "post_trajectories",
    "record",
    "write_to_inbox",
]

TOKEN_ENV = "SKILLFORGE_HTTP_TOKEN"
ENDPOINT = "/v1/trajectories"
REASON_LIMIT = 500
log = logging.getLogger("skillforge.client")
_inbox_lock = threading.Lock()

SkillSpec = str | tuple[str, str | None] | LoadedSkill


@dataclass
class ToolCallRecord:
    """A tool call in progress (`with run.tool(...) as call:`); set `result` before it ends."""

    name: str
    arguments: Any
    result: Any = None
    error: Any = None
    id: str | None = None


class TrajectoryRecorder:
    """Wrap an agent run in `with`; on exit the run is validated and delivered.

    An exception escaping the block records a failed outcome with its reason, and is re-raised.
    Raises `DeliveryError` (holding the trajectory) when it reaches neither `url` nor `inbox`.
    """

    def __init__(
        self,
        task: str,
        *,
        inbox: Path | str | None = None,
        url: str | None = None,
        token: str | None = None,
        agent: str | None = None,
        skills: Iterable[SkillSpec] = (),
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,
        retries: int = 3,
        timeout: float = 10.0,
    ) -> None:
        if inbox is None and url is None:
            raise ClientError("TrajectoryRecorder needs inbox= (a folder) or url= (a daemon)")
        self.task = task
        self.inbox, self.url, self.token = inbox, url, token
        self.agent = agent
        self.id = id or f"run-{uuid.uuid4().hex}"
        self.metadata = dict(metadata or {})
        self.retries, self.timeout = retries, timeout
        self.skills: list[LoadedSkill] = [_skill(s) for s in skills]
        self.steps: list[Step] = []
        self.outcome: Outcome | None = None
        self.started_at: datetime | None = None
        self.trajectory: Trajectory | None = None
        self.delivered_to: str | None = None
        self._lock = threading.Lock()  # tools may run on several threads

    def __enter__(self) -> TrajectoryRecorder:
        self.started_at = datetime.now(UTC)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is not None and not (self.outcome and self.outcome.success is False):
            self.outcome = Outcome(success=False, reason=_describe(exc))
        self.trajectory = self.build()
        self.delivered_to = record(
            self.trajectory,
            inbox=self.inbox,
            url=self.url,
            token=self.token,
            retries=self.retries,
            timeout=self.timeout,
        )
        return False

    # -- what the agent did -------------------------------------------------------------

    def message(self, role: str, text: str) -> None:
        """A message of the conversation (role system, user or assistant)."""
        self._add(Message, role=role, text=text)

    def tool_call(
        self,
        name: str,
        arguments: Any = None,
        result: Any = None,
        error: str | BaseException | bool | None = None,
        *,
        id: str | None = None,
    ) -> None:
        """A finished tool call; `error` is the error text, the exception, or True."""
        fields: dict[str, Any] = {"id": id, "name": name, "arguments": _arguments(arguments)}
        fields["result"] = None if result is None else _text(result)
        if isinstance(error, BaseException):
            fields["error_text"] = _describe(error)
        elif isinstance(error, str):
            fields["error_text"] = error
        elif error:
            fields["error"] = True
        self._add(ToolCall, **fields)

    @contextmanager
    def tool(self, name: str, arguments: Any = None) -> Iterator[ToolCallRecord]:
        """Record the call made inside the block; an exception is its error, and re-raised."""
        call = ToolCallRecord(name, arguments)
        try:
            yield call
        except BaseException as exc:
            self.tool_call(call.name, call.arguments, call.result, exc, id=call.id)
            raise
        self.tool_call(call.name, call.arguments, call.result, call.error, id=call.id)

    def skill(self, name: str, version: str | None = None) -> None:
        """A skill the agent loaded during the run."""
        with self._lock:
            self.skills.append(_skill((name, version)))

    def succeed(self, reward: float | None = None, reason: str | None = None) -> None:
        self.outcome = _outcome(success=True, reward=reward, reason=reason)

    def fail(self, reason: str, reward: float | None = None) -> None:
        self.outcome = _outcome(success=False, reward=reward, reason=reason)

    def build(self) -> Trajectory:
        """The run so far as a validated trajectory."""
        try:
            with self._lock:
                return Trajectory(
                    id=self.id,
                    agent=self.agent,
                    task=self.task,
                    started_at=self.started_at,
                    ended_at=datetime.now(UTC),
                    steps=list(self.steps),
                    outcome=self.outcome,
                    skills=list({s.name: s for s in self.skills}.values()),
                    metadata=self.metadata,
                )
        except ValidationError as exc:
            raise ClientError(f"the recorded run is not a valid trajectory: {exc}") from exc

    def _add(self, model: Callable[..., Step], **fields: Any) -> None:
        try:
            step = model(**fields)
        except ValidationError as exc:
            raise ClientError(f"cannot record this step: {exc}") from exc
        with self._lock:
            self.steps.append(step)


# -- delivery ----------------------------------------------------------------------------


def record(
    trajectory: Trajectory,
    *,
    inbox: Path | str | None = None,
    url: str | None = None,
    token: str | None = None,
    retries: int = 3,
    timeout: float = 10.0,
) -> str:
    """Deliver one trajectory: POST it to `url`, falling back to `inbox`, or append it there.

    Returns where it went (the daemon's URL or the inbox file). Raises `DeliveryError`.
    """
    if url is not None:
        try:
            post_trajectories([trajectory], url, token=token, retries=retries, timeout=timeout)
            return url
        except DeliveryError as exc:
            if inbox is None:
                raise
            log.warning("%s; writing run %s to the inbox %s instead", exc, trajectory.id, inbox)
    if inbox is None:
        raise ClientError("record() needs inbox= (a folder) or url= (a daemon)")
    return str(write_to_inbox(trajectory, inbox))


def write_to_inbox(trajectory: Trajectory, inbox: Path | str, *, fsync: bool = True) -> Path:
    """Append the trajectory as one complete line to this process's file in `inbox`."""
    folder = Path(inbox)
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
    path = folder / f"client-{host}-{os.getpid()}.jsonl"
    line = (trajectory.model_dump_json() + "\n").encode("utf-8")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DeliveryError(f"cannot open the inbox file {path}: {exc}", trajectory) from exc
    try:
        # The file is this process's own, so under the lock no one else appends to it: a
        # short write can be completed, or cut back to where it started.
        with _inbox_lock:
            start = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                while written < len(line):
                    written += os.write(fd, line[written:])
                if fsync:
                    os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, start)
                raise DeliveryError(
                    f"cannot write to the inbox file {path}: {exc}", trajectory
                ) from exc
    finally:
        os.close(fd)
    return path


def post_trajectories(
    trajectories: Iterable[Trajectory],
    url: str,
    *,
    token: str | None = None,
    retries: int = 3,
    timeout: float = 10.0,
    backoff: float = 0.5,
) -> dict[str, Any]:
    """POST trajectories to a daemon's HTTP intake; returns its 202 answer.

    Connection errors, 429 and 5xx are retried with exponential backoff; other answers are
    final. `token` defaults to $SKILLFORGE_HTTP_TOKEN. Raises `DeliveryError`.
    """
    batch = list(trajectories)
    body = json.dumps([t.model_dump(mode="json") for t in batch]).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    endpoint = url.rstrip("/")
    endpoint = endpoint if endpoint.endswith(ENDPOINT) else endpoint + ENDPOINT
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(backoff * 2 ** (attempt - 1), 10.0))
        request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            problem = f"{endpoint} answered {exc.code}: {_error_body(exc)}"
            if exc.code != 429 and exc.code < 500:
                raise DeliveryError(problem, batch[0] if len(batch) == 1 else batch) from exc
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            problem = f"cannot reach {endpoint}: {getattr(exc, 'reason', exc)}"
    attempts = f"{retries + 1} attempt" + ("s" if retries else "")
    raise DeliveryError(f"{problem} (after {attempts})", batch[0] if len(batch) == 1 else batch)


# -- one-call helpers --------------------------------------------------------------------


def from_openai_messages(messages: Iterable[Any], **keywords: Any) -> Trajectory:
    """An OpenAI Chat Completions message list (dicts or SDK objects) as a trajectory.

    Keywords: task, success, reward, agent, skills (names or (name, version)), id, metadata.
    """
    from .importers.chat import trajectory_from_openai_messages

    return _converted(trajectory_from_openai_messages, messages, keywords)


def from_anthropic_messages(messages: Iterable[Any], **keywords: Any) -> Trajectory:
    """An Anthropic Messages list (dicts or SDK objects) as a trajectory; keywords as above."""
    from .importers.anthropic import trajectory_from_anthropic_messages

    return _converted(trajectory_from_anthropic_messages, messages, keywords)


def _converted(
    convert: Callable[..., Trajectory], messages: Iterable[Any], keywords: dict[str, Any]
) -> Trajectory:
    skills = [_skill(s) for s in keywords.pop("skills", ())]
    trajectory = convert([_plain(m) for m in messages], skills=[s.name for s in skills], **keywords)
    if any(s.version for s in skills):  # the converters take names only
        trajectory = trajectory.model_copy(update={"skills": skills})
    return trajectory


# -- small conversions -------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """SDK objects (pydantic models) as the dicts they stand for, recursively."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _skill(spec: SkillSpec) -> LoadedSkill:
    if isinstance(spec, LoadedSkill):
        return spec
    name, version = (spec, None) if isinstance(spec, str) else spec
    try:
        return LoadedSkill(name=name, version=None if version is None else str(version))
    except ValidationError as exc:
        raise ClientError(f"not a skill name: {name!r}") from exc


def _outcome(**fields: Any) -> Outcome:
    try:
        return Outcome(**fields)
    except ValidationError as exc:
        raise ClientError(f"not a valid outcome: {exc}") from exc


def _arguments(arguments: Any) -> dict[str, Any] | str:
    """Arguments as JSON-safe data: an object, else the text the agent sent."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        return arguments
    plain = json.loads(json.dumps(_plain(arguments), default=str))
    return plain if isinstance(plain, dict) else json.dumps(plain)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), default=str, ensure_ascii=False)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def _error_body(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return str(exc.reason)
    return text.strip() or str(exc.reason)
