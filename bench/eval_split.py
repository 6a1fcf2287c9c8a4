"""Reproduce the held-out evaluation end to end: evolve on some trials, evaluate on others.

    .venv/bin/python bench/eval_split.py                 # tau-bench airline, 0-1 -> 2-3
    .venv/bin/python bench/eval_split.py --out /tmp/split --train 0 1 --test 2 3

Evolves a library from the training trials only (the SKILL.md of every change, written to
OUT/library), writes the held-out trials to OUT/heldout.jsonl, chooses the compliance threshold
by cross-validation inside the training trials (evolve on all but one, score that one), then
runs `skillforge eval --library OUT/library OUT/heldout.jsonl --threshold T` and prints it.
Last, the library's convergence: a second cycle over all the runs against that library.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evolver.changes import SkillDoc
from evolver.evaluate import NAIVE, Report, auroc, choose_threshold, convergence, evaluate
from evolver.model import Trajectory
from evolver.pipeline import evolve
from skillforge import cli
from skillforge.importers import parse_record

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpora" / "tau-bench-airline" / "gpt-4o-airline.json"


def library_of(records: list[dict[str, Any]]) -> list[SkillDoc]:
    """The skills one cycle writes from `records`, starting from an empty library."""
    changes = evolve([parse_record(r) for r in records], []).changes
    return [SkillDoc(name=c.skill, text=c.content) for c in changes if c.content]


def cv_threshold(records: list[dict[str, Any]], trials: list[int]) -> float:
    """Compliance threshold chosen on the training trials alone: leave one trial out, evolve on
    the rest, score the left-out trial, and take the best Youden's J over all of them."""
    if len(trials) < 2:
        return 0.5
    scores: list[float] = []
    labels: list[bool] = []
    for held in trials:
        fit = [r for r in records if r["trial"] in trials and r["trial"] != held]
        runs = [parse_record(r) for r in records if r["trial"] == held]
        report = evaluate(library_of(fit), runs)
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


def auroc_margins(
    report: Report, runs: list[Trajectory], resamples: int = 2000
) -> dict[str, tuple[float, float, float]]:
    """Compliance AUROC minus each naive predictor's on the same matched runs: the margin and a
    95% paired bootstrap interval (resampling runs, fixed seed)."""
    by_id = {r.id: r for r in runs}
    rows = [
        (s.compliance, by_id[s.run], s.success) for s in report.scored if s.compliance is not None
    ]
    rng = random.Random(0)
    out = {}
    for name, predictor in NAIVE.items():
        point = _margin(rows, predictor)
        draws = (_margin([rng.choice(rows) for _ in rows], predictor) for _ in range(resamples))
        kept = sorted(d for d in draws if d is not None)
        if point is not None and kept:
            out[name] = (point, kept[int(0.025 * len(kept))], kept[int(0.975 * len(kept)) - 1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a tau-bench result file")
    parser.add_argument("--train", type=int, nargs="+", default=[0, 1], metavar="TRIAL")
    parser.add_argument("--test", type=int, nargs="+", default=[2, 3], metavar="TRIAL")
    parser.add_argument("--out", type=Path, help="where to write the library and held-out runs")
    args = parser.parse_args(argv)
    if set(args.train) & set(args.test):
        parser.error("the training and held-out trials overlap")
    records = json.loads(args.corpus.read_text(encoding="utf-8"))
    train = [r for r in records if r["trial"] in args.train]
    test = [r for r in records if r["trial"] in args.test]
    out = args.out or Path(tempfile.mkdtemp(prefix="skillforge-eval-"))
    library = library_of(train)
    for doc in library:
        (out / "library" / doc.name).mkdir(parents=True, exist_ok=True)
        (out / "library" / doc.name / "SKILL.md").write_text(doc.text, encoding="utf-8")
    heldout = out / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(r) + "\n" for r in test), encoding="utf-8")
    threshold = cv_threshold(records, args.train)
    print(f"evolved on trials {args.train} ({len(train)} runs): {len(library)} skills")
    print(f"threshold {threshold:.3f}, chosen by leave-one-trial-out inside trials {args.train}")
    command = ["eval", "--library", str(out / "library"), str(heldout), "--threshold"]
    command.append(f"{threshold:.3f}")
    print("$ skillforge " + " ".join(command), flush=True)
    code = cli.main(command)
    runs = [parse_record(r) for r in test]
    report = evaluate(library, runs, threshold=threshold)
    for name, (point, lo, hi) in auroc_margins(report, runs).items():
        print(
            f"compliance AUROC minus {name!r} AUROC: {point:+.2f} "
            f"(95% paired bootstrap interval {lo:+.2f} to {hi:+.2f})"
        )
    both = [parse_record(r) for r in train + test]
    share = convergence(evolve(both, library), library)
    print(
        f"second cycle over trials {args.train + args.test} ({len(both)} runs) against this "
        f"library: {share:.0%} of its runs needed a new or changed skill"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
