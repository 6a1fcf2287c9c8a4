"""End to end with a code host: cycles open and update a pull request on a loopback Gitea/GitHub
whose git remote is served for real (`git http-backend`); a reviewer comments and closes it,
or pushes an edit to the branch, and the next cycles honour that."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from evolver.model import Trajectory
from skillforge import review
from skillforge.config import load
from skillforge.cycle import run_cycle
from skillforge.errors import CodeHostError
from skillforge.importers import parse_record
from skillforge.library import LibraryRepo
from skillforge.store import Store
from tests.conftest import REPO_ROOT
from tests.fake_host import TOKEN, FakeHost


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def trials(airline_records) -> dict[int, list[Trajectory]]:
    return {t: [parse_record(r) for r in airline_records if r["trial"] == t] for t in range(4)}


def hosted(tmp_path: Path, fake: FakeHost, **extra):
    values = dict(seed=REPO_ROOT / "skills", remote=fake.remote, host=fake.flavour)
    values |= dict(host_token=TOKEN, host_api_url=fake.api if fake.flavour == "github" else None)
    config = load(environ={}, cwd=tmp_path, overrides=values | extra)
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    return config, repo


@pytest.mark.parametrize("flavour", ["gitea", "github"])
def test_a_rejection_on_the_host_reaches_the_next_cycle(tmp_path, trials, flavour):
    lines: list[str] = []
    with FakeHost(flavour, tmp_path / "srv") as fake, Store(tmp_path / "db.sqlite") as store:
        config, repo = hosted(tmp_path, fake)
        store.add_trajectories(trials[0], source="test")
        first = run_cycle(store, repo, config, say=lines.append)
        [pull] = fake.pulls.values()
        record = store.proposal(first.proposal)
        assert (record["pr_number"], record["pr_url"]) == (1, pull["html_url"])
        assert pull["head"]["ref"] == f"evolve/{first.proposal}"
        assert pull["body"].startswith(record["description"])
        assert "| Skill | Change | Runs | Success rate |" in pull["body"]
        assert "```mermaid" in pull["body"]

        store.add_trajectories(trials[1], source="test")
        second = run_cycle(store, repo, config, say=lines.append)
        assert second.proposal != first.proposal and len(fake.pulls) == 1  # the same PR
        assert f"Skill proposal {second.proposal}" in pull["body"]
        assert store.proposal(first.proposal)["status"] == "superseded"
        record = store.proposal(second.proposal)
        assert (record["branch"], record["pr_number"]) == (pull["head"]["ref"], 1)
        diff = repo.diff("main", record["branch"])  # main...branch: this cycle's changes only
        held = {c["skill"] for c in store.proposal_changes(second.proposal)}
        assert {p.split("/")[0] for p in _paths(diff)} == held

        skill = sorted(held)[0]
        fake.review(1, "alice", "Too specific.", lines=((f"{skill}/SKILL.md", "Say when not to."),))
        fake.comment(1, "bob", "Closing: the procedure skips the user check.")
        fake.close(1)
        rejected = {(c["skill"], c["fingerprint"]) for c in store.proposal_changes(second.proposal)}

        store.add_trajectories(trials[2], source="test")
        third = run_cycle(store, repo, config, say=lines.append)
        decided = store.proposal(second.proposal)
        assert decided["status"] == "rejected"
        assert "alice: Too specific." in decided["reason"]
        assert "bob: Closing: the procedure skips the user check." in decided["reason"]
        assert len(store.review_comments(second.proposal)) == 3
        assert pull["head"]["ref"] not in _remote_heads(config.remote_url)

        assert fake.pulls[2]["state"] == "open" and store.proposal(third.proposal)["pr_number"] == 2
        changes = store.proposal_changes(third.proposal)
        assert not {(c["skill"], c["fingerprint"]) for c in changes} & rejected
        again = [c for c in changes if c["skill"] == skill]
        assert again, "the rejected skill came back on new evidence"
        assert "Earlier rejected on" in again[0]["reason"]
        assert "Review comment by alice on" in again[0]["reason"]
        assert "Say when not to." in again[0]["reason"]
        assert "Say when not to." in fake.pulls[2]["body"]
        assert store.feedback_for(skill)[0].startswith("Earlier rejected on")


def test_a_reviewers_edit_on_the_branch_is_kept_then_merged(tmp_path, trials):
    lines: list[str] = []
    with FakeHost("gitea", tmp_path / "srv") as fake, Store(tmp_path / "db.sqlite") as store:
        config, repo = hosted(tmp_path, fake)
        store.add_trajectories(trials[0], source="test")
        first = run_cycle(store, repo, config, say=lines.append)
        branch = f"evolve/{first.proposal}"
        skill = store.proposal_changes(first.proposal)[0]["skill"]

        person = tmp_path / "reviewer"
        git("clone", "-q", "-b", branch, fake.remote, str(person))
        edited = (person / skill / "SKILL.md").read_text() + "\nReviewed by Alice: ask first.\n"
        (person / skill / "SKILL.md").write_text(edited)
        git("commit", "-qam", "Ask before acting", cwd=person)
        git("push", "-q", "origin", branch, cwd=person)
        reviewer_sha = git("rev-parse", "HEAD", cwd=person).strip()

        store.add_trajectories(trials[1], source="test")
        second = run_cycle(store, repo, config, say=lines.append)
        assert f"  keep {skill}: a reviewer edited it on {branch}" in lines
        record = store.proposal(second.proposal)
        assert record["branch"] == branch and len(fake.pulls) == 1
        git("fetch", "-q", cwd=person)
        assert git("show", f"origin/{branch}:{skill}/SKILL.md", cwd=person) == edited
        git("merge-base", "--is-ancestor", reviewer_sha, f"origin/{branch}", cwd=person)
        assert skill in {c["skill"] for c in store.proposal_changes(second.proposal)}
        assert "Kept as a reviewer edited them" in fake.pulls[1]["body"]

        fake.merge(1, by="alice")
        assert review.read_back(store, repo, review_host(config)) == [(second.proposal, "accepted")]
        assert store.proposal(second.proposal)["reason"] == "merged on gitea by alice"
        assert (config.library_path / skill / "SKILL.md").read_text() == edited


def test_without_a_host_a_reviewers_push_is_kept_too(tmp_path, trials):
    lines: list[str] = []
    config = load(environ={}, cwd=tmp_path, overrides={"seed": REPO_ROOT / "skills"})
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    with Store(config.db_path) as store:
        store.add_trajectories(trials[0], source="test")
        first = run_cycle(store, repo, config, say=lines.append)
        branch = f"evolve/{first.proposal}"
        skill = store.proposal_changes(first.proposal)[-1]["skill"]
        person = tmp_path / "reviewer"
        git("clone", "-q", "-b", branch, config.remote_url, str(person))
        (person / skill / "SKILL.md").write_text("---\nname: x\ndescription: y\n---\nMine.\n")
        git("commit", "-qam", "Rewrite by hand", cwd=person)
        git("push", "-q", "origin", branch, cwd=person)
        store.add_trajectories(trials[1], source="test")
        second = run_cycle(store, repo, config, say=lines.append)
        assert store.proposal(second.proposal)["branch"] == branch
        assert "Mine." in git("show", f"{branch}:{skill}/SKILL.md", cwd=config.library_path)


def test_a_pull_request_the_host_failed_to_open_is_opened_on_the_next_look(tmp_path, trials):
    with FakeHost("github", tmp_path / "srv") as fake, Store(tmp_path / "db.sqlite") as store:
        config, repo = hosted(tmp_path, fake)
        store.add_trajectories(trials[0], source="test")
        fake.failures = [503] * 20  # down for the whole publish step, with its retries
        with pytest.raises(CodeHostError, match="503: upstream hiccup"):
            run_cycle(store, repo, config, say=lambda _: None)
        fake.failures = []
        [proposal] = store.proposals("open")
        assert proposal["pr_number"] is None and not fake.pulls
        assert review.read_back(store, repo, review_host(config)) == []
        assert store.proposal(proposal["id"])["pr_number"] == 1
        assert fake.pulls[1]["head"]["ref"] == proposal["branch"]


def review_host(config):
    from skillforge.hosts import host_from_config

    return host_from_config(config, environ={})


def _paths(diff: str) -> set[str]:
    return {line.split(" b/", 1)[1] for line in diff.splitlines() if line.startswith("diff --git")}


def _remote_heads(remote: str) -> set[str]:
    out = git("ls-remote", "--heads", remote)
    return {line.split("refs/heads/", 1)[1] for line in out.splitlines()}
