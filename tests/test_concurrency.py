"""The daemon's cycles, `skillforge review accept` and a person pushing to main, all at once,
as separate processes: main only moves forward, nothing is force-pushed, git stays sound and
the person's commits survive."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skillforge.config import load
from skillforge.library import LibraryRepo
from skillforge.store import Store
from tests.conftest import REPO_ROOT

ROUNDS = 3  # cycles, each with runs of a new kind of task
PUSHES = 6  # commits the person pushes to main meanwhile
WORDS = ["invoice", "voucher", "parcel", "ticket", "badge", "permit", "lease", "quota"]

CYCLES = textwrap.dedent(
    """
    import os
    import sys
    import time
    from evolver.model import ToolCall, Trajectory
    from skillforge.config import load
    from skillforge.cycle import run_cycle
    from skillforge.library import LibraryRepo
    from skillforge.store import Store

    words, rounds = sys.argv[1].split(","), int(sys.argv[2])
    config = load()
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with Store(config.db_path) as store:
        for k in range(rounds):
            w = words[k]
            store.add_trajectories(
                [
                    Trajectory(
                        id=f"{w}-{i}",
                        task=f"renew the {w} number {i} for the customer",
                        steps=[
                            ToolCall(id=f"{w}-{i}-a", name=f"find_{w}", arguments={"id": i},
                                     result="ok"),
                            ToolCall(id=f"{w}-{i}-b", name=f"renew_{w}", arguments={"id": i},
                                     result="ok"),
                        ],
                        outcome={"success": i != 0},
                    )
                    for i in range(6)
                ],
                source="test",
            )
            result = run_cycle(store, repo, config, say=lambda line: None)
            print(k, result.status, result.proposal, result.changes, flush=True)
            while result.proposal and store.proposal(result.proposal)["status"] == "open":
                if os.path.exists(sys.argv[3]):
                    sys.exit("stopped before the proposal was accepted")
                # Meanwhile the reviewer (the test) accepts it; keep cycling to contend for
                # the lock and the branches as the daemon's schedule would.
                run_cycle(store, repo, config, say=lambda line: None)
                time.sleep(0.05)
    """
)

PERSON = textwrap.dedent(
    """
    set -eu
    cd "$1"
    i=0
    while [ ! -e "$2" ] || [ "$i" -lt "$3" ]; do
      mkdir -p "person-note-$i"
      printf -- '---\\nname: person-note-%s\\ndescription: A note by a person.\\n---\\n# Note\\n' \\
        "$i" > "person-note-$i/SKILL.md"
      git add -A && git commit -qm "Person's note $i"
      until git push -q origin main 2>/dev/null; do git pull -q --rebase origin main; done
      i=$((i + 1))
      sleep 0.2  # a brisk person: several pushes a second, not a tight loop
    done
    echo "$i"
    """
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def world(tmp_path, monkeypatch):
    (tmp_path / "skillforge.toml").write_text(
        f'[skillforge]\nhome = "var"\nseed = "{REPO_ROOT / "skills"}"\n'
    )
    monkeypatch.chdir(tmp_path)
    config = load(environ={}, cwd=tmp_path)
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    bare = Path(config.remote_url)
    git(bare, "config", "core.logAllRefUpdates", "always")  # a reflog of every push to main
    person = tmp_path / "person"
    git(tmp_path, "clone", "-q", str(bare), str(person))
    return config, repo, bare, person


def accept_open(config) -> tuple[int, list[str]]:
    """Accept every open proposal with the CLI; (accepted, unexpected errors)."""
    with Store(config.db_path) as store:
        ids = [p["id"] for p in store.proposals("open")]
    accepted, errors = 0, []
    for proposal in ids:
        done = subprocess.run(
            [sys.executable, "-m", "skillforge.cli", "review", "accept", proposal],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            accepted += 1
        elif "already superseded" not in done.stderr:  # a cycle replaced it meanwhile: fine
            errors.append(f"{proposal}: exit {done.returncode}: {done.stderr.strip()}")
    return accepted, errors


def test_cycles_reviews_and_a_person_pushing_never_corrupt_the_library(world, tmp_path):
    config, repo, bare, person = world
    stop = tmp_path / "stop-pushing"
    cycles = subprocess.Popen(
        [sys.executable, "-c", CYCLES, ",".join(WORDS), str(ROUNDS), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    pusher = subprocess.Popen(
        ["bash", "-c", PERSON, "person", str(person), str(stop), str(PUSHES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    accepted, errors = 0, []
    while cycles.poll() is None and not errors:
        got, failed = accept_open(config)
        accepted, errors = accepted + got, errors + failed
        time.sleep(0.05)  # polling pace only; nothing is asserted about time
    stop.touch()  # both processes end on it
    pushed, push_err = pusher.communicate()
    out, err = cycles.communicate()
    assert errors == []
    assert cycles.returncode == 0, err
    assert pusher.returncode == 0, push_err
    assert accepted == ROUNDS, out
    pushes = int(pushed.split()[-1])
    assert pushes >= PUSHES

    # Main only ever moved forward: each value in the remote's reflog contains the one before.
    history = git(bare, "reflog", "show", "--format=%H", "refs/heads/main").split()[::-1]
    assert len(history) >= pushes + accepted
    for older, newer in zip(history, history[1:], strict=False):
        ok = subprocess.run(["git", "-C", str(bare), "merge-base", "--is-ancestor", older, newer])
        assert ok.returncode == 0, f"main moved from {older} to {newer}, not a fast-forward"
    # git is sound everywhere.
    git(bare, "fsck", "--full", "--no-progress", "--no-dangling")
    git(person, "fsck", "--full", "--no-progress", "--no-dangling")
    repo.fsck()
    # The person's commits and every accepted skill are on main.
    final = git(bare, "ls-tree", "-r", "--name-only", "main").split()
    subjects = git(bare, "log", "--format=%s", "main").splitlines()
    for i in range(pushes):
        assert f"person-note-{i}/SKILL.md" in final and f"Person's note {i}" in subjects
    with Store(config.db_path) as store:
        for proposal in store.proposals("accepted"):
            for change in store.proposal_changes(proposal["id"]):
                if change["action"] != "retire":
                    assert f"{change['skill']}/SKILL.md" in final
        assert store.proposals("open") == []


# -- the store under two writers --------------------------------------------------------------

INTAKE = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path
    from skillforge.intake import ingest_file
    from skillforge.store import Store

    db, inbox, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    inbox.mkdir(parents=True, exist_ok=True)
    n = 0
    with Store(db) as store:
        while not stop.exists():
            for f in range(4):  # a few files, each a short batch: many small transactions
                with (inbox / f"runs-{f}.jsonl").open("a") as handle:
                    for _ in range(3):
                        n += 1
                        handle.write(json.dumps({"id": f"r{n}", "task": f"close ticket {n}",
                                                 "steps": []}) + "\\n")
                ingest_file(store, inbox / f"runs-{f}.jsonl")
            print(n, flush=True)
    """
)


def test_add_proposal_never_fails_with_database_is_locked_while_intake_writes(tmp_path):
    """Intake commits small batches from another process while proposals are recorded:
    every write transaction takes the write lock up front (BEGIN IMMEDIATE) and waits for
    it, so none fails with "database is locked" (146 of 2,000 did with deferred ones)."""
    db, stop = tmp_path / "state.db", tmp_path / "stop"
    Store(db).close()  # migrated before both start
    intake = subprocess.Popen(
        [sys.executable, "-c", INTAKE, str(db), str(tmp_path / "inbox"), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    failures: list[str] = []
    try:
        assert intake.stdout is not None
        intake.stdout.readline()  # intake is writing
        with Store(db) as store:
            for i in range(2000):
                try:
                    store.add_proposal(
                        {"id": f"p{i}", "branch": f"evolve/p{i}", "status": "open",
                         "created_at": "2026-11-21T10:00:00", "description": "d"},
                        [{"skill": "s", "action": "update", "fingerprint": f"f{i}",
                          "content_sha": "x", "summary": "u"}],
                    )  # fmt: skip
                except Exception as exc:  # what a cycle would have hit
                    failures.append(f"{type(exc).__name__}: {exc}")
            proposals = len(store.proposals())
    finally:
        stop.touch()
        out, err = intake.communicate(timeout=120)
    assert intake.returncode == 0, err
    assert int(out.split()[-1]) > 0  # intake really ran alongside
    assert failures == []
    assert proposals == 2000
