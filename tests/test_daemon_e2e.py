"""The real daemon as a subprocess: intake, a scheduled cycle, review through the CLI,
an agent's clone, clean shutdown, and SIGKILL mid-intake without loss or duplication."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time

import pytest

from evolver.checks import Check, mentions
from skillforge.importers import parse_record
from tests.conftest import CHECK_SKILLS
from tests.daemon_harness import DaemonProcess, wait_for

pytestmark = pytest.mark.e2e


def remote_heads(remote) -> list[str]:
    out = subprocess.run(
        ["git", "ls-remote", "--heads", str(remote)], capture_output=True, text=True
    ).stdout
    return [line.split("refs/heads/")[1] for line in out.splitlines()]


def test_trajectories_in_reviewed_skills_out_agents_pull(tmp_path, airline_records):
    records = [r for r in airline_records if r["trial"] in (0, 1)]
    expected_ids = {parse_record(r).id for r in records}
    daemon = DaemonProcess(
        tmp_path / "var",
        tmp_path / "inbox",
        evolve_after=len(records),
        sweep_seconds=0.5,
        evolve_every_minutes=60,
    ).start()
    try:
        wait_for(
            lambda: "skillforge serving" in daemon.output(),
            timeout=60,
            what="start",
            log=daemon.output,
        )
        # Two agents append to two files in several writes, one of them split mid-line.
        lines = [json.dumps(r) + "\n" for r in records]
        for chunk_start in range(0, len(lines), 25):
            chunk = lines[chunk_start : chunk_start + 25]
            target = daemon.inbox / f"agent-{chunk_start // 25 % 2}.jsonl"
            with target.open("a") as handle:
                text = "".join(chunk)
                handle.write(text[: len(text) // 2])
                handle.flush()
                time.sleep(0.2)
                handle.write(text[len(text) // 2 :])
            time.sleep(0.2)
        remote = daemon.home / "library.git"
        branch = wait_for(
            lambda: [b for b in remote_heads(remote) if b.startswith("evolve/")],
            timeout=120,
            what="a proposal branch on the remote",
            log=daemon.output,
        )[0]
        assert set(daemon.stored_ids()) == expected_ids and daemon.quarantined() == 0
        proposal = branch.removeprefix("evolve/")
        wait_for(
            lambda: f"review:      skillforge review show {proposal}" in daemon.output(),
            timeout=30,
            what="the proposal announcement",
            log=daemon.output,
        )
        assert proposal in daemon.cli("review", "list").stdout
        shown = daemon.cli("review", "show", proposal).stdout
        assert "diff --git" in shown and "## How to review" in shown
        accepted = daemon.cli("review", "accept", proposal)
        assert "merged into main" in accepted.stdout
        status = daemon.cli("status").stdout
        assert f"ingested     {len(records)} trajectories" in status
        assert "proposals    0 open" in status
    finally:
        code = daemon.stop()
    assert code == 0 and "skillforge stopped" in daemon.output()

    clone = tmp_path / "home" / ".agents" / "skills"
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
    check = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(clone)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    tools = {c.name for r in records for c in parse_record(r).tool_calls}
    learned = [p for p in clone.glob("*/SKILL.md") if "skillforge.managed" in p.read_text()]
    assert learned
    for path in learned:
        procedure = path.read_text().split("## Procedure", 1)[1].split("\n## ", 1)[0]
        named = set(re.findall(r"^\d+\. [^`\n]*`([^`]+)`", procedure, re.M))
        assert named <= tools
        # every lesson is in checks.json beside it, about tools the runs used
        checks = json.loads((path.parent / "checks.json").read_text())["checks"]
        about = set().union(*(mentions(Check.from_json(c)) for c in checks))
        assert about <= tools


def small_run(i: int) -> dict:
    return {
        "id": f"kill-{i:05d}",
        "task": f"look up order {i} and cancel it",
        "steps": [
            {
                "type": "tool_call",
                "name": "get_order",
                "arguments": {"order_id": i},
                "result": "pending",
            },
            {
                "type": "tool_call",
                "name": "cancel_order",
                "arguments": {"order_id": i},
                "result": "ok",
            },
        ],
        "outcome": {"success": True},
    }


def test_sigkill_mid_intake_loses_and_duplicates_nothing(tmp_path):
    total, files = 60000, 3
    daemon = DaemonProcess(
        tmp_path / "var", tmp_path / "inbox", evolve_after=10**9, evolve_every_minutes=600
    )
    daemon.inbox.mkdir(parents=True)
    per_file = [[] for _ in range(files)]
    for i in range(total):
        per_file[i % files].append(json.dumps(small_run(i)) + "\n")
    rng = random.Random(7)
    killed_mid_intake = 0
    written = [0] * files
    for round_no in range(4):
        # Append the next quarter of every file, then kill the daemon while it reads.
        for f in range(files):
            upto = len(per_file[f]) * (round_no + 1) // 4
            with (daemon.inbox / f"w{f}.jsonl").open("a") as handle:
                handle.writelines(per_file[f][written[f] : upto])
            written[f] = upto
        before = len(daemon.stored_ids())
        daemon.start()
        wait_for(
            lambda before=before: len(daemon.stored_ids()) > before,
            timeout=60,
            what="intake to begin",
            log=daemon.output,
        )
        time.sleep(rng.uniform(0.0, 0.15))
        stored_at_kill = len(daemon.stored_ids())
        daemon.kill()
        killed_mid_intake += stored_at_kill < sum(written)
    daemon.start()
    try:
        wait_for(
            lambda: len(daemon.stored_ids()) >= total,
            timeout=120,
            what="all lines",
            log=daemon.output,
        )
        time.sleep(1.0)  # a duplicate, if any, would arrive now
        ids = daemon.stored_ids()
    finally:
        daemon.stop()
    assert killed_mid_intake >= 1, "the daemon was never killed mid-intake; the test proved nothing"
    assert len(ids) == total and set(ids) == {f"kill-{i:05d}" for i in range(total)}
    assert daemon.quarantined() == 0  # no half line was ever read as a bad one
