"""`skillforge eval --library DIR TRAJECTORIES...`: score a library against held-out runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from evolver.changes import SkillDoc
from evolver.checks import CHECKS_FILE
from evolver.evaluate import COMPLIANT, Report, Score, convergence, evaluate
from evolver.model import Trajectory
from evolver.pipeline import evolve

from ..errors import ConfigError, IntakeError
from ..importers.files import files_in, read_file
from ..output import write_line


def load_library(folder: Path) -> list[SkillDoc]:
    """Every `<name>/SKILL.md` directly under `folder`, with its checks.json, sorted by name."""
    if not folder.is_dir():
        raise ConfigError(f"library {folder} is not a folder of <name>/SKILL.md skills")
    docs = [
        SkillDoc(
            name=path.parent.name,
            text=path.read_text(encoding="utf-8", errors="replace"),
            files=_extra_files(path.parent),
        )
        for path in sorted(folder.glob("*/SKILL.md"))
        if path.is_file()
    ]
    if not docs:
        raise ConfigError(f"library {folder} holds no <name>/SKILL.md")
    return docs


def _extra_files(folder: Path) -> dict[str, str]:
    """The files skillforge keeps beside a SKILL.md (checks.json), when present."""
    path = folder / CHECKS_FILE
    if path.is_file() and not path.is_symlink():
        return {CHECKS_FILE: path.read_text(encoding="utf-8", errors="replace")}
    return {}


def load_runs(paths: list[Path]) -> tuple[list[Trajectory], int]:
    """The runs in files and folders, in every format `skillforge import` reads (JSONL, JSON
    documents, SWE-agent .traj, Claude Code and Codex sessions, OTLP); with the number of
    records or files that were not runs (skipped)."""
    runs: list[Trajectory] = []
    skipped = 0
    for path in files_in(paths):
        for item in read_file(path):
            if isinstance(item, Trajectory):
                runs.append(item)
            else:
                skipped += 1
    return runs, skipped


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


_HEADER = (
    f"{'SKILL':<32} {'RUNS':>4} {'SUCCESS':>7}  {'COMPLIANT':>9} {'OK%':>4}  {'OTHERS':>6} "
    f"{'OK%':>4}  {'AUROC':>5}  {'NO-ERRORS':>9}  {'FEWER-CALLS':>11}"
)


def _row(score: Score) -> str:
    rate = score.successes / score.runs if score.runs else None
    naive = [_num(v) for v in score.naive.values()]
    return (
        f"{score.name:<32} {score.runs:>4} {_pct(rate):>7}  {score.compliant:>9} "
        f"{_pct(score.compliant_rate):>4}  {score.noncompliant:>6} "
        f"{_pct(score.noncompliant_rate):>4}  {_num(score.auroc):>5}  {naive[0]:>9}  "
        f"{naive[1]:>11}"
    )


def _print_table(folder: Path, skills: int, report: Report, skipped: int) -> None:
    write_line(
        f"library {folder}: {skills} skills; {report.runs} held-out runs with a known outcome"
        + (f" ({skipped} records skipped: not trajectories)" if skipped else "")
    )
    write_line(
        f"coverage {_pct(report.coverage)}: {report.matched} of {report.runs} runs fall under "
        "a skill"
    )
    write_line("")
    write_line(_HEADER)
    for score in report.skills:
        write_line(_row(score))
    write_line(_row(report.overall))
    write_line("")
    o = report.overall
    naive = ", ".join(f"{name} {_num(v)}" for name, v in o.naive.items())
    write_line(f"compliance AUROC {_num(o.auroc)}; naive predictors on the same runs: {naive}")
    write_line(
        f"compliant runs (score >= {report.threshold:g}) succeeded {_pct(o.compliant_rate)} "
        f"({o.compliant_successes}/{o.compliant}); the others {_pct(o.noncompliant_rate)} "
        f"({o.noncompliant_successes}/{o.noncompliant})"
    )
    if report.convergence is not None:
        write_line(
            f"convergence {_pct(report.convergence)}: share of these runs that a cycle against "
            "this library would give a new or changed skill"
        )


def _score_json(score: Score) -> dict[str, Any]:
    return {
        "name": score.name,
        "runs": score.runs,
        "successes": score.successes,
        "compliant": {
            "runs": score.compliant,
            "successes": score.compliant_successes,
            "success_rate": score.compliant_rate,
        },
        "noncompliant": {
            "runs": score.noncompliant,
            "successes": score.noncompliant_successes,
            "success_rate": score.noncompliant_rate,
        },
        "auroc": score.auroc,
        "naive_auroc": dict(score.naive),
    }


def report_json(folder: Path, report: Report, skipped: int = 0) -> dict[str, Any]:
    """The report as plain JSON data (what `--json` prints)."""
    return {
        "library": str(folder),
        "runs": report.runs,
        "skipped_records": skipped,
        "matched": report.matched,
        "coverage": report.coverage,
        "threshold": report.threshold,
        "overall": _score_json(report.overall),
        "skills": [_score_json(s) for s in report.skills],
        "convergence": report.convergence,
        "scored": [vars(s) for s in report.scored],
    }


def eval_library(
    library: Path,
    paths: list[Path],
    *,
    as_json: bool = False,
    threshold: float | None = None,
    prefix: int | None = None,
) -> int:
    """Score the skills in `library` against the runs in `paths`; print a table or JSON. With
    `prefix`, each run on its first `prefix` tool calls only (`evolver.evaluate.cut`)."""
    if prefix is not None and prefix < 1:
        raise ConfigError(f"--prefix must be 1 or more, not {prefix}")
    threshold = COMPLIANT if threshold is None else threshold
    docs = load_library(library)
    runs, skipped = load_runs(paths)
    if not runs:
        raise IntakeError("no trajectories found in " + ", ".join(map(str, paths)))
    report = evaluate(docs, runs, threshold=threshold, prefix=prefix)
    cycle = evolve(runs, docs)
    report = replace(report, convergence=convergence(cycle, docs))
    if as_json:
        data = report_json(library, report, skipped)
        write_line(json.dumps({**data, "prefix": prefix} if prefix else data, indent=2))
    else:
        if prefix is not None:
            known = sum(1 for r in runs if r.succeeded is not None)
            write_line(
                f"scored on their first {prefix} tool calls: {known - report.runs} runs with "
                "fewer left out"
            )
        _print_table(library, len(docs), report, skipped)
    return 0
