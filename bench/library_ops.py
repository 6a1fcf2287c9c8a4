"""Library operations: committing a cycle of 100 skill changes, pushing it, and `git pull`
for an agent's clone after it is merged.

    .venv/bin/python bench/library_ops.py [--quick]

The skills are the seed skills' SKILL.md, renamed and varied, one commit per skill on a
proposal branch (`LibraryRepo.commit_on_branch`, plumbing on a temporary index), as a cycle
writes them. Each figure is the median of `repeats` runs on a fresh branch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skillforge.library import CommitSpec, FileChange, LibraryRepo

REPO = Path(__file__).resolve().parents[1]
CHANGES = 100


def skill_changes(round_no: int, count: int = CHANGES) -> list[CommitSpec]:
    """`count` new skills of realistic size, each its own commit."""
    seeds = sorted((REPO / "skills").glob("*/SKILL.md"))
    specs = []
    for n in range(count):
        source = seeds[n % len(seeds)]
        name = f"bench-skill-{n:03d}"
        text = source.read_text(encoding="utf-8").replace(source.parent.name, name)
        text += f"\n<!-- round {round_no}, variant {n} -->\n"
        specs.append(CommitSpec(f"Add {name}", (FileChange(f"{name}/SKILL.md", text),)))
    return specs


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def run(quick: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    repeats = 3 if quick else 5
    commit, push, pull, noop_pull, clone = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-library-") as tmp:
        root = Path(tmp)
        repo = LibraryRepo.ensure(root / "library", root / "library.git", seed=REPO / "skills")
        git("config", "user.name", "bench", cwd=root / "library")
        git("config", "user.email", "bench@localhost", cwd=root / "library")
        agent = root / "agent-skills"
        clone.append(
            timed(lambda: git("clone", "-q", str(root / "library.git"), str(agent), cwd=root))
        )
        for round_no in range(repeats):
            branch = f"evolve/bench-{round_no}"
            specs = skill_changes(round_no)
            with repo.lock():
                commit.append(timed(lambda b=branch, s=specs: repo.commit_on_branch(b, s)))
                push.append(timed(lambda b=branch: repo.push(f"refs/heads/{b}")))
                repo.merge(branch, f"Accept {branch}")  # what review accept does
            pull.append(timed(lambda: git("pull", "-q", "--ff-only", cwd=agent)))
            noop_pull.append(timed(lambda: git("pull", "-q", "--ff-only", cwd=agent)))
        skills = len(list(agent.glob("*/SKILL.md")))
    result = {
        "changes_per_cycle": CHANGES,
        "repeats": repeats,
        "commit_100_seconds": round(statistics.median(commit), 3),
        "push_seconds": round(statistics.median(push), 3),
        "clone_seconds": round(clone[0], 3),
        "pull_100_changed_seconds": round(statistics.median(pull), 3),
        "pull_up_to_date_seconds": round(statistics.median(noop_pull), 3),
        "skills_in_clone": skills,
    }
    say(
        f"library: commit {CHANGES} changes {result['commit_100_seconds']} s, push"
        f" {result['push_seconds']} s, agent pull {result['pull_100_changed_seconds']} s"
        f" (up to date {result['pull_up_to_date_seconds']} s)"
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
