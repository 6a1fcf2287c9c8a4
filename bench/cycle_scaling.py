"""Cycle scaling: a full cycle's time and peak memory as the history grows, and 1k new runs
on top of the largest history against 1k runs on an empty store, with a plot.

    .venv/bin/python bench/cycle_scaling.py [--quick] [--sizes 1000 10000 100000 300000]
                                            [--profile] [--plot FILE]

Each size gets a fresh store and library. The store is filled with synthetic runs by one bulk
INSERT in a child process (setup, not measured), then one `run_cycle` runs in another child:
its time split into load (reading the new runs into the cluster state), evolve and propose
(commits, pictures, push), and its peak RSS (the child's own high-water mark). Then 1,000 more
runs go into the largest store and one more cycle runs: the incremental case, beside the
1,000-run cycle on an empty store (the baseline; measured again if 1,000 is not a size). The
growth exponent is the slope of log(time) over log(runs). `--profile` runs the largest full
cycle and the incremental one under cProfile and reports their costliest functions. The plot
(time and memory against runs, log-log) goes to `--plot` (default
bench/results/cycle_scaling.svg).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import svgplot
import synth

from skillforge.config import load
from skillforge.cycle import run_cycle
from skillforge.library import LibraryRepo
from skillforge.store import Store

REPO = Path(__file__).resolve().parents[1]
SIZES = {"quick": [500, 1000, 2000], "full": [1000, 10000, 100000]}
INCREMENT = 1000
PLOT = Path(__file__).resolve().parent / "results" / "cycle_scaling.svg"
TARGETS = {  # issue 13's "done means"
    "incremental_seconds": 5.0,  # 1k new on 100k
    "incremental_ratio": 2.0,  # ... against 1k on an empty store
    "full_100k_seconds": 60.0,
    "peak_rss_mib": 1024.0,
    "growth_exponent": 1.1,
}


def prepare(folder: Path, count: int, start: int) -> None:
    """Add `count` synthetic runs to the store in `folder` with one bulk INSERT."""
    with Store(folder / "skillforge.db") as store:
        rows = []
        for line, calls in synth.lines(count, start=start):
            run = json.loads(line)
            outcome = run.get("outcome") or {}
            success = outcome.get("success")
            if success is None and outcome.get("reward") is not None:
                success = outcome["reward"] >= 1.0 - 1e-6
            errors = sum(1 for s in run["steps"] if s.get("error"))
            rows.append(
                (run["id"], run.get("agent"), run["task"], success, outcome.get("reward"), calls,
                 errors, "[]", run.get("started_at"), "bench", "2026-11-21T00:00:00+00:00", line)
            )  # fmt: skip
        with store.db.atomic():
            store.db.conn.executemany(
                "INSERT INTO trajectories (id, agent, task, success, reward, tool_calls, errors,"
                " skills, started_at, source, ingested_at, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )


def cycle(folder: Path, profile: bool) -> dict[str, Any]:
    """One cycle over the store in `folder`; seconds per phase."""
    config = load(
        environ={},
        cwd=folder,
        overrides={"home": folder, "inbox": folder / "inbox", "seed": REPO / "skills"},
    )
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    marks: list[tuple[float, str]] = []
    profiler = cProfile.Profile() if profile else None
    with Store(config.db_path) as store:
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        result = run_cycle(
            store, repo, config, say=lambda line: marks.append((time.perf_counter(), line))
        )
        if profiler:
            profiler.disable()
        end = time.perf_counter()
    loaded = next(t for t, line in marks if "trajectories (" in line)
    evolved = next((t for t, line in marks if " clusters, " in line), end)
    resampled = next((line for _, line in marks if "drew their sample" in line), "")
    out = {
        "runs": result.trajectories,
        "new": result.new,
        "changes": result.changes,
        "seconds": round(end - start, 3),
        "load_seconds": round(loaded - start, 3),
        "evolve_seconds": round(evolved - loaded, 3),
        "propose_seconds": round(end - evolved, 3),
        "peak_rss_mib": _high_water_mib(),
        "resampled": int(resampled.split(": ")[-1].split()[0]) if resampled else 0,
    }
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        out["profile"] = text.getvalue()
    return out


def _high_water_mib() -> float:
    """This process's peak RSS (VmHWM). Not getrusage: a child's ru_maxrss starts from its
    parent's RSS at fork, which would make every size look at least as big as the parent."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # not Linux


def _child(*args: str) -> dict[str, Any] | None:
    """Run this script's child mode and return its JSON answer."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, cwd=REPO
    )
    if done.returncode:
        raise SystemExit(f"child {args} failed with {done.returncode}")
    return json.loads(done.stdout) if done.stdout.strip() else None


def growth_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) over log(x); None with fewer than two sizes."""
    if len({x for x, _ in points}) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def _size(n: int, folder: Path, profile: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """A fresh store of `n` runs and one cycle over it."""
    folder.mkdir()
    started = time.perf_counter()
    _child("prepare", str(folder), str(n), "0")
    say(f"cycle: {n} runs stored in {time.perf_counter() - started:.1f} s (setup)")
    result = _child("cycle", str(folder), str(profile))
    assert result is not None
    say(f"cycle: {n} runs: {_timing(result)}")
    return result


def _timing(result: dict[str, Any]) -> str:
    """A cycle's time by phase and its peak memory, for the progress lines."""
    return (
        f"{result['seconds']} s (load {result['load_seconds']}, evolve"
        f" {result['evolve_seconds']}, propose {result['propose_seconds']}),"
        f" peak {result['peak_rss_mib']} MiB"
    )


def run(
    quick: bool = False,
    say: Callable[[str], None] = print,
    sizes: Sequence[int] | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    sizes = sorted(sizes or SIZES["quick" if quick else "full"])
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp:
        for n in sizes:
            folder = Path(tmp) / str(n)
            points.append(_size(n, folder, profile and n == sizes[-1], say))
        _child("prepare", str(folder), str(INCREMENT), str(sizes[-1]))
        incremental = _child("cycle", str(folder), str(profile))
        assert incremental is not None
        say(
            f"cycle: {INCREMENT} new on top of {sizes[-1]}: {_timing(incremental)},"
            f" {incremental['resampled']} clusters resampled"
        )
        baseline = next((p for p in points if p["runs"] == INCREMENT), None)
        if baseline is None:
            baseline = _size(INCREMENT, Path(tmp) / "baseline", False, say)
    ratio = incremental["seconds"] / baseline["seconds"]
    say(f"cycle: {INCREMENT} new on {sizes[-1]} / {INCREMENT} on an empty store: {ratio:.2f}")
    exponent = growth_exponent([(p["runs"], p["seconds"]) for p in points])
    evolve_exponent = growth_exponent([(p["runs"], max(p["evolve_seconds"], 1e-3)) for p in points])
    say(f"cycle: growth exponent {exponent} (evolve alone {evolve_exponent})")
    result = {
        "sizes": points,
        "incremental": {"base": sizes[-1], "added": INCREMENT, **incremental},
        "baseline": baseline,
        "incremental_ratio": round(ratio, 3),
        "growth_exponent": exponent and round(exponent, 3),
        "evolve_growth_exponent": evolve_exponent and round(evolve_exponent, 3),
    }
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each of issue 13's cycle targets that this run measured: the figure, the bound, met."""
    found: dict[str, float] = {}
    if result["incremental"]["base"] == 100_000:
        found["incremental_seconds"] = result["incremental"]["seconds"]
        found["incremental_ratio"] = result["incremental_ratio"]
    full = [p for p in result["sizes"] if p["runs"] == 100_000]
    if full:
        found["full_100k_seconds"] = full[0]["seconds"]
        found["peak_rss_mib"] = full[0]["peak_rss_mib"]
    if result["growth_exponent"] is not None and max(p["runs"] for p in result["sizes"]) >= 100_000:
        found["growth_exponent"] = result["growth_exponent"]
    return {
        name: {"value": value, "bound": TARGETS[name], "met": value <= TARGETS[name]}
        for name, value in found.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--sizes", type=int, nargs="+", help="history sizes to measure")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the largest and the incremental cycle"
    )
    parser.add_argument("--plot", type=Path, default=PLOT, help="where to write the SVG plot")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, folder, *rest = args.child
        if mode == "prepare":
            prepare(Path(folder), int(rest[0]), int(rest[1]))
        else:
            print(json.dumps(cycle(Path(folder), rest[0] == "True")))
        return
    result = run(args.quick, sizes=args.sizes, profile=args.profile)
    profiles = [
        p.pop("profile") for p in [*result["sizes"], result["incremental"]] if "profile" in p
    ]
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    args.plot.write_text(svgplot.render({"cycle": result}))
    print(json.dumps(result, indent=2))
    for text in profiles:
        print(text)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
