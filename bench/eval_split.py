"""Reproduce the held-out evaluation end to end: evolve on some runs, evaluate on others.

    .venv/bin/python bench/eval_split.py                 # tau-bench airline, 0-1 -> 2-3
    .venv/bin/python bench/eval_split.py --out /tmp/split --train 0 1 --test 2 3
    .venv/bin/python bench/eval_split.py --every-half    # all six 2-vs-2 trial splits
    .venv/bin/python bench/eval_split.py --corpus tau2   # each agent held out in turn
    .venv/bin/python bench/eval_split.py --corpus tau2 --train-model gpt-4.1 --test-model ft-gpt-4.1
    .venv/bin/python bench/eval_split.py --corpus medagentbench   # leave one model out, x4
    .venv/bin/python bench/eval_split.py --corpus intercode-bash  # half the tasks held out, x4
    .venv/bin/python bench/eval_split.py --every-corpus           # one table, every corpus

A split is one or more folds. `--split trial` (tau-bench airline's default) is one fold: the
`--train` trials against the `--test` trials, or with `--every-half` one fold for each way to
train on half the trials and hold out the rest (six for airline's four). `--split model` (the
default for tau2 and MedAgentBench) holds each model out in turn and evolves on the others
(with two models, both directions), or runs the one fold `--train-model`/`--test-model` name;
a model is named in full or by the start of its name (`ft-gpt-4.1` for `ft:gpt-4.1-...`).
`--split task` (InterCode's default) deals tasks into two halves by a hash, twice, and holds
each half out in turn: no task is on both sides. `--every-corpus` runs every shared corpus
with its default split (trial halves for airline, as `--every-half`) and prints, per corpus,
the mean over folds of compliance AUROC and of the naive predictors', and the margin over
the better naive predictor of each fold.

For each fold it evolves a library from the training runs only (the SKILL.md of every change,
written to OUT/library), writes the held-out runs to OUT/heldout.jsonl, chooses the compliance
threshold by cross-validation inside the training runs (evolve on all but one training group,
trial or model, and score that one; with a single group, its tasks are split into
`--inner-folds` folds instead), then runs `skillforge eval --library OUT/library
OUT/heldout.jsonl --threshold T` and prints it. Last, the library's convergence: a second cycle
over the fold's runs against that library. With several folds each goes to OUT/<test side>/,
and a summary gives every fold and all held-out runs pooled (each scored by its own fold's
library and threshold), with paired bootstrap intervals on the AUROC margins. When the folds
hold out the same runs more than once (`--every-half`), the pool would count them again: the
summary gives the mean over folds instead, and in how many folds compliance was ahead.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolver.changes import SkillDoc
from evolver.evaluate import (
    NAIVE,
    Report,
    auroc,
    blind,
    choose_threshold,
    convergence,
    cut,
    evaluate,
    naive_ends_clean,
)
from evolver.model import Trajectory
from evolver.pipeline import evolve
from skillforge import cli
from skillforge.importers.files import files_in, read_file

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpora" / "tau-bench-airline" / "gpt-4o-airline.json"
INTERCODE = SHARED / "corpora" / "intercode" / "data" / "results"
CORPORA = {  # name: (file or folder of result files, default split)
    "airline": (CORPUS, "trial"),
    "tau2": (SHARED / "corpora" / "tau2-bench-gpt41", "model"),
    "medagentbench": (SHARED / "corpora" / "medagentbench", "model"),
    "moatless": (SHARED / "corpora" / "moatless-swebench-lite" / "evaluations", "model"),
    "intercode-bash": (INTERCODE / "bash", "task"),
    "intercode-sql": (INTERCODE / "sql", "task"),
    "intercode-python": (INTERCODE / "python", "task"),
    "intercode-ctf": (INTERCODE / "ctf", "task"),
}
MIN_SIDE = 20  # runs an agent needs for a corpus of unknown make-up to be split by agent
TASK_SEEDS = 2  # a task split: this many ways to deal tasks into halves, each side held out
INNER_FOLDS = 5  # task folds for the threshold when the training side is a single group
NAME_WIDTH = 28  # longer names of held-out sides are cut short in the summary


@dataclass(frozen=True)
class Item:
    """One run of a corpus: the run, and its record in the skillforge schema (what goes to the
    held-out file `skillforge eval` reads)."""

    record: dict[str, Any]
    run: Trajectory

    @property
    def trial(self) -> Any:
        return self.run.metadata.get("trial")

    @property
    def model(self) -> str:
        return self.run.agent or "unknown"

    @property
    def task(self) -> str:
        """The benchmark task (domain and id; the task text when a format has no id)."""
        meta = self.run.metadata
        if meta.get("task_id") is None:
            return self.run.task
        return f"{meta.get('domain') or ''}/{meta['task_id']}"


def load_corpus(path: Path) -> list[Item]:
    """Every run of a result file, or of the files below a folder, in file order: any format
    `skillforge import` reads (benchmark results, JSONL of records, agent transcripts), so a
    corpus of another agent shape is measured the same way. A folder's model names come from
    each file's name (MedAgentBench's `<model>_overall.json`) or its runs (tau2's agent)."""
    items: list[Item] = []
    for file in files_in([path]):
        for found in read_file(file):
            if isinstance(found, Trajectory):
                items.append(Item(found.model_dump(mode="json", exclude_none=True), found))
    if not items:
        raise SystemExit(f"no runs in {path}")
    return items


def library_from(runs: Sequence[Trajectory]) -> list[SkillDoc]:
    """The skills one cycle writes from `runs`, starting from an empty library."""
    changes = evolve(list(runs), []).changes
    return [SkillDoc(name=c.skill, text=c.content, files=c.files) for c in changes if c.content]


def inner_groups(train: Sequence[Item], key: Callable[[Item], Any], folds: int) -> list[set[int]]:
    """The training runs (by index) in the groups cross-validation leaves out one at a time:
    the training groups (trials or models), or, when there is only one, `folds` folds of its
    tasks (sorted, dealt round-robin), so that no task is on both sides of an inner split."""
    values = sorted({key(i) for i in train}, key=str)
    if len(values) >= 2:
        return [{n for n, i in enumerate(train) if key(i) == v} for v in values]
    tasks = sorted({i.task for i in train})
    fold_of = {t: n % folds for n, t in enumerate(tasks)}
    groups = [{n for n, i in enumerate(train) if fold_of[i.task] == f} for f in range(folds)]
    return [g for g in groups if g]


def cv_threshold(train: Sequence[Item], groups: Sequence[set[int]]) -> float:
    """Compliance threshold chosen on the training runs alone: leave one group out, evolve on
    the rest, score the left-out group, and take the best Youden's J over all of them."""
    if len(groups) < 2:
        return 0.5
    scores: list[float] = []
    labels: list[bool] = []
    for held in groups:
        fit = [i.run for n, i in enumerate(train) if n not in held]
        runs = [train[n].run for n in sorted(held)]
        report = evaluate(library_from(fit), runs)
        for row in report.scored:
            if row.compliance is not None:
                scores.append(row.compliance)
                labels.append(row.success)
    return choose_threshold(scores, labels)


Row = tuple[float, Trajectory, bool]  # (compliance, the run, success)


def _margin(sample: list[Row], predictor: Callable[[Trajectory], float]) -> float | None:
    labels = [y for _, _, y in sample]
    ours = auroc([c for c, _, _ in sample], labels)
    naive = auroc([predictor(r) for _, r, _ in sample], labels)
    return None if ours is None or naive is None else ours - naive


def margins(rows: list[Row], resamples: int = 2000) -> dict[str, tuple[float, float, float]]:
    """Compliance AUROC minus each naive predictor's on the same rows: the margin and a 95%
    paired bootstrap interval (resampling runs, fixed seed)."""
    rng = random.Random(0)
    out = {}
    for name, predictor in NAIVE.items():
        point = _margin(rows, predictor)
        draws = (_margin([rng.choice(rows) for _ in rows], predictor) for _ in range(resamples))
        kept = sorted(d for d in draws if d is not None)
        if point is not None and kept:
            out[name] = (point, kept[int(0.025 * len(kept))], kept[int(0.975 * len(kept)) - 1])
    return out


def matched_rows(report: Report, runs: Sequence[Trajectory]) -> list[Row]:
    by_id = {r.id: r for r in runs}
    return [
        (s.compliance, by_id[s.run], s.success) for s in report.scored if s.compliance is not None
    ]


@dataclass(frozen=True)
class Fold:
    """One train/test split: what each side is called and the runs on it."""

    side: str  # "trials" or "models"
    train_names: list[Any]
    test_names: list[Any]
    train: list[Item]
    test: list[Item]

    @property
    def label(self) -> str:
        return re.sub(r"[^A-Za-z0-9.]+", "-", "test-" + "+".join(map(str, self.test_names)))


@dataclass(frozen=True)
class Outcome:
    """A fold's held-out figures: its threshold, the runs, and each matched run's row."""

    fold: Fold
    skills: int
    threshold: float
    runs: int  # held-out runs with a known outcome
    rows: list[Row]  # the matched ones


def resolve_models(names: Sequence[str], models: Sequence[str]) -> list[str]:
    """Each name as a model of the corpus: the model of that name, else the only one whose
    name (with `:` read as `-`) starts with it."""
    out = []
    for name in names:
        if name in models:
            out.append(name)
            continue
        hits = [m for m in models if m.replace(":", "-").lower().startswith(name.lower())]
        if len(hits) != 1:
            known = ", ".join(models)
            why = "matches none" if not hits else "is ambiguous"
            raise SystemExit(f"model {name!r} {why}; the corpus has: {known}")
        out.append(hits[0])
    return out


def default_split(items: Sequence[Item]) -> str:
    """The split for a corpus of unknown make-up: by model when two agents or more each made a
    tenth of its runs (at least `MIN_SIDE`): the library must hold on an agent it did not learn
    from; else by trial when tasks were run several times, else by task."""
    runs = Counter(i.model for i in items)
    if sum(n >= max(MIN_SIDE, len(items) / 10) for n in runs.values()) >= 2:
        return "model"
    if len({i.trial for i in items} - {None}) >= 2:
        return "trial"
    return "task"


def corpus_folds(items: Sequence[Item], split: str) -> list[Fold]:
    """The folds the every-corpus table measures a split by: every half of the trials, each
    model held out in turn, or the task halves."""
    return every_half(items) if split == "trial" else folds_of(items, split)


def every_half(items: Sequence[Item]) -> list[Fold]:
    """A trial fold for each way to train on half of the corpus's trials and hold out the
    rest, the first trials in training first (0 1 -> 2 3 leads for four trials)."""
    trials = sorted({i.trial for i in items})
    if len(trials) < 2:
        raise SystemExit(f"--every-half needs two trials or more; the corpus has {trials}")
    halves = itertools.combinations(trials, len(trials) // 2)
    return [
        folds_of(items, "trial", train, [t for t in trials if t not in train])[0]
        for train in map(list, halves)
    ]


def task_halves(items: Sequence[Item], seeds: int = TASK_SEEDS) -> list[Fold]:
    """Folds that hold out half of the tasks: for each seed, tasks are dealt into two halves by
    a hash, and each half is held out in turn, so no task is on both sides."""
    folds: list[Fold] = []
    for seed in range(seeds):

        def half(item: Item, seed: int = seed) -> int:
            return hashlib.sha256(f"{seed}:{item.task}".encode()).digest()[0] % 2

        for side in (0, 1):
            name = f"tasks{seed}{'ab'[side]}"
            train = [i for i in items if half(i) != side]
            test = [i for i in items if half(i) == side]
            if train and test:
                folds.append(Fold("tasks", [f"rest of {name}"], [name], train, test))
    if not folds:
        raise SystemExit("a task split needs two tasks or more")
    return folds


def folds_of(
    items: Sequence[Item],
    split: str,
    train: Sequence[Any] | None = None,
    test: Sequence[Any] | None = None,
) -> list[Fold]:
    """The folds of a split. Trials: the one fold `train` against `test`. Models: the one fold
    named, the rest on the other side when only one side is named, or each model held out in
    turn against all the others when neither is."""
    if split == "task":
        return task_halves(items)
    if split == "trial":
        train_t, test_t = list(train or [0, 1]), list(test or [2, 3])
        if set(train_t) & set(test_t):
            raise SystemExit("the training and held-out trials overlap")
        fold = Fold(
            "trials",
            train_t,
            test_t,
            [i for i in items if i.trial in train_t],
            [i for i in items if i.trial in test_t],
        )
        if not fold.train or not fold.test:
            raise SystemExit(f"no runs for trials {train_t} or {test_t} in this corpus")
        return [fold]
    models = sorted({i.model for i in items})
    picked_train = resolve_models(train, models) if train else None
    picked_test = resolve_models(test, models) if test else None
    if picked_train and picked_test and set(picked_train) & set(picked_test):
        raise SystemExit("the training and held-out models overlap")
    if picked_train or picked_test:
        tr = picked_train or [m for m in models if m not in (picked_test or [])]
        te = picked_test or [m for m in models if m not in tr]
        sides = [(tr, te)]
    else:
        if len(models) < 2:
            raise SystemExit(f"a model split needs two models or more; the corpus has {models}")
        sides = [([m for m in models if m != held], [held]) for held in models]
    folds = []
    for tr, te in sides:
        fold = Fold(
            "models",
            tr,
            te,
            [i for i in items if i.model in tr],
            [i for i in items if i.model in te],
        )
        if not fold.train or not fold.test:
            raise SystemExit(f"no runs to train on {tr} or to test on {te}")
        folds.append(fold)
    return folds


def run_fold(fold: Fold, out: Path, inner_folds: int = INNER_FOLDS) -> tuple[int, Outcome]:
    """Evolve, write, choose the threshold, run `skillforge eval`; print as it goes."""
    library = library_from([i.run for i in fold.train])
    shutil.rmtree(out / "library", ignore_errors=True)  # a previous run's skills would linger
    for doc in library:
        (out / "library" / doc.name).mkdir(parents=True, exist_ok=True)
        (out / "library" / doc.name / "SKILL.md").write_text(doc.text, encoding="utf-8")
        for file, text in doc.files.items():
            (out / "library" / doc.name / file).write_text(text, encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    heldout = out / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(i.record) + "\n" for i in fold.test), encoding="utf-8")
    key = (lambda i: i.trial) if fold.side == "trials" else (lambda i: i.model)
    groups = inner_groups(fold.train, key, inner_folds)
    threshold = cv_threshold(fold.train, groups)
    names = fold.train_names
    print(f"evolved on {fold.side} {names} ({len(fold.train)} runs): {len(library)} skills")
    how = (
        f"leave-one-{fold.side[:-1]}-out"
        if len({key(i) for i in fold.train}) >= 2
        else f"leave-one-task-fold-out ({len(groups)} folds of its tasks)"
    )
    print(f"threshold {threshold:.3f}, chosen by {how} inside {fold.side} {names}")
    command = ["eval", "--library", str(out / "library"), str(heldout), "--threshold"]
    command.append(f"{threshold:.3f}")
    print("$ skillforge " + " ".join(command), flush=True)
    code = cli.main(command)
    runs = [i.run for i in fold.test]
    report = evaluate(library, runs, threshold=threshold)
    rows = matched_rows(report, runs)
    for name, (point, lo, hi) in margins(rows).items():
        print(
            f"compliance AUROC minus {name!r} AUROC: {point:+.2f} "
            f"(95% paired bootstrap interval {lo:+.2f} to {hi:+.2f})"
        )
    both = [i.run for i in fold.train + fold.test]
    share = convergence(evolve(both, library), library)
    print(
        f"second cycle over {fold.side} {fold.train_names + fold.test_names} ({len(both)} runs) "
        f"against this library: {share:.0%} of its runs needed a new or changed skill"
    )
    return code, Outcome(fold, len(library), threshold, report.runs, rows)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _rate(yes: int, n: int) -> str:
    return f"{yes / n:.0%} ({yes}/{n})" if n else "n/a"


def summary_line(name: str, width: int, runs: int, rows: list[Row], thresholds: list[float]) -> str:
    """One fold, or the pool: coverage, the three AUROCs, compliant vs other success, margins."""
    labels = [y for _, _, y in rows]
    compliant = [y for (c, _, y), t in zip(rows, thresholds, strict=True) if c >= t]
    others = [y for (c, _, y), t in zip(rows, thresholds, strict=True) if c < t]
    naive = [_num(auroc([f(r) for _, r, _ in rows], labels)) for f in NAIVE.values()]
    found = margins(rows)
    spans = ["{:+.2f} [{:+.2f}, {:+.2f}]".format(*found[k]) if k in found else "n/a" for k in NAIVE]
    cover = f"{len(rows) / runs:.0%}" if runs else "n/a"
    return (
        f"{name:<{width}} {f'{len(rows)}/{runs}':>7} {cover:>5}  "
        f"{_num(auroc([c for c, _, _ in rows], labels)):>5} {naive[0]:>6} {naive[1]:>6}  "
        f"{_rate(sum(compliant), len(compliant)):>13} {_rate(sum(others), len(others)):>13}  "
        f"{spans[0]:>20} {spans[1]:>20}"
    )


def path_blind(outcomes: Sequence[Outcome], items: Sequence[Item]) -> tuple[int, int, int]:
    """(failed held-out runs, those that called the same tools in the same order as a
    successful run of the same task, those that did as any successful run of the corpus).
    Outcomes are read here only, after scoring, to say what a tool-path score could see."""
    solved: dict[str, set[tuple[str, ...]]] = {}
    for i in items:
        if i.run.succeeded:
            solved.setdefault(i.task, set()).add(tuple(c.name for c in i.run.tool_calls))
    anywhere = set().union(*solved.values())
    held = {i.run.id: i for o in outcomes for i in o.fold.test}  # each run once
    failed = [i for i in held.values() if i.run.succeeded is False]
    paths = [(i.task, tuple(c.name for c in i.run.tool_calls)) for i in failed]
    same_task = sum(1 for task, path in paths if path in solved.get(task, ()))
    same_any = sum(1 for _, path in paths if path in anywhere)
    return len(failed), same_task, same_any


def mean_line(outcomes: Sequence[Outcome]) -> str:
    """The folds' mean AUROCs and margins, and in how many folds compliance was ahead of each
    naive predictor (for folds that hold out the same runs more than once)."""
    ours: list[float] = []
    naive: dict[str, list[float]] = {name: [] for name in NAIVE}
    for o in outcomes:
        labels = [y for _, _, y in o.rows]
        score = auroc([c for c, _, _ in o.rows], labels)
        if score is None:  # one class only: no AUROC for any predictor
            continue
        ours.append(score)
        for name, predictor in NAIVE.items():
            naive[name].append(auroc([predictor(r) for _, r, _ in o.rows], labels) or 0.0)
    if not ours:
        return f"mean of {len(outcomes)} folds: no fold has both successes and failures"
    parts = [f"mean of {len(ours)} folds: compliance AUROC {statistics.fmean(ours):.2f}"]
    for name, aucs in naive.items():
        margin = statistics.fmean(a - b for a, b in zip(ours, aucs, strict=True))
        ahead = sum(1 for a, b in zip(ours, aucs, strict=True) if a > b)
        parts.append(
            f"{name} {statistics.fmean(aucs):.2f} (margin {margin:+.2f}, "
            f"ahead in {ahead} of {len(ours)})"
        )
    return "; ".join(parts)


def print_summary(outcomes: list[Outcome], items: Sequence[Item]) -> None:
    names = ["+".join(map(str, o.fold.test_names)) for o in outcomes]
    names = [n if len(n) <= NAME_WIDTH else n[: NAME_WIDTH - 3] + "..." for n in names]
    width = max(len(n) for n in [*names, "HELD OUT"])
    print(
        f"{'HELD OUT':<{width}} {'MATCHED':>7} {'COVER':>5}  {'AUROC':>5} {'NO-ERR':>6} "
        f"{'FEWER':>6}  {'COMPLIANT OK':>13} {'OTHERS OK':>13}  "
        f"{'MINUS NO-ERR [95%]':>20} {'MINUS FEWER [95%]':>20}"
    )
    pooled: list[Row] = []
    cuts: list[float] = []
    for name, o in zip(names, outcomes, strict=True):
        print(summary_line(name, width, o.runs, o.rows, [o.threshold] * len(o.rows)))
        pooled += o.rows
        cuts += [o.threshold] * len(o.rows)
    if len({r.id for _, r, _ in pooled}) == len(pooled):
        print(summary_line("pooled", width, sum(o.runs for o in outcomes), pooled, cuts))
        print(
            "pooled: every held-out run once, scored by its own fold's library and threshold "
            f"(thresholds {', '.join(f'{o.threshold:.3f}' for o in outcomes)})"
        )
    else:
        print(mean_line(outcomes))
    failed, same_task, same_any = path_blind(outcomes, items)
    print(
        f"{same_task} of {failed} failed held-out runs called the same tools in the same order "
        f"as a successful run of the same task, {same_any} as some successful run: by tool path "
        "alone, those look like a success"
    )


def fold_aurocs(
    fold: Fold, prefix: int | None = None
) -> tuple[int, float, dict[str, float], float] | None:
    """One fold, figures only: held-out runs matched, compliance AUROC, naive AUROCs, and the
    AUROC of "the last call succeeded" alone (shown beside them, not one of them). With
    `prefix`, every figure is of the held-out runs cut after that many tool calls."""
    library = library_from([i.run for i in fold.train])
    runs = [i.run for i in fold.test]
    if prefix is not None:
        runs = [c for c in (cut(r, prefix) for r in runs) if c is not None]
    rows = matched_rows(evaluate(library, runs), runs)
    labels = [y for _, _, y in rows]
    ours = auroc([c for c, _, _ in rows], labels)
    naive = {k: auroc([f(r) for _, r, _ in rows], labels) for k, f in NAIVE.items()}
    ends = auroc([naive_ends_clean(blind(r)) for _, r, _ in rows], labels)
    if ours is None or ends is None or any(v is None for v in naive.values()):
        return None
    return len(rows), ours, {k: v for k, v in naive.items() if v is not None}, ends


def corpus_table(
    split: str | None = None, only: Sequence[str] = (), prefix: int | None = None
) -> int:
    """Every shared corpus (or those in `only`, which may also name a file or folder of runs in
    any importable shape), its default split (or `split`; `default_split` for a path), the mean
    over folds of compliance AUROC and of the best naive predictor's, and the margin; prints one
    line per corpus. With `prefix`, of the held-out runs cut after that many tool calls."""
    if prefix is not None:
        print(f"held-out runs cut after their first {prefix} tool calls (shorter runs left out)")
    print(
        f"{'CORPUS':<17} {'SPLIT':<6} {'FOLDS':>5} {'RUNS':>6} {'AUROC':>6} {'NO-ERR':>6} "
        f"{'FEWER':>6} {'BEST':>6} {'MARGIN':>7} {'AHEAD':>6} {'END-OK':>6}"
    )
    chosen: dict[str, tuple[Path, str | None]] = {
        name: where for name, where in CORPORA.items() if not only or name in only
    }
    for extra in (o for o in only if o not in CORPORA):  # a corpus of another shape, by path
        chosen[Path(extra).name[:17] or extra] = (Path(extra), None)
    for name, (path, default) in chosen.items():
        if not path.exists():
            print(f"{name:<17} missing: {path}")
            continue
        items = load_corpus(path)
        how = split or default or default_split(items)
        folds = corpus_folds(items, how)
        got = [f for f in (fold_aurocs(fold, prefix) for fold in folds) if f is not None]
        if not got:
            print(f"{name:<17} {how:<6} no fold with both outcomes")
            continue
        mean = statistics.mean(a for _, a, _, _ in got)
        naive = {k: statistics.mean(n[k] for _, _, n, _ in got) for k in NAIVE}
        best = statistics.mean(max(n.values()) for _, _, n, _ in got)
        ahead = sum(1 for _, a, n, _ in got if a > max(n.values()))
        runs = sum(r for r, _, _, _ in got)
        ends = statistics.mean(e for _, _, _, e in got)
        print(
            f"{name:<17} {how:<6} {len(got):>5} {runs:>6} {mean:>6.2f} "
            f"{naive['no tool errors']:>6.2f} {naive['fewer tool calls']:>6.2f} {best:>6.2f} "
            f"{mean - best:>+7.2f} {ahead:>3}/{len(got):<2} {ends:>6.2f}",
            flush=True,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--corpus",
        default="airline",
        help=f"{', '.join(CORPORA)}, or a file or folder of runs in any importable format, split "
        "by model, trial or task, whichever it has first (default airline)",
    )
    parser.add_argument("--split", choices=["trial", "model", "task"], help="default: by corpus")
    parser.add_argument(
        "--every-corpus",
        action="store_true",
        help="one table: every shared corpus with its default split, mean over its folds",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="CORPUS",
        help="with --every-corpus: these corpora only; a file or folder of runs adds a row",
    )
    parser.add_argument(
        "--prefix",
        type=int,
        metavar="K",
        help="with --every-corpus: score each held-out run on its first K tool calls only",
    )
    parser.add_argument("--train", type=int, nargs="+", metavar="TRIAL", help="default 0 1")
    parser.add_argument("--test", type=int, nargs="+", metavar="TRIAL", help="default 2 3")
    parser.add_argument(
        "--every-half",
        action="store_true",
        help="trial split: every way to train on half the trials and hold out the rest",
    )
    parser.add_argument("--train-model", nargs="+", metavar="MODEL")
    parser.add_argument("--test-model", nargs="+", metavar="MODEL")
    parser.add_argument(
        "--inner-folds",
        type=int,
        default=INNER_FOLDS,
        metavar="K",
        help=f"task folds for the threshold when training on one group (default {INNER_FOLDS})",
    )
    parser.add_argument("--out", type=Path, help="where to write the library and held-out runs")
    args = parser.parse_args(argv)
    if args.every_corpus:
        return corpus_table(args.split, args.only or (), args.prefix)
    path, known = CORPORA.get(args.corpus, (Path(args.corpus), None))
    items = load_corpus(path)
    split = args.split or known or default_split(items)
    if split == "trial" and (args.train_model or args.test_model):
        parser.error("--train-model/--test-model need --split model")
    if split == "model" and (args.train or args.test):
        parser.error(
            "--train/--test name trials; with --split model use --train-model/--test-model"
        )
    if args.every_half and (split != "trial" or args.train or args.test):
        parser.error("--every-half is a trial split, and it chooses --train/--test itself")
    if args.every_half or (split == "trial" and known is None and not args.train):
        folds = every_half(items)
    elif split == "trial":
        folds = folds_of(items, split, args.train, args.test)
    else:
        folds = folds_of(items, split, args.train_model, args.test_model)
    out = args.out or Path(tempfile.mkdtemp(prefix="skillforge-eval-"))
    outcomes: list[Outcome] = []
    code = 0
    for n, fold in enumerate(folds, 1):
        if len(folds) > 1:
            print(
                f"== fold {n} of {len(folds)}: held out {fold.side} {fold.test_names} "
                f"({len(fold.test)} runs)"
            )
        fold_code, outcome = run_fold(
            fold, out / fold.label if len(folds) > 1 else out, args.inner_folds
        )
        code = code or fold_code
        outcomes.append(outcome)
        if len(folds) > 1:
            print()
    if len(folds) > 1:
        print_summary(outcomes, items)
    return code


if __name__ == "__main__":
    sys.exit(main())
