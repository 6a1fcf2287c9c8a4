"""Synthetic trajectories shaped like the shared corpora, for the benchmarks.

Real runs of tau-bench airline and tau2-bench (airline, retail, telecom) are the shapes: each
synthetic run copies one (its steps, tools, sizes, outcome) and varies its id, the numbers in
its task and messages, and its argument values and results, so that runs are distinct but
cluster the way real ones do. Sizes stay realistic: the system policy is kept, as agents send it.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from skillforge.errors import InvalidTrajectory
from skillforge.importers import parse_record, records_in_document

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
SOURCES = [
    CORPORA / "tau-bench-airline" / "gpt-4o-airline.json",
    *sorted((CORPORA / "tau2-bench-gpt41").glob("*.json")),
]
_NUMBER = re.compile(r"\d+")


@cache
def shapes() -> tuple[dict[str, Any], ...]:
    """Every run of the corpora, in the skillforge schema (as JSON-ready dicts)."""
    found = []
    for source in SOURCES:
        document = json.loads(source.read_text(encoding="utf-8"))
        for record in records_in_document(document, source_name=str(source)):
            try:
                found.append(parse_record(record).model_dump(mode="json", exclude_none=True))
            except InvalidTrajectory:
                continue
    if not found:
        raise SystemExit(f"no runs found in the shared corpora under {CORPORA}")
    return tuple(found)


def _vary_text(text: str, rng: random.Random) -> str:
    return _NUMBER.sub(
        lambda m: str(rng.randrange(10 ** len(m.group()))).zfill(len(m.group())), text
    )


def _vary(value: Any, rng: random.Random) -> Any:
    if isinstance(value, str):
        return _vary_text(value, rng)
    if isinstance(value, dict):
        return {k: _vary(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_vary(v, rng) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return type(value)(rng.randrange(1, 10_000))
    return value


def trajectory(index: int, *, seed: int = 0, prefix: str = "synth") -> dict[str, Any]:
    """The `index`-th synthetic run of a seed: deterministic, a fresh id, varied values."""
    rng = random.Random(seed * 1_000_003 + index)
    base = shapes()[rng.randrange(len(shapes()))]
    run = dict(base)
    run["id"] = f"{prefix}-{seed}-{index:07d}"
    run["task"] = _vary_text(base["task"], rng)
    steps = []
    for step in base.get("steps", []):
        step = dict(step)
        if step.get("type") == "tool_call":
            step["arguments"] = _vary(step.get("arguments", {}), rng)
            if step.get("result"):
                step["result"] = _vary_text(step["result"], rng)
        elif step.get("role") != "system":  # the policy is the same for every run
            step["text"] = _vary_text(step["text"], rng)
        steps.append(step)
    run["steps"] = steps
    run["started_at"] = f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:00:00Z"
    run.pop("metadata", None)
    return run


def trajectories(count: int, *, start: int = 0, seed: int = 0) -> Iterator[dict[str, Any]]:
    for index in range(start, start + count):
        yield trajectory(index, seed=seed)


POOL = 2000  # fully varied runs; beyond it, runs reuse one's body with a new id and task


@cache
def _template(seed: int, slot: int) -> tuple[str, str, str, int, str]:
    """(JSON before the id, between id and task, after the task, tool calls, the task of its
    corpus run) of a pool run."""
    run = trajectory(slot, seed=seed)
    task = shapes()[random.Random(seed * 1_000_003 + slot).randrange(len(shapes()))]["task"]
    body = {k: v for k, v in run.items() if k not in ("id", "task")}
    text = json.dumps({"id": "\x00", "task": "\x01", **body})
    head, rest = text.split('"\\u0000"', 1)
    middle, tail = rest.split('"\\u0001"', 1)
    calls = sum(1 for s in run["steps"] if s.get("type") == "tool_call")
    return head, middle, tail, calls, task


def lines(count: int, *, start: int = 0, seed: int = 0) -> Iterator[tuple[str, int]]:
    """(JSON line, tool calls) of runs `start`.. of a seed; fast enough for 100k runs."""
    for index in range(start, start + count):
        rng = random.Random(index)
        head, middle, tail, calls, base = _template(seed, index % POOL)
        task = json.dumps(_vary_text(base, rng))
        yield f'{head}"synth-{seed}-{index:07d}"{middle}{task}{tail}\n', calls


def write_jsonl(
    folder: Path, count: int, *, files: int = 4, start: int = 0, seed: int = 0
) -> dict[str, int]:
    """Write `count` runs as JSON lines spread over `files` files; return what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    handles = [(folder / f"agent-{n}.jsonl").open("a", encoding="utf-8") for n in range(files)]
    written = {"trajectories": 0, "tool_calls": 0, "bytes": 0}
    try:
        for n, (line, calls) in enumerate(lines(count, start=start, seed=seed)):
            handles[n % files].write(line)
            written["trajectories"] += 1
            written["tool_calls"] += calls
            written["bytes"] += len(line.encode())
    finally:
        for handle in handles:
            handle.close()
    return written
