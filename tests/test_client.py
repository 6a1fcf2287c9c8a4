"""The client library: recording a run, delivering it whole, and the one-call helpers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from anthropic.types import TextBlock, ToolUseBlock
from openai.types.chat import ChatCompletionMessage

from skillforge import TrajectoryRecorder, from_anthropic_messages, from_openai_messages, record
from skillforge.client import post_trajectories
from skillforge.errors import ClientError, DeliveryError
from skillforge.intake import ingest_file, ingest_paths
from skillforge.store import Store
from tests.conftest import REPO_ROOT


def stored(inbox: Path) -> list:
    with Store() as store:
        result = ingest_paths(store, [inbox])
        assert result.quarantined == 0
        return list(store.trajectories())


def test_a_recorded_run_arrives_in_the_store_as_recorded(tmp_path):
    inbox = tmp_path / "inbox"
    with TrajectoryRecorder(
        "Cancel order W123",
        inbox=inbox,
        agent="support-bot/gpt-test",
        skills=["confirm-first", ("cancel-order", "3")],
        metadata={"team": "support"},
    ) as run:
        run.message("user", "Please cancel order W123")
        run.tool_call("get_order", {"order_id": "W123"}, result={"status": "pending"}, id="c1")
        run.tool_call("cancel_order", {"order_id": "W123"}, error="reason is required")
        with run.tool("cancel_order", {"order_id": "W123", "reason": "no longer needed"}) as call:
            call.result = "cancelled"
        run.skill("refunds", "1")
        run.message("assistant", "Your order is cancelled.")
        run.succeed(reward=1.0)
    [trajectory] = stored(inbox)
    assert trajectory == run.trajectory
    assert run.delivered_to == str(next(inbox.glob("client-*.jsonl")))
    assert trajectory.task == "Cancel order W123" and trajectory.agent == "support-bot/gpt-test"
    calls = trajectory.tool_calls
    assert [(c.name, c.error) for c in calls] == [
        ("get_order", False),
        ("cancel_order", True),
        ("cancel_order", False),
    ]
    assert calls[0].result == '{"status": "pending"}' and calls[0].id == "c1"
    assert calls[1].error_text == "reason is required"
    assert calls[2].result == "cancelled"
    assert [(s.name, s.version) for s in trajectory.skills] == [
        ("confirm-first", None),
        ("cancel-order", "3"),
        ("refunds", "1"),
    ]
    assert trajectory.succeeded is True and trajectory.outcome.reward == 1.0
    assert trajectory.metadata == {"team": "support"}
    assert trajectory.started_at <= trajectory.ended_at


def test_an_escaping_exception_is_a_failed_run_and_is_re_raised(tmp_path):
    inbox = tmp_path / "inbox"
    with pytest.raises(KeyError), TrajectoryRecorder("Look up W9", inbox=inbox) as run:
        run.message("user", "Look up W9")
        run.succeed(reward=1.0)  # premature: the run goes on and fails
        with run.tool("get_order", {"order_id": "W9"}):
            raise KeyError("W9")
    [trajectory] = stored(inbox)
    assert trajectory.succeeded is False and trajectory.outcome.reward is None
    assert trajectory.outcome.reason == "KeyError: 'W9'"
    [call] = trajectory.tool_calls
    assert call.error and call.error_text == "KeyError: 'W9'"


def test_a_reason_given_by_fail_is_kept_when_an_exception_follows(tmp_path):
    with pytest.raises(RuntimeError), TrajectoryRecorder("x", inbox=tmp_path) as run:
        run.fail("the user gave up")
        raise RuntimeError("boom")
    assert run.trajectory.outcome.reason == "the user gave up"


def test_a_run_without_an_outcome_is_stored_with_none(tmp_path):
    with TrajectoryRecorder("x", inbox=tmp_path) as run:
        run.tool_call("noop")
    [trajectory] = stored(tmp_path)
    assert trajectory.outcome is None and trajectory.tool_calls[0].arguments == {}


def test_misuse_is_a_clear_error(tmp_path):
    with pytest.raises(ClientError, match="inbox= .* or url="):
        TrajectoryRecorder("x")
    run = TrajectoryRecorder("x", inbox=tmp_path)
    with pytest.raises(ClientError, match="cannot record this step"):
        run.message("robot", "hello")
    with pytest.raises(ClientError, match="not a skill name"):
        run.skill("")


WRITER = """
import sys, threading
from skillforge.client import write_to_inbox
from evolver.model import Trajectory
inbox, tag, per_thread = sys.argv[1], sys.argv[2], int(sys.argv[3])
def write(thread):
    for i in range(per_thread):
        big = f"{tag}-{thread}-{i}-" + "x" * (150_000 + 997 * i)  # several pipe/page sizes
        steps = [{"type": "tool_call", "name": "read", "result": big}]
        write_to_inbox(Trajectory(id=f"{tag}-{thread}-{i}", task="t", steps=steps), inbox)
threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_concurrent_writers_never_show_a_reader_half_a_line(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    processes, threads, per_thread = 3, 4, 6
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(inbox), f"p{n}", str(per_thread)], cwd=REPO_ROOT
        )
        for n in range(processes)
    ]
    with Store(tmp_path / "store.db") as store:
        # Intake runs while they write; any half line it took in would be quarantined.
        while any(w.poll() is None for w in writers):
            for path in inbox.glob("*.jsonl"):
                result = ingest_file(store, path)
                assert result.quarantined == 0
        assert [w.returncode for w in writers] == [0] * processes
        ingest_paths(store, [inbox])
        assert store.count("quarantine") == 0
        ids = store.trajectory_ids()
    assert len(ids) == len(set(ids)) == processes * threads * per_thread
    assert len(list(inbox.glob("client-*.jsonl"))) == processes  # one file per process
    for path in inbox.glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            json.loads(line)


FULL_DISK = """
import resource, signal, sys
from skillforge.client import write_to_inbox
from skillforge.errors import DeliveryError
from evolver.model import Trajectory
inbox = sys.argv[1]
path = write_to_inbox(Trajectory(id="first", task="t"), inbox)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails instead
limit = path.stat().st_size + 1000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
try:
    write_to_inbox(Trajectory(id="second", task="t" * 5000), inbox)
except DeliveryError as exc:
    print("refused:", exc.trajectory.id)
"""


def test_a_write_that_runs_out_of_space_leaves_no_partial_line(tmp_path):
    # A file size limit makes the kernel write part of the line, then fail: a full disk.
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout
    assert out.strip() == "refused: second"
    [path] = tmp_path.glob("client-*.jsonl")
    assert path.read_bytes().count(b"\n") == 1 and path.read_bytes().endswith(b"\n")
    assert [t.id for t in stored(tmp_path)] == ["first"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_daemon_falls_back_to_the_inbox(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with TrajectoryRecorder("x", url=url, inbox=tmp_path, retries=0) as run:
        run.succeed()
    assert run.delivered_to.endswith(".jsonl")
    assert [t.id for t in stored(tmp_path)] == [run.id]


def test_an_unreachable_daemon_without_an_inbox_raises_with_the_run(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    run = TrajectoryRecorder("x", url=url, retries=0)
    refused = pytest.raises(DeliveryError, match=r"cannot reach .* \(after 1 attempt\)")
    with refused as caught, run:
        run.succeed()
    assert caught.value.trajectory == run.trajectory


class Flaky:
    """A loopback server that answers 503 `failures` times, then 202."""

    def __init__(self, failures: int, final: int = 202) -> None:
        self.calls: list[dict] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                flaky.calls.append({"auth": self.headers.get("Authorization"), "body": body})
                status = 503 if len(flaky.calls) <= failures else final
                payload = json.dumps(
                    {"accepted": 1, "duplicates": 0, "ids": [body[0]["id"]]}
                    if status == 202
                    else {"errors": [{"index": None, "reason": f"status {status}"}]}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve = self.server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_server_errors_are_retried_and_the_token_is_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLFORGE_HTTP_TOKEN", "from-env")
    server = Flaky(failures=2)
    try:
        trajectory = from_openai_messages([{"role": "user", "content": "hi"}], id="r1")
        answer = post_trajectories([trajectory], server.url, retries=2, backoff=0.01)
    finally:
        server.close()
    assert answer == {"accepted": 1, "duplicates": 0, "ids": ["r1"]}
    assert len(server.calls) == 3
    assert {c["auth"] for c in server.calls} == {"Bearer from-env"}


def test_a_client_error_answer_is_not_retried(tmp_path):
    server = Flaky(failures=0, final=401)
    try:
        trajectory = from_openai_messages([{"role": "user", "content": "hi"}])
        with pytest.raises(DeliveryError, match="answered 401"):
            post_trajectories([trajectory], server.url + "/v1/trajectories", token="wrong")
    finally:
        server.close()
    assert len(server.calls) == 1


def test_openai_sdk_messages_become_a_trajectory_in_one_call(tmp_path):
    assistant = ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"order_id": "W1"}'},
                }
            ],
        }
    )
    messages = [
        {"role": "user", "content": "Where is order W1?"},
        assistant,
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: order W1 not found"},
        ChatCompletionMessage(role="assistant", content="I could not find it."),
    ]
    trajectory = from_openai_messages(
        messages, success=False, agent="bot", skills=[("find-order", "2")]
    )
    assert trajectory.task == "Where is order W1?" and trajectory.succeeded is False
    [call] = trajectory.tool_calls
    assert (call.name, call.arguments, call.error) == ("get_order", {"order_id": "W1"}, True)
    assert [(s.name, s.version) for s in trajectory.skills] == [("find-order", "2")]
    assert (
        from_openai_messages(messages, success=False).id
        == from_openai_messages(messages, success=False).id
    )  # same input, same id: a resend is stored once
    destination = record(trajectory, inbox=tmp_path)
    assert destination.endswith(".jsonl") and stored(tmp_path) == [trajectory]


def test_anthropic_sdk_blocks_become_a_trajectory_in_one_call():
    messages = [
        {"role": "user", "content": "Cancel order W2"},
        {
            "role": "assistant",
            "content": [
                TextBlock(type="text", text="Cancelling."),
                ToolUseBlock(type="tool_use", id="tu_1", name="cancel", input={"order": "W2"}),
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "cancelled"}],
        },
    ]
    trajectory = from_anthropic_messages(messages, task="Cancel W2", reward=1.0)
    [call] = trajectory.tool_calls
    assert (call.name, call.arguments, call.result) == ("cancel", {"order": "W2"}, "cancelled")
    assert trajectory.task == "Cancel W2" and trajectory.succeeded is True


def test_importing_skillforge_stays_light():
    code = (
        "import sys, skillforge; heavy = {'pydantic', 'sqlite_utils', 'git', 'apscheduler'};"
        "print(sorted(heavy & set(sys.modules)));"
        "print(skillforge.TrajectoryRecorder.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    ).stdout.split()
    assert out == ["[]", "skillforge.client"]
