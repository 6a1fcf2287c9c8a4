"""The whole way round: an agent loop on the real openai SDK (talking to a loopback server)
records its run with the client library, and the run arrives in the store through the inbox
and through the HTTP intake of a running daemon."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import openai
import pytest

from skillforge import TrajectoryRecorder, from_openai_messages, record
from skillforge.intake import ingest_paths
from skillforge.store import Store
from tests.daemon_harness import DaemonProcess, wait_for
from tests.fake_openai import FakeOpenAI, text_reply, tool_calls_reply

TASK = "Where is order W123, and can it still be cancelled?"
TOKEN = "roundtrip-token"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look an order up by its id.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]
ORDERS = {"W123": {"status": "pending", "items": 2}}


def get_order(order_id: str) -> str:
    if order_id not in ORDERS:
        raise LookupError(f"no order {order_id}")
    return json.dumps(ORDERS[order_id])


def scripted() -> list[dict[str, Any]]:
    """The model asks for two lookups (one of them fails), then answers."""
    return [
        tool_calls_reply(("get_order", {"order_id": "W123"}), ("get_order", {"order_id": "W999"})),
        text_reply("Order W123 is pending, so it can still be cancelled."),
    ]


def agent(client: openai.OpenAI, run: TrajectoryRecorder) -> list[Any]:
    """A plain tool-calling loop, written as an agent would, recording as it goes."""
    tools: dict[str, Callable[..., str]] = {"get_order": get_order}
    messages: list[Any] = [{"role": "user", "content": TASK}]
    run.message("user", TASK)
    for _ in range(5):
        completion = client.chat.completions.create(
            model="gpt-test", messages=messages, tools=TOOLS
        )
        reply = completion.choices[0].message
        messages.append(reply)
        if not reply.tool_calls:
            run.message("assistant", reply.content or "")
            run.succeed(reward=1.0)
            return messages
        for call in reply.tool_calls:
            arguments = json.loads(call.function.arguments)
            try:
                with run.tool(call.function.name, arguments) as recorded:
                    recorded.id = call.id
                    recorded.result = tools[call.function.name](**arguments)
                content = recorded.result
            except LookupError as exc:
                content = f"Error: {exc}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    run.fail("no answer after 5 turns")
    return messages


def check_run(stored: Any, recorded: Any) -> None:
    assert stored == recorded
    assert stored.task == TASK and stored.succeeded is True
    assert [(c.name, c.arguments["order_id"], c.error) for c in stored.tool_calls] == [
        ("get_order", "W123", False),
        ("get_order", "W999", True),
    ]
    assert stored.tool_calls[1].error_text == "LookupError: no order W999"
    assert stored.skills[0].name == "lookup-orders"


def test_an_openai_agent_run_arrives_through_the_inbox(tmp_path):
    inbox = tmp_path / "inbox"
    with FakeOpenAI(scripted()) as api:
        client = openai.OpenAI(base_url=api.base_url, api_key="test", max_retries=0)
        with TrajectoryRecorder(
            TASK, inbox=inbox, agent="order-bot/gpt-test", skills=[("lookup-orders", "1")]
        ) as run:
            messages = agent(client, run)
    assert len(api.requests) == 2
    assert api.requests[1]["messages"][2]["tool_call_id"] == "call_1"  # the SDK sent our loop

    # The same run as a message list, in one call: the SDK's own objects are accepted.
    converted = from_openai_messages(messages, reward=1.0, skills=["lookup-orders"])
    record(converted, inbox=inbox)

    with Store(tmp_path / "store.db") as store:
        result = ingest_paths(store, [inbox])
        assert (result.stored, result.quarantined) == (2, 0)
        recorded, from_messages = store.trajectories()
    check_run(recorded, run.trajectory)
    assert from_messages == converted
    assert [c.name for c in from_messages.tool_calls] == ["get_order", "get_order"]
    assert from_messages.tool_calls[1].error  # "Error: ..." read as a failed call


@pytest.mark.e2e
def test_an_openai_agent_run_arrives_through_a_running_daemon(tmp_path):
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        http="127.0.0.1:0",
        http_token=TOKEN,
        evolve_after=1000,
        evolve_every_minutes=600,
    ).start()
    try:
        announced = wait_for(
            lambda: re.search(r"http intake on (http://\S+)/v1/trajectories", daemon.output()),
            timeout=60,
            what="the HTTP intake",
            log=daemon.output,
        )
        url = announced.group(1)  # type: ignore[union-attr]
        with FakeOpenAI(scripted()) as api:
            client = openai.OpenAI(base_url=api.base_url, api_key="test", max_retries=0)
            with TrajectoryRecorder(
                TASK, url=url, token=TOKEN, skills=[("lookup-orders", "1")]
            ) as run:
                agent(client, run)
        assert run.delivered_to == url
        assert daemon.stored_ids() == [run.id]  # stored before the 202: no waiting
        status = daemon.cli("status").stdout
        assert "ingested     1 trajectories (1 succeeded, 0 failed)" in status
    finally:
        assert daemon.stop() == 0
    with Store(daemon.home / "skillforge.db") as store:
        [stored] = store.trajectories()
    check_run(stored, run.trajectory)
