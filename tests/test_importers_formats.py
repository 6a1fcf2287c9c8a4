"""Importers for the formats agents write: Claude Code, Codex, OTLP, Responses, Anthropic,
a declarative mapping, the shared corpora through `read_file`, and `skillforge import`."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from evolver.model import Message, Trajectory
from skillforge import cli
from skillforge.errors import FormatMismatchError, InvalidTrajectory, MappingError
from skillforge.importers import parse_line, parse_record
from skillforge.importers.anthropic import trajectory_from_anthropic_messages
from skillforge.importers.chat import trajectory_from_openai_messages
from skillforge.importers.files import Skipped, detect_format, read_file
from skillforge.importers.mapping import load_mapping
from skillforge.store import Store
from tests.conftest import AIRLINE, CORPORA

DATA = Path(__file__).parent / "data" / "formats"
TAU2_TELECOM = CORPORA / "tau2-bench-gpt41" / "gpt-4.1_telecom_default_gpt-4.1_1trials.json"
MAB_GPT4O = CORPORA / "medagentbench" / "gpt-4o_overall.json"


def read(path: Path, format: str | None = None, **kw) -> tuple[list[Trajectory], list[Skipped]]:
    items = list(read_file(path, format, **kw))
    return (
        [i for i in items if isinstance(i, Trajectory)],
        [i for i in items if isinstance(i, Skipped)],
    )


def errors(run: Trajectory) -> list[str]:
    return [c.name for c in run.tool_calls if c.error]


# Claude Code


def test_claude_code_transcript_calls_errors_skills_and_task():
    assert detect_format(DATA / "claude_code_session.jsonl") == "claude-code"
    [run], skipped = read(DATA / "claude_code_session.jsonl")
    assert skipped == []
    assert run.id == "claude-code:5c1e7f2a-8b3d-4e6f-9a1b-2c3d4e5f6a7b"
    assert run.task.startswith("tests/test_orders.py::test_checkout_timeout")  # not the caveat
    assert [c.name for c in run.tool_calls] == ["Skill", "Bash", "Edit"]  # sidechain Grep left out
    bash = run.tool_calls[1]
    assert errors(run) == ["Bash"] and bash.error_text == "Exit code 1"
    assert "TimeoutError" in bash.result
    assert [s.name for s in run.skills] == ["fix-flaky-pytest-timeouts"]
    assert run.outcome is None  # an interactive session says nothing of success
    assert run.agent == "claude-code (claude-sonnet-4-5-20250929)"
    assert str(run.started_at) == "2026-08-22 10:00:00+00:00"
    assert run.metadata["cwd"] == "/home/dev/shop-api" and run.metadata["git_branch"] == "main"
    texts = [s.text for s in run.steps if isinstance(s, Message)]
    assert not any(t.startswith("Base directory for this skill") for t in texts)  # meta line


@pytest.mark.parametrize(
    ("result", "success", "reason"),
    [
        ({"subtype": "success", "is_error": False}, True, None),
        ({"subtype": "error_max_turns", "is_error": True, "terminal_reason": "max_turns"}, False,
         "max_turns"),
    ],
)  # fmt: skip
def test_claude_code_headless_result_line_is_the_outcome(tmp_path, result, success, reason):
    path = tmp_path / "session.jsonl"
    shutil.copy(DATA / "claude_code_session.jsonl", path)
    with path.open("a") as handle:
        handle.write(json.dumps({"type": "result", "num_turns": 4, "session_id": "x", **result}))
        handle.write("\n")
    [run], _ = read(path)
    assert (run.outcome.success, run.outcome.reason) == (success, reason)


def test_claude_code_subagent_file_is_its_own_run_and_a_truncated_line_is_skipped(tmp_path):
    events = [json.loads(line) for line in (DATA / "claude_code_session.jsonl").open()]
    side = [e for e in events if e.get("isSidechain")]
    prompt = {**side[1], "uuid": "s0", "message": {"role": "user", "content": "Find the timeout"}}
    path = tmp_path / "subagents" / "agent-3f2a.jsonl"
    path.parent.mkdir()
    lines = [json.dumps(e) for e in (prompt, *side)]
    path.write_text("\n".join([*lines, '{"type":"assistant","mess']) + "\n")
    [run], [skipped] = read(path, "claude-code")
    assert run.id.endswith("/agent-3f2a") and run.metadata["subagent"] is True
    assert [c.name for c in run.tool_calls] == ["Grep"] and run.task == "Find the timeout"
    assert skipped.line_or_index == 4 and skipped.reason.startswith("not valid JSON")


# Codex


def test_codex_rollout_exit_codes_are_errors():
    assert detect_format(DATA / "codex_rollout.jsonl") == "codex"
    [run], skipped = read(DATA / "codex_rollout.jsonl")
    assert skipped == []
    assert run.id == "codex:0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    assert run.task == "test_add fails, fix calc.add" and run.agent == "codex (gpt-5-codex)"
    assert [c.name for c in run.tool_calls] == ["shell", "apply_patch", "shell"]
    failed, patch, passed = run.tool_calls
    assert errors(run) == ["shell"]
    assert failed.error_text == "exit code 1: FAILED tests/test_calc.py::test_add - assert -1 == 5"
    assert failed.arguments["command"] == ["bash", "-lc", "pytest -q"]
    assert failed.result.startswith("F.\nFAILED")  # the output, unwrapped from its JSON envelope
    assert patch.arguments.startswith("*** Begin Patch") and patch.result.startswith("Success.")
    assert passed.result.endswith("2 passed in 0.02s\n")
    assert run.outcome is None and run.metadata["cli_version"] == "0.46.0"
    users = [s.text for s in run.steps if isinstance(s, Message) and s.role == "user"]
    assert users == ["test_add fails, fix calc.add"]  # the environment context is not the user


# OTLP JSON


def test_otlp_export_one_run_per_agent_span_with_tool_errors_and_status_outcomes():
    assert detect_format(DATA / "otel_export.json") == "otel"
    runs, [skipped] = read(DATA / "otel_export.json")
    trip, fx = runs
    assert trip.id == "otel:4bf92f3577b34da6a3ce929d0e0e4736:a1b2c3d4e5f60718"
    assert [c.name for c in trip.tool_calls] == ["get_weather", "find_museum"]  # by start time
    weather = trip.tool_calls[0]
    assert weather.error_text == "CityNotFoundError: city not found"
    assert weather.arguments == {"city": "Paris"} and weather.id == "call_abc"
    assert errors(trip) == ["get_weather"] and errors(fx) == []
    assert trip.task.startswith("Plan a day trip") and trip.agent == "trip-planner (gpt-4o)"
    assert (trip.succeeded, trip.outcome.reason) == (False, "max turns exceeded")
    assert fx.succeeded is True and fx.task == "Convert 120 EUR to USD."
    assert fx.tool_calls[0].result == "130.44"
    assert skipped.line_or_index == "trace 0af7651916cd43dd8448eb211c80319c"
    assert skipped.reason.startswith("no task")


def test_otlp_collector_jsonl_export_reads_the_same(tmp_path):
    document = json.loads((DATA / "otel_export.json").read_text())
    half = {"resourceSpans": document["resourceSpans"][:1]}
    rest = {"resourceSpans": document["resourceSpans"][1:]}
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(half) + "\n" + json.dumps(rest) + "\n")
    runs, skipped = read(path)
    assert [r.id for r in runs] == [r.id for r in read(DATA / "otel_export.json")[0]]
    assert len(skipped) == 1


# Per-record formats: Responses API and Anthropic Messages


def test_responses_items_function_and_builtin_tool_errors():
    assert detect_format(DATA / "responses_records.jsonl") == "openai-responses"
    (items, envelope), skipped = read(DATA / "responses_records.jsonl")
    assert skipped == []
    assert [c.name for c in items.tool_calls] == ["get_weather", "web_search", "code_interpreter"]
    assert errors(items) == ["get_weather", "web_search"]
    assert items.tool_calls[0].error_text == "Error: city not found"
    assert items.tool_calls[0].id == "call_abc"  # joined by call_id, not the fc_ item id
    assert items.succeeded is False and items.outcome.reward == 0.0
    assert [c.name for c in envelope.tool_calls] == ["list_dir", "shell"]
    assert errors(envelope) == ["list_dir", "shell"]
    assert envelope.tool_calls[0].error_text == "list_dir: permission denied: /data"
    assert envelope.tool_calls[1].error_text.startswith("exit code 1: wc:")
    assert envelope.outcome.reason == "response incomplete: max_output_tokens"
    assert envelope.task == "List the data folder and count the CSV rows."


def test_anthropic_messages_is_error_and_server_tool_failures():
    assert detect_format(DATA / "anthropic_records.jsonl") == "anthropic-messages"
    (weather, sandbox), skipped = read(DATA / "anthropic_records.jsonl")
    assert skipped == []
    assert [c.error for c in weather.tool_calls] == [True, False]
    assert weather.tool_calls[0].error_text == "ConnectionError: weather service unavailable"
    assert weather.tool_calls[1].result == "18°C, light rain"
    assert weather.tool_calls[1].arguments == {"city": "Paris", "provider": "backup"}
    assert weather.succeeded is True and weather.steps[0].role == "system"
    assert [c.name for c in sandbox.tool_calls] == ["web_search", "bash_code_execution"]
    assert [c.error_text for c in sandbox.tool_calls] == [
        "web_search_tool_result_error: max_uses_exceeded",
        "exit code 1: ModuleNotFoundError: No module named 'pandas'",
    ]
    assert sandbox.outcome is None and weather.metadata["format"] == "anthropic-messages"


@pytest.mark.parametrize("name", ["responses_records.jsonl", "anthropic_records.jsonl"])
def test_the_inbox_takes_per_record_formats_line_by_line(name):
    lines = (DATA / name).read_bytes().splitlines()
    assert [parse_line(line) for line in lines] == read(DATA / name)[0]


def test_chat_records_with_text_parts_stay_openai_chat():
    record = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert parse_record(record).metadata["format"] == "openai-chat"


@pytest.mark.parametrize("name", ["claude_code_session.jsonl", "codex_rollout.jsonl"])
def test_a_transcript_line_in_the_inbox_says_to_import_the_file(name):
    line = (DATA / name).read_bytes().splitlines()[1]
    with pytest.raises(InvalidTrajectory, match="skillforge import"):
        parse_line(line)


# The functions the client library builds on


ANTHROPIC = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "down", "is_error": True}]},
]  # fmt: skip
OPENAI = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: service down"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("convert", "messages", "prefix"),
    [(trajectory_from_anthropic_messages, ANTHROPIC, "anthropic:"),
     (trajectory_from_openai_messages, OPENAI, "chat:")],
)  # fmt: skip
def test_trajectory_from_messages_keywords_and_stable_ids(convert, messages, prefix):
    run = convert(messages, success=False, agent="bot", skills=["weather"], metadata={"k": 1})
    assert run.task == "Weather in Paris?" and errors(run) == ["get_weather"]
    assert (run.succeeded, run.agent, [s.name for s in run.skills]) == (False, "bot", ["weather"])
    assert run.metadata["k"] == 1 and run.id.startswith(prefix)
    again = convert(messages, success=False, agent="bot", skills=["weather"], metadata={"k": 1})
    assert again == run
    assert convert(messages, success=True).id != convert(messages, success=False).id
    named = convert(messages, task="Check weather", reward=1.0, id="run-7")
    assert (named.id, named.task, named.succeeded, named.outcome.reward) == (
        "run-7", "Check weather", True, 1.0
    )  # fmt: skip
    assert convert(messages).outcome is None
    with pytest.raises(InvalidTrajectory, match="skills"):
        convert(messages, skills="weather")


# Declarative mapping


def test_a_mapping_reads_a_json_format_skillforge_does_not_know():
    mapping = load_mapping(DATA / "qa_mapping.toml")
    runs, [skipped] = read(DATA / "qa_runs.json", mapping=mapping)
    first, second = runs
    assert (first.id, first.agent, first.succeeded) == ("qa-001", "local-llama", True)
    assert [c.error for c in first.tool_calls] == [True, False]  # the `failed` flag decides
    assert first.tool_calls[0].arguments == {"org": "ACME", "state": "open"}  # JSON string parsed
    assert first.tool_calls[0].error_text == "HTTP 500 internal error"
    assert [s.text for s in first.steps if isinstance(s, Message)][-1] == "ACME has 2 open tickets."
    assert errors(second) == ["tickets.close"] and second.succeeded is False  # no flag: text
    assert first.metadata == {"format": "qa-log"}
    assert skipped.line_or_index == 2
    assert skipped.reason == "no task: `question` is missing or not text"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('task = "q"\n[call]\nname = "tool"\n', "steps: Field required"),
        ('task = "q"\nsteps = "h"\ncolour = "x"\n[call]\nname = "t"\n', "colour: Extra inputs"),
        ('task = "a..b"\nsteps = "h"\n[call]\nname = "t"\n', "task: String should match"),
        ("task = \n", "not valid TOML"),
    ],
)
def test_an_invalid_mapping_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


# The shared corpora, through read_file


def test_tau_bench_corpus_through_read_file():
    if not AIRLINE.exists():
        pytest.skip(f"shared corpus missing: {AIRLINE}")
    assert detect_format(AIRLINE) == "tau-bench"
    runs, skipped = read(AIRLINE, "tau-bench")
    assert (len(runs), skipped) == (200, [])
    assert sum(len(r.tool_calls) for r in runs) == 1164
    assert sum(c.error for r in runs for c in r.tool_calls) == 73
    assert Counter(r.succeeded for r in runs) == {True: 84, False: 116}


def test_tau2_dual_control_run_keeps_only_the_agents_calls():
    if not TAU2_TELECOM.exists():
        pytest.skip(f"shared corpus missing: {TAU2_TELECOM}")
    raw = json.loads(TAU2_TELECOM.read_bytes())
    calls = Counter(
        c["requestor"]
        for sim in raw["simulations"]
        for m in sim["messages"]
        for c in m.get("tool_calls") or []
    )
    assert detect_format(TAU2_TELECOM) == "tau2-bench"
    runs, skipped = read(TAU2_TELECOM)
    assert (len(runs), skipped) == (40, [])
    assert sum(len(r.tool_calls) for r in runs) == calls["assistant"] == 207
    assert calls["user"] > 0  # the simulated user's device actions, all dropped
    assert Counter(r.succeeded for r in runs) == {True: 18, False: 22}


def test_medagentbench_corpus_through_read_file():
    if not MAB_GPT4O.exists():
        pytest.skip(f"shared corpus missing: {MAB_GPT4O}")
    runs, skipped = read(MAB_GPT4O)
    assert (len(runs), skipped) == (100, [])
    assert Counter(r.succeeded for r in runs) == {True: 61, False: 39}
    assert {r.agent for r in runs} == {"gpt-4o"}


# Malformed input and --format


def test_malformed_lines_and_files_are_skipped_with_reasons(tmp_path):
    good = {"messages": [{"role": "user", "content": "hi"}], "success": True}
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"messages": [\n' + json.dumps(good) + "\n[1, 2]\n")
    runs, skipped = read(mixed)
    assert len(runs) == 1
    assert [(s.line_or_index, s.reason.split(":")[0]) for s in skipped] == [
        (1, "not valid JSON"),
        (3, "a JSON array is not a trajectory; expected an object"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceSpans": [')
    assert read(broken) == ([], [Skipped(str(broken), None, broken_reason(broken))])
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"colour": "blue"}\n')
    [why] = read(unknown)[1]
    assert "not in a known trajectory format" in why.reason and "--mapping" in why.reason


def broken_reason(path: Path) -> str:
    try:
        json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    raise AssertionError("the file should not parse")


def test_a_forced_format_reads_as_that_format_or_is_a_clear_error(tmp_path):
    runs, _ = read(DATA / "anthropic_records.jsonl", "anthropic-messages")
    assert len(runs) == 2
    with pytest.raises(FormatMismatchError, match="not in the claude-code format: .* like codex"):
        list(read_file(DATA / "codex_rollout.jsonl", "claude-code"))
    with pytest.raises(FormatMismatchError, match="unknown format 'slack'"):
        list(read_file(DATA / "codex_rollout.jsonl", "slack"))
    mixed = tmp_path / "mixed.jsonl"
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    mixed.write_text((DATA / "anthropic_records.jsonl").read_text() + json.dumps(chat) + "\n")
    runs, [skipped] = read(mixed, "anthropic-messages")
    assert len(runs) == 2 and skipped.reason == "not a anthropic-messages record"


# skillforge import, end to end


def main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    samples = tmp_path / "samples"
    shutil.copytree(DATA, samples)
    return tmp_path, samples, ["--home", str(tmp_path / "var"), "--inbox", str(tmp_path / "inbox")]


def test_import_writes_one_inbox_file_that_ingests_once(capsys, dirs):
    root, samples, where = dirs
    (samples / "qa_mapping.toml").unlink()
    code, out, _ = main(capsys, *where, "import", str(samples))
    assert code == 0
    assert "6 files: imported 8 runs into" in out and "skipped 2" in out
    assert "1 × no task: no span recorded" in out
    assert "1 × not in a known trajectory format" in out and "qa_runs.json" in out
    [written] = (root / "inbox").iterdir()  # no temporary file left beside it
    assert written.name.startswith("imported-") and written.suffix == ".jsonl"
    assert len(written.read_text().splitlines()) == 8
    assert main(capsys, *where, "ingest", str(root / "inbox"))[0] == 0
    with Store(root / "var" / "skillforge.db") as store:
        assert store.count("trajectories") == 8
        stored = {t.metadata["format"] for t in store.trajectories()}
    assert stored == {"anthropic-messages", "claude-code", "codex", "otel", "openai-responses"}
    assert main(capsys, *where, "import", str(samples))[0] == 0  # the same files again
    code, out, _ = main(capsys, *where, "ingest", str(root / "inbox"))
    assert "8 already stored" in out
    with Store(root / "var" / "skillforge.db") as store:
        assert store.count("trajectories") == 8


def test_import_with_a_mapping_and_the_errors_it_reports(capsys, dirs):
    root, samples, where = dirs
    args = [*where, "import", "--mapping", str(samples / "qa_mapping.toml")]
    code, out, _ = main(capsys, *args, str(samples / "qa_runs.json"))
    assert code == 0 and "imported 2 runs" in out and "skipped 1" in out
    (samples / "bad.toml").write_text('task = "q"\n')
    code, _, err = main(capsys, *where, "import", "--mapping", str(samples / "bad.toml"), "x")
    assert code == 1 and "invalid mapping file" in err and "steps: Field required" in err


def test_import_forced_format_mismatch_and_nothing_importable_exit_1(capsys, dirs):
    root, samples, where = dirs
    code, _, err = main(
        capsys, *where, "import", "--format", "otel", str(samples / "codex_rollout.jsonl")
    )
    assert code == 1 and "is not in the otel format: it looks like codex" in err
    assert not (root / "inbox").exists()  # nothing written
    code, out, _ = main(capsys, *where, "import", str(samples / "qa_runs.json"))
    assert code == 1 and "imported 0 runs, skipped 1" in out
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*where, "import", "--format", "slack", str(samples)])
    assert exit_info.value.code == 2 and "invalid choice: 'slack'" in capsys.readouterr().err


def test_import_skips_a_run_whose_text_cannot_be_written(capsys, dirs):
    root, samples, where = dirs
    rollout = samples / "codex_rollout.jsonl"
    rollout.write_text(rollout.read_text().replace("fix calc.add", "fix calc.add \\ud800"))
    code, out, _ = main(capsys, *where, "import", str(rollout))
    assert code == 1 and "imported 0 runs, skipped 1" in out
    assert "1 × cannot be written as JSON" in out and not (root / "inbox").exists()
