"""Run every benchmark, write bench/results/latest.json and latest.svg, print a table.

    make bench                              # = .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --quick   # smaller sizes, about a minute
    .venv/bin/python bench/run.py --only intake library

Each benchmark is a module here with `run(quick, say) -> dict`: intake (throughput beside a
plain baseline, append->stored latency idle and during a cycle), cycle (1k, 10k and 100k-run
cycles: time, memory, growth exponent; 1k new runs on 100k against 1k on an empty store, and
issue 13's targets), library (commit and push 100 changes, an agent's pull) and llm
(requests and tokens per cycle as the history grows, against a loopback server).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cycle_scaling
import fleet_intake
import intake
import library_ops
import llm_path
import svgplot

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = {
    "intake": intake.run,
    "fleet": fleet_intake.bench,
    "cycle": cycle_scaling.run,
    "library": library_ops.run,
    "llm": llm_path.run,
}
PACKAGES = ("pydantic", "sqlite-utils", "networkx", "watchdog", "APScheduler", "GitPython")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    ) if Path("/proc/cpuinfo").exists() else platform.processor()  # fmt: skip
    memory = None
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = round(kib / 1024 / 1024, 1)
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": memory,
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "git": git,
        "packages": versions,
    }


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def table(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for the console and the README."""
    rows = []
    if "intake" in results:
        t, lat = results["intake"]["throughput"], results["intake"]["latency"]
        idle, busy = lat["idle"], lat["during_cycle"]
        rows += [
            (f"intake throughput ({t['runs']} runs, {t['megabytes']} MB)",
             f"{t['trajectories_per_s']:,.0f} runs/s, {t['tool_calls_per_s']:,.0f} tool calls/s"),
            ("intake baseline (json.loads + one bulk INSERT)",
             f"{t['baseline_trajectories_per_s']:,.0f} runs/s"
             f" (ratio {t['ratio_to_baseline']:.2f})"),
            ("append -> stored, idle", f"median {idle['median_ms']} ms, p95 {idle['p95_ms']} ms"),
            (f"append -> stored, during a cycle over {busy['history']:,} runs"
             f" ({busy.get('seconds', '?')} s)",
             f"median {busy['median_ms']} ms, p95 {busy['p95_ms']} ms"),
        ]  # fmt: skip
        rows += _target_rows(results["intake"])
    if "fleet" in results:
        f = results["fleet"]
        rows += [
            (f"HTTP intake, 1 node on SQLite ({f['runs']} runs)",
             f"{f['sqlite_1_node']['runs_per_s']:,} runs/s"),
            ("HTTP intake, 2 nodes on one PostgreSQL",
             f"{f['postgres_2_nodes']['runs_per_s']:,} runs/s (ratio {f['ratio']:.2f})"),
        ]  # fmt: skip
    if "cycle" in results:
        c = results["cycle"]
        for p in c["sizes"]:
            rows.append(
                (f"cycle over {p['runs']:,} runs",
                 f"{p['seconds']} s (load {p['load_seconds']}, evolve {p['evolve_seconds']},"
                 f" propose {p['propose_seconds']}), peak {p['peak_rss_mib']:,.0f} MiB")
            )  # fmt: skip
        inc, base = c["incremental"], c.get("baseline")
        rows += [
            (f"incremental cycle: {inc['added']:,} new on {inc['base']:,}",
             f"{inc['seconds']} s (load {inc['load_seconds']}, evolve {inc['evolve_seconds']},"
             f" propose {inc['propose_seconds']}), peak {inc['peak_rss_mib']:,.0f} MiB,"
             f" {inc.get('resampled', 0)} clusters resampled"),
        ]  # fmt: skip
        if base:
            rows.append(
                (f"incremental / a {base['runs']:,}-run cycle on an empty store",
                 f"{c['incremental_ratio']:.2f} ({inc['seconds']} s / {base['seconds']} s)")
            )  # fmt: skip
        rows.append(
            ("cycle growth exponent (time ~ runs^k)",
             f"{_fixed(c['growth_exponent'])}"
             f" (evolve alone {_fixed(c['evolve_growth_exponent'])})")
        )  # fmt: skip
        rows += _target_rows(c)
    if "library" in results:
        lib = results["library"]
        rows += [
            ("commit a cycle of 100 skill changes", f"{lib['commit_100_seconds']} s"),
            ("push the proposal branch", f"{lib['push_seconds']} s"),
            ("agent `git pull` after 100 changes merged", f"{lib['pull_100_changed_seconds']} s"),
            ("agent `git pull`, up to date", f"{lib['pull_up_to_date_seconds']} s"),
        ]
    if "llm" in results:
        rows += llm_path.table_rows(results["llm"])
    return rows


def _target_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """One row per issue target a benchmark measured: the bound and whether it was met."""
    return [
        (f"target {name} {t.get('op', '<=')} {t['bound']:g}",
         f"{t['value']:g}: {'met' if t['met'] else 'NOT met'}")
        for name, t in result.get("targets", {}).items()
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json/svg")
    args = parser.parse_args()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {line}", flush=True)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
    }
    for name, bench in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        say(f"== {name}")
        results[name] = bench(args.quick, say)
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.svg").write_text(svgplot.render(results))
    rows = table(results)
    width = max(len(figure) for figure, _ in rows) if rows else 0
    print(f"\n{'FIGURE'.ljust(width)}  VALUE")
    for figure, value in rows:
        print(f"{figure.ljust(width)}  {value}")
    print(f"\nwrote {args.out / 'latest.json'} and latest.svg in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
