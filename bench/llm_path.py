"""LLM path: requests and tokens per cycle as the history grows, against the loopback server
that speaks the real OpenAI wire format (tests/llm_server.py; answers: tests/llm_roles.expert).

    .venv/bin/python bench/llm_path.py [--quick] [--json]

One store and library; the history grows step by step and a cycle runs after each step: the
tau-bench airline corpus (200 runs), then synthetic runs (bench/synth.py) up to 1,000 and
3,000 runs (quick: 600 and 1,200); then a step whose new runs are copies of one cluster's runs
(fresh ids), and a step with nothing new. The sequence runs twice:

- unreviewed: nobody reviews, so each cycle's proposal supersedes the last and re-proposes
  every skill (all creates); a skill whose evidence did not move builds the same prompts and
  is answered from the answer cache;
- reviewed: each proposal is accepted (merged) before the next step, so later cycles propose
  only skills whose new evidence is worth an edit (the editor's prompts carry the skill text).

The budget is set far above any cycle's use, and each cycle checks that no ask was refused
by it, so what is measured is what the LLM pass wants to send. Per cycle: runs, new runs,
changes proposed, changes whose evidence moved (fingerprint not in the previous proposal:
the only ones that can need the LLM), requests the server received (and by role), asks
answered from the cache, input and output tokens as the server reported them, and seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.llm_server and tests.llm_roles

import synth  # noqa: E402
from cycle_scaling import growth_exponent  # noqa: E402

from evolver.skilldoc import parse  # noqa: E402
from skillforge import review  # noqa: E402
from skillforge.config import Config, load  # noqa: E402
from skillforge.cycle import run_cycle  # noqa: E402
from skillforge.errors import LibraryRepoError  # noqa: E402
from skillforge.importers import parse_line, parse_record  # noqa: E402
from skillforge.library import LibraryRepo  # noqa: E402
from skillforge.store import Store  # noqa: E402

CORPUS = synth.CORPORA / "tau-bench-airline" / "gpt-4o-airline.json"
# Synthetic runs added after the corpus, one growth cycle each: 200 -> 1,000 -> 3,000 runs.
STEPS = {"quick": [400, 600], "full": [800, 2000]}
CLUSTER_COPIES = 40  # runs added to one cluster in the one-cluster step, at most
# Far above any cycle's use: the budget must never bind here (checked per cycle).
BUDGET = {
    "llm_max_calls": 1_000_000,
    "llm_max_input_tokens": 10**10,
    "llm_max_output_tokens": 10**10,
    "llm_max_cost_usd": 1e9,
}
BUDGET_NOTE = "budget set far above use (1M calls, 10^10 tokens, $1e9 per cycle)"
MODES = {
    "unreviewed": "each cycle supersedes the last proposal and re-proposes every skill",
    "reviewed": "each proposal is accepted (merged into main) before the next step",
}


class Responder:
    """tests/llm_roles.expert, except that where it fails on a request (it raises on an
    editor request whose evidence has no successful path, as a hygiene merge's has: runs 0)
    it answers "nothing to change" as a model could, instead of a 500 that would mark the
    API down for the rest of the cycle. Counts those requests by skill, for the report."""

    def __init__(self) -> None:
        self.failed: Counter[str] = Counter()

    def __call__(self, role: Any, request: dict[str, Any]) -> dict[str, Any]:
        from tests.llm_roles import expert, skill_of

        try:
            return expert(role, request)
        except (IndexError, KeyError, ValueError):
            if role.role != "editor":
                raise
            self.failed[skill_of(request)] += 1
            return {"edits": [], "summary": "nothing to change"}


class Bench:
    """A store and library in `home`, the LLM configured against `server`."""

    def __init__(self, home: Path, server: Any, *, reviewed: bool) -> None:
        from tests.llm_roles import skill_of

        self.skill_of = skill_of
        self.server = server
        self.reviewed = reviewed
        self.config: Config = load(
            environ={},
            cwd=home,
            overrides={
                "home": home,
                "seed": ROOT / "skills",
                "llm_provider": "openai",
                "llm_base_url": server.openai_base_url,
                "llm_api_key": "bench-key",
                "llm_model": "bench-model",
                "llm_retries": 0,
                "llm_timeout_seconds": 30,
                **BUDGET,
            },
        )
        self.repo = LibraryRepo.ensure(
            self.config.library_path, self.config.remote_url, seed=self.config.seed
        )
        self.store = Store(self.config.db_path)
        self.previous: dict[str, str] = {}  # skill -> fingerprint in the last proposal
        self.last_proposal: str | None = None

    def close(self) -> None:
        self.store.close()

    def add(self, runs: Sequence[Any]) -> int:
        return self.store.add_trajectories(runs, source="bench")

    def cycle(self, label: str) -> dict[str, Any]:
        """One cycle and what it asked of the LLM."""
        sent = len(self.server.requests)
        started = time.perf_counter()
        result = run_cycle(self.store, self.repo, self.config, say=lambda _: None)
        seconds = time.perf_counter() - started
        bodies = self.server.requests[sent:]
        roles = Counter(self.server.roles()[sent:])
        changes = {}
        if result.status == "done" and result.proposal:
            changes = {c["skill"]: c for c in self.store.proposal_changes(result.proposal)}
        moved = sorted(
            s
            for s, c in changes.items()
            if c["action"] != "retire" and self.previous.get(s) != c["fingerprint"]
        )
        asked = {self.skill_of(b) for b in bodies}
        spend = self.store.llm_spend([result.id]).get(result.id, {})
        refused = sum(
            1 for c in self.store.llm_calls(result.id) if "budget" in (c.get("note") or "")
        )
        tokens_in, tokens_out = spend.get("input_tokens") or 0, spend.get("output_tokens") or 0
        tokens = tokens_in + tokens_out
        runs = result.trajectories or self.store.count("trajectories")
        row = {
            "step": label,
            "status": result.status,
            "runs": runs,
            "new": result.new,
            "changes": len(changes),
            "moved": len(moved),
            "moved_skills": moved,
            # of them, changes with no runs as evidence (hygiene merges), not caused by new runs
            "moved_without_runs": sum(1 for s in moved if not changes[s]["runs"]),
            "requests": len(bodies),
            "requests_by_role": dict(sorted(roles.items())),
            "asks": spend.get("asks") or 0,
            "cached": spend.get("cached") or 0,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "seconds": round(seconds, 2),
            "requests_per_moved": round(len(bodies) / len(moved), 2) if moved else None,
            "tokens_per_moved": round(tokens / len(moved)) if moved else None,
            "tokens_per_run": round(tokens / runs, 2) if runs else None,
            # skills the server was asked about whose evidence did not move: should be none
            "asked_unmoved": sorted(asked - set(moved)),
            "budget_refusals": refused,
        }
        if changes:
            self.previous = {s: c["fingerprint"] for s, c in changes.items()}
            self.last_proposal = result.proposal
            if self.reviewed and self.store.proposal(result.proposal)["status"] == "open":
                review.accept(self.store, self.repo, result.proposal)
        return row

    def one_cluster(self, limit: int) -> tuple[str, list[Any]]:
        """Copies (fresh ids, same content) of up to `limit` runs of the biggest cluster that
        has a skill in the library: new runs that belong to that cluster only."""
        assert self.last_proposal
        try:
            docs = self.repo.skills(f"evolve/{self.last_proposal}")
        except LibraryRepoError:  # accepted: merged into main and its branch deleted
            docs = self.repo.skills("main")
        skill_of_cluster = {}
        for doc in docs:
            cluster = (_frontmatter(doc.text).get("metadata") or {}).get("skillforge.cluster")
            if cluster:
                skill_of_cluster[cluster] = doc.name
        members = self.store.memberships()
        sizes = Counter(c for c in members.values() if c in skill_of_cluster)
        target = max(sizes, key=lambda c: (sizes[c], c))
        ids = set(sorted(i for i, c in members.items() if c == target)[:limit])
        runs = [t for t in self.store.trajectories() if t.id in ids]
        copies = [r.model_copy(update={"id": f"{r.id}-again"}) for r in runs]
        return skill_of_cluster[target], copies


def _frontmatter(text: str) -> dict[str, Any]:
    try:
        return parse(text)[0]
    except ValueError:
        return {}


def corpus_runs() -> list[Any]:
    return [parse_record(r) for r in json.loads(CORPUS.read_text(encoding="utf-8"))]


def synthetic_runs(count: int, start: int) -> list[Any]:
    return [parse_line(line.rstrip("\n").encode()) for line, _ in synth.lines(count, start=start)]


def describe(row: dict[str, Any]) -> str:
    """One cycle's figures in a line."""
    per = (
        f"; {row['tokens_per_moved']:,} tokens/changed skill, {row['tokens_per_run']} tokens/run"
        if row["moved"]
        else ""
    )
    merges = (
        f", {row['moved_without_runs']} of them with no runs" if row["moved_without_runs"] else ""
    )
    return (
        f"{row['changes']} changes ({row['moved']} moved{merges}); {row['requests']} requests,"
        f" {row['cached']} cached; {row['input_tokens']:,} in / {row['output_tokens']:,} out"
        f" tokens{per}; {row['seconds']} s"
    )


def sequence(
    server: Any, home: Path, steps: Sequence[int], *, reviewed: bool, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The cycles of one mode: corpus, growth steps, one cluster, nothing new."""
    mode = "reviewed" if reviewed else "unreviewed"
    rows: list[dict[str, Any]] = []
    bench = Bench(home, server, reviewed=reviewed)
    try:

        def step(label: str, runs: Sequence[Any]) -> None:
            bench.add(runs)
            row = bench.cycle(label)
            rows.append(row)
            say(f"llm {mode}: {label}: {row['runs']:,} runs ({row['new']:,} new): {describe(row)}")

        step("airline corpus", corpus_runs())
        start = 0
        for count in steps:
            step(f"+{count:,} synthetic", synthetic_runs(count, start))
            start += count
        skill, copies = bench.one_cluster(CLUSTER_COPIES)
        step(f"+{len(copies)} copies of one cluster's runs ({skill})", copies)
        step("nothing new", [])
    finally:
        bench.close()
    return rows


def summary(rows: Sequence[dict[str, Any]], growth_steps: int) -> dict[str, Any]:
    """The per-mode figures the table reports: growth exponents and spreads."""
    growth = [r for r in rows[:growth_steps] if r["input_tokens"]]
    per_moved = [r["tokens_per_moved"] for r in rows if r["tokens_per_moved"]]
    calls_per_moved = [r["requests_per_moved"] for r in rows if r["requests_per_moved"]]
    tokens = [(r["runs"], r["input_tokens"] + r["output_tokens"]) for r in growth]
    return {
        "tokens_growth_exponent": _rounded(growth_exponent(tokens)),
        "changed_skills_growth_exponent": _rounded(
            growth_exponent([(r["runs"], r["moved"]) for r in growth])
        ),
        "tokens_per_moved_range": [min(per_moved), max(per_moved)] if per_moved else None,
        "requests_per_moved_range": (
            [min(calls_per_moved), max(calls_per_moved)] if calls_per_moved else None
        ),
        "tokens_per_run_first_last": [growth[0]["tokens_per_run"], growth[-1]["tokens_per_run"]]
        if growth
        else None,
        "budget_refusals": sum(r["budget_refusals"] for r in rows),
        "asked_unmoved": sorted({s for r in rows for s in r["asked_unmoved"]}),
        "nothing_new_requests": rows[-1]["requests"],
    }


def run(quick: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    from tests.llm_server import LLMServer

    steps = STEPS["quick" if quick else "full"]
    started = time.perf_counter()
    result: dict[str, Any] = {
        "provider": "openai wire format, loopback server (tests/llm_server.py), expert answers",
        "budget": BUDGET_NOTE,
        "modes": dict(MODES),
    }
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        for mode in MODES:
            responder = Responder()
            with LLMServer(responder) as server:
                home = Path(tmp) / mode
                rows = sequence(server, home, steps, reviewed=mode == "reviewed", say=say)
            result[mode] = {"cycles": rows, **summary(rows, 1 + len(steps))}
            s = result[mode]
            s["responder_fallbacks"] = dict(sorted(responder.failed.items()))
            if responder.failed:
                say(
                    f"llm {mode}: the stand-in model could not edit {sorted(responder.failed)}"
                    " (evidence with no successful path); answered 'nothing to change'"
                )
            say(
                f"llm {mode}: tokens ~ runs^{s['tokens_growth_exponent']} over the growth steps"
                f" (changed skills ~ runs^{s['changed_skills_growth_exponent']}); tokens per"
                f" changed skill {s['tokens_per_moved_range']}, requests per changed skill"
                f" {s['requests_per_moved_range']}"
            )
            if s["budget_refusals"]:
                say(f"llm {mode}: WARNING: the budget refused {s['budget_refusals']} asks")
            if s["asked_unmoved"]:
                say(
                    f"llm {mode}: WARNING: requests about skills whose evidence did not move"
                    f" since the last proposal: {s['asked_unmoved']}"
                )
    refusals = sum(result[m]["budget_refusals"] for m in MODES)
    result["budget"] += "; no ask refused" if not refusals else f"; {refusals} asks REFUSED"
    say(f"llm: {result['budget']}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _span(pair: Sequence[float] | None, fmt: str = ",") -> str:
    return "n/a" if not pair else f"{pair[0]:{fmt}}-{pair[1]:{fmt}}"


def table_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for bench/run.py's table: every unreviewed cycle, then a summary
    line per mode (the reviewed cycles are in the JSON)."""
    if "skipped" in result:
        return [("LLM calls and tokens per cycle", result["skipped"])]
    rows = [
        (f"LLM cycle, {r['step']}: {r['runs']:,} runs ({r['new']:,} new)", describe(r))
        for r in result["unreviewed"]["cycles"]
    ]
    for mode in MODES:
        s = result[mode]
        rows.append(
            (
                f"LLM {mode}: tokens ~ runs^k, changed skills ~ runs^k",
                f"k = {s['tokens_growth_exponent']}, {s['changed_skills_growth_exponent']};"
                f" per changed skill {_span(s['tokens_per_moved_range'])} tokens,"
                f" {_span(s['requests_per_moved_range'], '')} requests;"
                f" tokens/run {_span(s['tokens_per_run_first_last'], '')};"
                f" nothing new: {s['nothing_new_requests']} requests"
                + (
                    f"; asked about {len(s['asked_unmoved'])} skills whose evidence did not move"
                    if s["asked_unmoved"]
                    else ""
                ),
            )
        )
    rows.append(("LLM budget", result["budget"]))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller history sizes")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    columns = [
        ("step", "step"), ("runs", "runs"), ("new", "new"), ("changes", "changes"),
        ("moved", "moved"), ("requests", "requests"), ("cached", "cached"),
        ("in tok", "input_tokens"), ("out tok", "output_tokens"),
        ("tok/changed", "tokens_per_moved"), ("tok/run", "tokens_per_run"), ("s", "seconds"),
    ]  # fmt: skip
    for mode, how in MODES.items():
        cells = [[h for h, _ in columns]] + [
            [_cell(r[k]) for _, k in columns] for r in result[mode]["cycles"]
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        print(f"\n{mode}: {how}")
        for row in cells:
            print(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
    print()
    for figure, value in table_rows(result)[-3:]:
        print(f"{figure}: {value}")
    print(f"{result['seconds']} s in all")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else str(value)


if __name__ == "__main__":
    main()
