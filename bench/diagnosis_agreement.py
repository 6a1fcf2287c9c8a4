"""How often the diagnosed root cause names a gold action that tau2-bench says was missed.

For each failed tau2 run with at least one unmatched gold action (`reward_info.action_checks`),
a method agrees when a tool it names is the name of an unmatched gold action. The diagnosis
names `tool` and `expected`; the naive baselines name the run's last tool call and its first
failing call. Also prints the category distribution of every corpus given.

    .venv/bin/python bench/diagnosis_agreement.py [TAU2_DIR] [--airline FILE] [--mab DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from evolver.diagnose import Diagnosis, diagnose, diagnose_all
from evolver.model import Trajectory
from skillforge.importers import parse_record, records_in_document

CORPORA = Path("/work/shared/corpora")
Method = Callable[[Trajectory, Diagnosis, Diagnosis], set[str]]


def load(paths: Iterable[Path]) -> list[Trajectory]:
    """Every run of the given .json files, through skillforge's importers."""
    runs: list[Trajectory] = []
    for path in sorted(paths):
        document = json.loads(path.read_bytes())
        runs += [parse_record(r) for r in records_in_document(document, source_name=str(path))]
    return runs


def unmatched(run: Trajectory, agent_only: bool = False) -> set[str]:
    """Names of the gold actions tau2-bench says this run did not match."""
    return {
        c["name"]
        for c in run.metadata.get("action_checks") or []
        if not c["match"] and (not agent_only or c.get("requestor") == "assistant")
    }


def airline_unmatched(path: Path) -> dict[str, set[str]]:
    """tau-bench airline, derived: gold actions (name + kwargs) no call of the run repeated."""
    out: dict[str, set[str]] = {}
    for record in json.loads(path.read_bytes()):
        run = parse_record(record)
        gold = record["info"]["task"]["actions"]
        out[run.id] = {
            a["name"]
            for a in gold
            if not any(c.name == a["name"] and c.arguments == a["kwargs"] for c in run.tool_calls)
        }
    return out


def _last(run: Trajectory) -> set[str]:
    return {run.tool_calls[-1].name} if run.tool_calls else set()


def _first_error(run: Trajectory) -> set[str]:
    return next(({c.name} for c in run.tool_calls if c.error), set())


def _named(d: Diagnosis) -> set[str]:
    return {t for t in (d.tool, d.expected) if t}


METHODS: dict[str, Method] = {
    "diagnosis (tool or expected)": lambda r, d, _: _named(d),
    "diagnosis (tool only)": lambda r, d, _: {d.tool} if d.tool else set(),
    "diagnosis, last call when unknown": lambda r, d, _: _named(d) or _last(r),
    "precedence: errors before contrast": lambda r, d, e: _named(e if _first_error(r) else d),
    "without contrast (errors only)": lambda r, _, e: _named(e),
    "baseline: last tool call": lambda r, d, _: _last(r),
    "baseline: first failing call": lambda r, d, _: _first_error(r),
}


def agreement(runs: Sequence[Trajectory], missed: Callable[[Trajectory], set[str]]) -> list[str]:
    """Rows of the agreement table: overall, per domain, with and without contrast."""
    diagnoses = {d.trajectory_id: d for d in diagnose_all(runs)}
    failed = [r for r in runs if r.succeeded is False and missed(r)]

    def groups(run: Trajectory) -> list[str]:
        contrast = "with contrast" if diagnoses[run.id].contrast_runs else "no contrast"
        domain = run.metadata.get("domain")
        return ["all", str(domain), contrast] if domain else ["all", contrast]

    columns = sorted({g for r in failed for g in groups(r)}, key=_column_order)
    totals = Counter(g for r in failed for g in groups(r))
    rows = [["method", *columns], ["failed runs with a missed gold action"]]
    rows[-1] += [str(totals[c]) for c in columns]
    for name, method in METHODS.items():
        hits: Counter[str] = Counter()
        for run in failed:
            named = method(run, diagnoses[run.id], diagnose(run))
            if named & missed(run):
                hits.update(groups(run))
        rows.append([name] + [_rate(hits[c], totals[c]) for c in columns])
    return _table(rows)


def _column_order(column: str) -> tuple[int, str]:
    return ({"all": 0, "with contrast": 2, "no contrast": 3}.get(column, 1), column)


def categories(runs: Sequence[Trajectory]) -> str:
    """`category n (share)` for every failed run of a corpus."""
    found = diagnose_all(runs)
    counts = Counter(d.category.value for d in found)
    contrast = sum(1 for d in found if d.contrast_runs)
    parts = [f"{c} {n}" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"{len(found)} failed runs ({contrast} with contrast): " + ", ".join(parts)


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.0%})" if total else "-"


def _table(rows: list[list[str]]) -> list[str]:
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    sizes = [max(len(r[i]) for r in rows) for i in range(width)]
    lines = ["| " + " | ".join(c.ljust(sizes[i]) for i, c in enumerate(r)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (s + 2) for s in sizes) + "|")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("tau2", nargs="?", type=Path, default=CORPORA / "tau2-bench-gpt41")
    parser.add_argument("--airline", type=Path, default=CORPORA / "tau-bench-airline")
    parser.add_argument("--mab", type=Path, default=CORPORA / "medagentbench")
    args = parser.parse_args(argv)
    if not args.tau2.is_dir():
        print(f"no tau2-bench results folder at {args.tau2}", file=sys.stderr)
        return 1
    tau2 = load(args.tau2.glob("*.json"))
    for agent_only in (False, True):
        which = "agent-side gold actions only" if agent_only else "all gold actions"
        print(f"\nAgreement with tau2-bench action_checks ({which}):\n")
        print("\n".join(agreement(tau2, lambda r, a=agent_only: unmatched(r, a))))
    airline_file = args.airline / "gpt-4o-airline.json"
    if airline_file.is_file():
        missed = airline_unmatched(airline_file)
        print("\nAgreement on tau-bench airline, derived label (a gold action no call repeated")
        print("with the same arguments; noisy: successful runs miss one too):\n")
        print("\n".join(agreement(load([airline_file]), lambda r: missed.get(r.id, set()))))
    print("\nCategories of failed runs:")
    corpora: dict[str, list[Trajectory]] = defaultdict(list)
    corpora["tau2-bench"] = tau2
    for label, folder, pattern in (
        ("tau-bench airline", args.airline, "*.json"),
        ("MedAgentBench", args.mab, "*_overall.json"),
    ):
        if folder.is_dir():
            corpora[label] = load(folder.glob(pattern))
    for label, runs in corpora.items():
        print(f"- {label}: {categories(runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
