"""A cycle end to end on real git: proposal branch, no-change cycles, review decisions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evolver.checks import Check, mentions
from evolver.markup import inline
from evolver.model import Trajectory
from skillforge import review
from skillforge.config import load
from skillforge.cycle import run_cycle
from skillforge.errors import ReviewError
from skillforge.importers import parse_record
from skillforge.library import CommitSpec, FileChange, LibraryRepo
from skillforge.store import Store
from tests.conftest import CHECK_SKILLS, REPO_ROOT


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def remote_branches(config) -> list[str]:
    out = git("ls-remote", "--heads", config.remote_url)
    return sorted(line.split("refs/heads/")[1] for line in out.splitlines())


@pytest.fixture
def setup(tmp_path):
    config = load(environ={}, cwd=tmp_path, overrides={"seed": REPO_ROOT / "skills"})
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with Store(config.db_path) as store:
        yield config, repo, store


@pytest.fixture(scope="module")
def airline_runs(airline_records) -> list[Trajectory]:
    return [parse_record(r) for r in airline_records if r["trial"] in (0, 1)]


def quiet(_: str) -> None:
    pass


def test_a_cycle_proposes_skills_on_a_pushed_branch(setup, airline_runs):
    config, repo, store = setup
    main_before = git("rev-parse", "main", cwd=config.library_path)
    store.add_trajectories(airline_runs, source="test")
    result = run_cycle(store, repo, config, say=quiet)
    assert result.status == "done" and result.changes >= 2
    assert remote_branches(config) == sorted(["main", f"evolve/{result.proposal}"])
    assert git("rev-parse", "main", cwd=config.library_path) == main_before  # main untouched
    log = repo.log("main", f"evolve/{result.proposal}")
    assert len(log) == result.changes  # one commit per skill
    [proposal] = store.proposals("open")
    assert result.description.read_text() == proposal["description"]
    assert "| Skill | Change | Runs | Success rate |" in proposal["description"]
    for change in store.proposal_changes(proposal["id"]):
        assert f"`{change['skill']}`" in proposal["description"]
    # each learned skill's lessons, with their held-out figures, as its checks.json has them
    header = "| Lesson | Runs that did it: succeeded | Runs that did not | p |"
    assert header in proposal["description"]
    learned = [c["skill"] for c in store.proposal_changes(proposal["id"])]
    says = json.loads(repo.read(f"{learned[0]}/checks.json", f"evolve/{result.proposal}"))
    first = says["checks"][0]
    assert f"| {inline(first['says'], 200)} | " in proposal["description"]


def test_a_cycle_with_nothing_new_commits_nothing(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    first = run_cycle(store, repo, config, say=quiet)
    branches = remote_branches(config)
    again = run_cycle(store, repo, config, say=quiet)
    assert again.status == "nothing-new" and again.changes == 0
    assert remote_branches(config) == branches
    assert [p["id"] for p in store.proposals("open")] == [first.proposal]


def test_new_runs_that_change_no_evidence_keep_the_open_proposal(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    first = run_cycle(store, repo, config, say=quiet)
    lonely = Trajectory(id="lonely-1", task="translate a poem into Latin", steps=[])
    store.add_trajectories([lonely], source="test")
    second = run_cycle(store, repo, config, say=quiet)
    assert second.status == "done" and second.proposal == first.proposal
    assert "already holds" in second.message
    assert len(store.proposals()) == 1


def test_accepting_merges_into_main_and_a_fresh_clone_has_valid_skills(
    setup, airline_runs, tmp_path
):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    result = run_cycle(store, repo, config, say=quiet)
    review.accept(store, repo, result.proposal)
    assert store.proposal(result.proposal)["status"] == "accepted"
    assert remote_branches(config) == ["main"]
    clone = tmp_path / "agent-skills"
    git("clone", "-q", config.remote_url, str(clone))
    check = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(clone)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    tools = {c.name for t in airline_runs for c in t.tool_calls}
    learned = [c["skill"] for c in store.proposal_changes(result.proposal)]
    for name in learned:
        text = (clone / name / "SKILL.md").read_text()
        procedure = text.split("## Procedure", 1)[1].split("\n## ", 1)[0]
        named = set(re.findall(r"^\d+\. [^`\n]*`([^`]+)`", procedure, re.M))
        assert named <= tools, (name, named - tools)
        # the lessons travel with the skill, machine-readable, about tools the runs used
        checks = json.loads((clone / name / "checks.json").read_text())["checks"]
        assert checks, name
        about = set().union(*(mentions(Check.from_json(c)) for c in checks))
        assert about <= tools, (name, about - tools)
    with pytest.raises(ReviewError, match="already accepted"):
        review.accept(store, repo, result.proposal)


def test_a_rejected_change_is_not_proposed_again_on_the_same_evidence(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    first = run_cycle(store, repo, config, say=quiet)
    review.reject(store, repo, first.proposal, reason="too specific to one airline")
    assert store.proposal(first.proposal)["reason"] == "too specific to one airline"
    assert remote_branches(config) == ["main"]
    store.add_trajectories(
        [Trajectory(id="lonely-2", task="write a haiku", steps=[])], source="test"
    )
    second = run_cycle(store, repo, config, say=quiet)
    assert second.changes == 0 and not store.proposals("open")


def test_more_evidence_brings_a_rejected_skill_back(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    first = run_cycle(store, repo, config, say=quiet)
    rejected = {(c["skill"], c["fingerprint"]) for c in store.proposal_changes(first.proposal)}
    review.reject(store, repo, first.proposal, reason="not yet")
    repeats = [r.model_copy(update={"id": r.id + "-again"}) for r in airline_runs if r.succeeded]
    store.add_trajectories(repeats, source="test")
    second = run_cycle(store, repo, config, say=quiet)
    assert second.changes >= 1
    again = {(c["skill"], c["fingerprint"]) for c in store.proposal_changes(second.proposal)}
    assert not again & rejected


def test_a_reject_needs_a_reason(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    result = run_cycle(store, repo, config, say=quiet)
    with pytest.raises(ReviewError, match="needs a reason"):
        review.reject(store, repo, result.proposal, reason="  ")


def test_leftovers_of_a_crashed_cycle_are_cleaned_and_the_work_redone(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    store.start_cycle("crashed", store.high_water(), now=__import__("datetime").datetime.now())
    repo.commit_on_branch("evolve/crashed", [CommitSpec("half", (FileChange("x/SKILL.md", "x"),))])
    repo.push("refs/heads/evolve/crashed")
    result = run_cycle(store, repo, config, say=quiet)
    assert "evolve/crashed" not in remote_branches(config) + repo.branches()
    assert store.last_cycle(status=["interrupted"])["id"] == "crashed"
    assert result.status == "done" and result.changes >= 2


def test_the_ledger_remembers_each_change_its_decision_and_runs_per_version(setup, airline_runs):
    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    first = run_cycle(store, repo, config, say=quiet)
    skill = store.proposal_changes(first.proposal)[0]["skill"]
    review.reject(store, repo, first.proposal, reason="wait for more runs")
    [entry] = store.ledger(skill)
    assert (entry["status"], entry["decision_reason"], entry["version"]) == (
        "rejected",
        "wait for more runs",
        "1",
    )
    assert entry["runs"] >= config.min_runs and entry["reason"]
    loaded = [
        Trajectory(
            id=f"v{i}",
            task="x",
            skills=[{"name": skill, "version": str(1 + i % 2)}],
            outcome={"success": i % 4 == 0},
        )
        for i in range(8)
    ]
    store.add_trajectories(loaded, source="test")
    versions = {v["version"]: v for v in store.skill_versions(skill)}
    assert (versions["1"]["runs"], versions["1"]["successes"]) == (4, 2)
    assert (versions["2"]["runs"], versions["2"]["successes"]) == (4, 0)
    assert store.skill_usage()[skill] == 8


def test_clusters_persist_so_a_later_cycle_updates_the_accepted_skills(setup, airline_records):
    config, repo, store = setup
    trials = {t: [parse_record(r) for r in airline_records if r["trial"] == t] for t in range(4)}
    store.add_trajectories(trials[0] + trials[1], source="test")
    first = run_cycle(store, repo, config, say=quiet)
    review.accept(store, repo, first.proposal)
    before = store.memberships()
    assert len(before) == 100
    store.add_trajectories(trials[2] + trials[3], source="test")
    second = run_cycle(store, repo, config, say=quiet)
    after = store.memberships()
    assert all(after[run_id] == cluster_id for run_id, cluster_id in before.items())
    accepted = {c["skill"] for c in store.proposal_changes(first.proposal)}
    actions = {c["skill"]: c["action"] for c in store.proposal_changes(second.proposal)}
    assert any(actions.get(skill) == "update" for skill in accepted)
    assert not [s for s, a in actions.items() if a == "create" and s in accepted]


def test_each_proposed_skill_comes_with_its_tool_graph(setup, airline_runs):
    import xml.etree.ElementTree as ET

    config, repo, store = setup
    store.add_trajectories(airline_runs, source="test")
    result = run_cycle(store, repo, config, say=quiet)
    skills = [c["skill"] for c in store.proposal_changes(result.proposal)]
    description = result.description.read_text()
    assert description.count("<summary>Tool graph of these runs</summary>") == len(skills)
    folder = config.proposals_dir / result.proposal
    tools = {c.name for t in airline_runs for c in t.tool_calls}
    for skill in skills:
        svg = ET.fromstring((folder / f"{skill}.svg").read_text())
        assert svg.tag.endswith("svg")
        graph = json.loads((folder / f"{skill}.json").read_text())
        names = {n["id"] for n in graph["nodes"]} - {"START", "END"}
        assert names and names <= tools
        assert (folder / f"{skill}.graphml").read_text().startswith("<graphml")


def test_an_unused_skill_is_retired_through_a_proposal_that_deletes_its_folder(tmp_path):
    import shutil

    seed = tmp_path / "seed"
    shutil.copytree(REPO_ROOT / "skills", seed)
    stale = seed / "old-routine"
    (stale / "scripts").mkdir(parents=True)
    (stale / "SKILL.md").write_text(
        "---\nname: old-routine\ndescription: An old learned routine.\nmetadata:\n"
        "  skillforge.managed: 'true'\n---\n# Old routine\n"
    )
    (stale / "scripts" / "run.sh").write_text("echo old\n")
    config = load(environ={}, cwd=tmp_path, overrides={"seed": seed, "unused_days": 0})
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    reporting = Trajectory(
        id="uses-a-seed-skill",
        task="cancel order W1",
        outcome={"success": True},
        skills=[{"name": "recover-from-tool-errors", "version": "1"}],
    )
    with Store(config.db_path) as store:
        store.add_trajectories([reporting], source="test")
        result = run_cycle(store, repo, config, say=quiet)
        [change] = store.proposal_changes(result.proposal)
        assert (change["skill"], change["action"]) == ("old-routine", "retire")
        branch = f"evolve/{result.proposal}"
        assert repo.files("old-routine", branch) == []
        assert "no run loaded it" in store.proposal(result.proposal)["description"]
        review.accept(store, repo, result.proposal)
    clone = tmp_path / "agent"
    git("clone", "-q", config.remote_url, str(clone))
    assert not (clone / "old-routine").exists()
    assert (clone / "recover-from-tool-errors" / "SKILL.md").exists()  # person-written: kept
