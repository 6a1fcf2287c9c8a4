"""The opt-in auto-merge policy: only added pitfalls/guardrails to skillforge-written skills,
backed by enough failures; and the merge itself, locally and through a code host's API."""

from __future__ import annotations

from pathlib import Path

import pytest

from evolver.changes import Evidence, SkillChange
from skillforge import automerge, host_sync
from skillforge.config import load
from skillforge.hosts import host_from_config
from skillforge.library import CommitSpec, FileChange, LibraryRepo
from skillforge.series import Plan
from skillforge.store import Store
from tests.fake_host import TOKEN, FakeHost

OLD = """---
name: book-flight
description: Book a flight for a customer.
metadata:
  skillforge.managed: 'true'
  skillforge.version: '1'
  skillforge.fingerprint: aaaa
---
# Book flight

A person's note, outside the block.

<!-- skillforge:begin -->
## When to use

- Key terms: book, flight

## Procedure

1. Call `search_flights` with `origin`.
2. Call `book_flight` with `flight_id`.

## Pitfalls

- `book_flight` failed with "seat taken": seen 3 times in 3 failed runs.

## Evidence

- Runs: 10 (6 succeeded, 4 failed, 0 unknown); success rate 60%
- Fingerprint: `aaaa`
<!-- skillforge:end -->
"""

SEAT = '- `book_flight` failed with "seat taken": seen 3 times in 3 failed runs.\n'
PITFALL = '- `book_flight` failed with "fare expired": seen 4 times in 4 failed runs.\n'
GUARDRAIL = "\n## Guardrails\n\n- invalid-arguments (3 failed runs): check the fare first.\n"
NEW = (
    OLD.replace("'1'", "'2'")
    .replace("aaaa", "bbbb")
    .replace("in 3 failed runs.\n", "in 3 failed runs.\n" + PITFALL + GUARDRAIL)
    .replace("Runs: 10 (6 succeeded, 4 failed", "Runs: 14 (6 succeeded, 8 failed")
)


def change(content: str = NEW, action: str = "update", skill: str = "book-flight", failures=8):
    evidence = Evidence(
        trajectory_ids=("r1",), runs=14, successes=6, failures=failures,
        success_rate=6 / 14, fingerprint="bbbb",
    )  # fmt: skip
    return SkillChange(
        skill=skill, action=action, content=content, summary="Update book-flight",
        reason="More failures seen.", evidence=evidence, cluster="c-1",
    )  # fmt: skip


def test_added_pitfalls_and_guardrails_backed_by_failures_qualify():
    verdict = automerge.check([change()], {"book-flight": OLD}, min_failures=3)
    assert verdict.allowed, verdict.reasons
    assert "book-flight" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("new", "why"),
    [
        (NEW.replace("4 times in 4 failed runs", "1 time in 1 failed run"), "backed by 1"),
        (NEW.replace(SEAT, ""), "removed or reworded"),
        (NEW.replace("seen 3 times in 3", "seen 5 times in 5"), "removed or reworded"),
        (NEW.replace("2. Call `book_flight`", "2. Call `reserve`"), "Procedure section changes"),
        (NEW.replace("A person's note", "An edited note"), "outside the managed block"),
        (NEW.replace("Book a flight for a customer.", "Book any flight."), "frontmatter changes"),
        (OLD.replace("'1'", "'2'"), "adds no pitfall"),
    ],
)  # fmt: skip
def test_anything_else_is_left_for_review(new, why):
    verdict = automerge.check([change(new)], {"book-flight": OLD}, min_failures=3)
    assert not verdict.allowed
    assert any(why in reason for reason in verdict.reasons), verdict.reasons


def test_new_retired_and_person_written_skills_need_a_person():
    person = OLD.replace("  skillforge.managed: 'true'\n", "")
    assert "person-written" in automerge.check([change()], {"book-flight": person}, 3).reasons[0]
    assert "create" in automerge.check([change(action="create")], {}, 3).reasons[0]
    assert "retire" in automerge.check([change("", "retire")], {"book-flight": OLD}, 3).reasons[0]
    assert not automerge.check([], {}, 3).allowed


def test_an_unstated_count_falls_back_to_the_changes_failures():
    bare = NEW.replace(PITFALL, "- `book_flight` is slow on Mondays.\n")
    assert automerge.check([change(bare, failures=8)], {"book-flight": OLD}, 3).allowed
    verdict = automerge.check([change(bare, failures=2)], {"book-flight": OLD}, 3)
    assert verdict.reasons == ("book-flight: an added line is backed by 2 failed runs (< 3)",)


def _proposal(tmp_path: Path, config, store: Store) -> tuple[LibraryRepo, Plan]:
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    branch = "evolve/p1"
    repo.commit_on_branch(
        branch, [CommitSpec("Update", (FileChange("book-flight/SKILL.md", NEW),))]
    )
    repo.push(f"refs/heads/{branch}")
    store.add_proposal(
        {"id": "p1", "branch": branch, "status": "open", "created_at": "2026-11-21T10:00:00",
         "description": "# Skill proposal p1\n"},
        [{"skill": "book-flight", "action": "update", "fingerprint": "bbbb",
          "content_sha": "x", "summary": "Update"}],
    )  # fmt: skip
    return repo, Plan(branch, [change()])


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    (tmp_path / "seed" / "book-flight").mkdir(parents=True)
    (tmp_path / "seed" / "book-flight" / "SKILL.md").write_text(OLD)
    return tmp_path / "seed"


def test_a_qualifying_proposal_is_merged_only_when_the_policy_is_on(tmp_path, seed):
    lines: list[str] = []
    off = load(environ={}, cwd=tmp_path, overrides={"seed": seed})
    assert off.auto_merge is False
    on = off.model_copy(update={"auto_merge": True})
    with Store(off.db_path) as store:
        repo, plan = _proposal(tmp_path, off, store)
        library = repo.skills("main")
        host_sync.publish(store, repo, off, None, "p1", plan.changes, plan, library)
        assert store.proposal("p1")["status"] == "open"
        host_sync.publish(
            store, repo, on, None, "p1", plan.changes, plan, library, say=lines.append
        )
        record = store.proposal("p1")
        assert record["status"] == "accepted"
        assert record["reason"].startswith("auto-merged under policy (auto_merge): only added")
        assert repo.skills("main")[0].text == NEW
        assert repo.branches() == [] and repo.branches(remote=True) == []
        assert lines[-1].startswith("proposal p1: auto-merged into main as ")


def test_with_a_host_the_pull_request_is_opened_and_merged_through_its_api(tmp_path, seed):
    with FakeHost("gitea", tmp_path / "srv") as fake:
        config = load(
            environ={}, cwd=tmp_path,
            overrides={"seed": seed, "remote": fake.remote, "host": "gitea",
                       "host_token": TOKEN, "auto_merge": True},
        )  # fmt: skip
        with Store(config.db_path) as store:
            repo, plan = _proposal(tmp_path, config, store)
            host = host_from_config(config, environ={})
            library = repo.skills("main")
            host_sync.publish(store, repo, config, host, "p1", plan.changes, plan, library)
            [pull] = fake.pulls.values()
            assert pull["merged"] and pull["merged_by"] == {"login": "skillforge-bot"}
            assert store.proposal("p1")["status"] == "accepted"
            assert (config.library_path / "book-flight" / "SKILL.md").read_text() == NEW


def test_a_proposal_holding_a_reviewers_edit_is_never_auto_merged(tmp_path, seed):
    config = load(environ={}, cwd=tmp_path, overrides={"seed": seed, "auto_merge": True})
    lines: list[str] = []
    with Store(config.db_path) as store:
        repo, plan = _proposal(tmp_path, config, store)
        kept = Plan(plan.branch, plan.changes, kept=("book-flight",))
        host_sync.publish(
            store, repo, config, None, "p1", plan.changes, kept, repo.skills("main"),
            say=lines.append,
        )  # fmt: skip
        assert store.proposal("p1")["status"] == "open"
        assert "a reviewer edited book-flight" in lines[-1]
