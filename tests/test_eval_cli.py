"""`skillforge eval`: a library evolved on tau-bench airline trials 0-1, scored on trials 2-3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evolver.pipeline import evolve
from skillforge import cli
from skillforge.importers import parse_record
from tests.conftest import write_jsonl


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def split(airline_records: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory):
    """The library evolved on trials 0-1 only (as files), and trials 2-3 as a JSONL file."""
    root = tmp_path_factory.mktemp("split")
    train = [parse_record(r) for r in airline_records if r["trial"] in (0, 1)]
    for change in evolve(train, []).changes:
        folder = root / "library" / change.skill
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(change.content, encoding="utf-8")
        for name, text in change.files.items():  # checks.json: what eval scores from
            (folder / name).write_text(text, encoding="utf-8")
    held = [r for r in airline_records if r["trial"] in (2, 3)]
    write_jsonl(root / "heldout" / "runs.jsonl", held)
    return root, held


def test_compliance_beats_the_naive_predictors_on_held_out_airline_runs(capsys, split) -> None:
    root, _ = split
    code, out, _ = run_cli(
        capsys,
        "eval",
        "--library",
        str(root / "library"),
        str(root / "heldout" / "runs.jsonl"),
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert report["runs"] == 100
    assert report["coverage"] >= 0.9 and report["matched"] == sum(
        s["runs"] for s in report["skills"]
    )
    assert len(report["skills"]) >= 2  # one per intent: cancel, change
    overall = report["overall"]
    naive = overall["naive_auroc"]
    assert set(naive) == {"no tool errors", "fewer tool calls"}
    assert overall["auroc"] > naive["no tool errors"]
    assert overall["auroc"] > naive["fewer tool calls"]
    assert overall["compliant"]["success_rate"] > overall["noncompliant"]["success_rate"]
    assert overall["compliant"]["runs"] + overall["noncompliant"]["runs"] == report["matched"]
    assert 0.0 <= report["convergence"] <= 1.0
    rows = report["scored"]
    assert len(rows) == 100 and all(0.0 <= r["compliance"] <= 1.0 for r in rows if r["skill"])


def test_the_table_shows_each_skill_and_the_naive_predictors(capsys, split) -> None:
    root, _ = split
    code, out, _ = run_cli(
        capsys, "eval", "--library", str(root / "library"), str(root / "heldout")
    )
    assert code == 0
    names = sorted(p.name for p in (root / "library").iterdir())
    for name in names:
        assert f"\n{name} " in out
    assert "all matched runs" in out and "coverage 100%" in out
    assert "naive predictors on the same runs: no tool errors" in out and "fewer tool calls" in out
    assert "convergence" in out


def test_outcomes_never_reach_the_compliance_score(capsys, split, tmp_path: Path) -> None:
    _, held = split
    named = [{**r, "id": f"task-{r['task_id']}-trial-{r['trial']}"} for r in held]
    flipped = [{**r, "reward": 1.0 - r["reward"]} for r in named]
    write_jsonl(tmp_path / "named.jsonl", named)
    (tmp_path / "flipped.json").write_text(json.dumps(flipped))  # also: a .json document
    scores = []
    for path in (tmp_path / "named.jsonl", tmp_path / "flipped.json"):
        code, out, _ = run_cli(
            capsys, "eval", "--library", str(split[0] / "library"), str(path), "--json"
        )
        assert code == 0
        scores.append({r["run"]: (r["skill"], r["compliance"]) for r in json.loads(out)["scored"]})
    assert len(scores[0]) == 100 and scores[0] == scores[1]


def test_missing_library_or_runs_are_clear_errors(capsys, split, tmp_path: Path) -> None:
    root, _ = split
    code, _, err = run_cli(capsys, "eval", "--library", str(tmp_path), str(root / "heldout"))
    assert code == 1 and "holds no <name>/SKILL.md" in err
    code, _, err = run_cli(capsys, "eval", "--library", str(root / "library"), "nope.jsonl")
    assert code == 1 and "nope.jsonl does not exist" in err


def test_a_prefix_scores_every_run_at_the_same_call(capsys, split) -> None:
    """At three calls every scored run has made three: "fewer tool calls" ranks nothing, and
    runs that made fewer are left out; a step after the third changes no score."""
    root, held = split
    code, out, _ = run_cli(
        capsys, "eval", "--library", str(root / "library"), str(root / "heldout"), "--json",
        "--prefix", "3",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    long_enough = [r for r in held if len(parse_record(r).tool_calls) >= 3]
    assert report["runs"] == len(long_enough) < len(held)
    assert report["overall"]["naive_auroc"]["fewer tool calls"] == 0.5
    assert report["overall"]["auroc"] > 0.5
    assert report["prefix"] == 3
    code, out, _ = run_cli(
        capsys, "eval", "--library", str(root / "library"), str(root / "heldout"), "--prefix", "3"
    )
    left_out = len(held) - len(long_enough)
    assert code == 0 and f"first 3 tool calls: {left_out} runs with fewer left out" in out
    code, _, err = run_cli(
        capsys, "eval", "--library", str(root / "library"), str(root / "heldout"), "--prefix", "0"
    )
    assert code != 0 and "--prefix must be 1 or more" in err


def test_cut_keeps_the_steps_up_to_the_kth_call() -> None:
    from evolver.evaluate import cut
    from evolver.model import Message, ToolCall, Trajectory

    steps = [Message(role="user", text="t"), ToolCall(name="a"), Message(role="assistant",
             text="x"), ToolCall(name="b"), ToolCall(name="c")]  # fmt: skip
    run = Trajectory(id="r", task="t", steps=steps, outcome={"success": True})
    two = cut(run, 2)
    assert two is not None and [c.name for c in two.tool_calls] == ["a", "b"]
    assert two.steps == steps[:4] and two.succeeded is True
    assert cut(run, 4) is None and [c.name for c in run.tool_calls] == ["a", "b", "c"]


def test_eval_reads_every_format_import_reads(capsys, split) -> None:
    """SWE-agent .traj runs (a folder of them, beside their harness report) are scored too."""
    root, _ = split
    runs = Path(__file__).parent / "fixtures" / "swe_agent"
    code, out, _ = run_cli(capsys, "eval", "--library", str(root / "library"), str(runs), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["runs"] == 2  # two of the three runs have a harness verdict
    assert report["skipped_records"] == 2  # preds.json and the report itself are no runs
