"""`skillforge rollback SKILL [--to VERSION]`: a reviewed proposal that puts a folder back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from evolver.regression import skill_version
from skillforge import cli, review
from skillforge.config import load
from skillforge.cycle import run_cycle
from skillforge.library import CommitSpec, FileChange, LibraryRepo
from skillforge.store import Store
from tests.evolver.conftest import run as build_run
from tests.test_regression import V1, V2, runs, skill_text

V3 = skill_text("3", "Call `ship_order` twice.")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout


def land(repo: LibraryRepo, branch: str, files: dict[str, str | None]) -> None:
    changes = tuple(FileChange(path, text) for path, text in files.items())
    repo.commit_on_branch(branch, [CommitSpec(f"Change on {branch}", changes)])
    with repo.lock():
        repo.merge(branch, f"Accept {branch}")


@pytest.fixture
def three_versions(tmp_path, monkeypatch):
    """ship-order at version 3 on main; version 2 had a script that version 3 dropped."""
    seed = tmp_path / "seed" / "ship-order"
    seed.mkdir(parents=True)
    (seed / "SKILL.md").write_text(V1)
    (tmp_path / "skillforge.toml").write_text(
        f'[skillforge]\nhome = "var"\nseed = "{tmp_path / "seed"}"\n'
    )
    monkeypatch.chdir(tmp_path)
    config = load(environ={}, cwd=tmp_path)
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    land(repo, "evolve/v2", {"ship-order/SKILL.md": V2, "ship-order/scripts/check.sh": "echo 2\n"})
    land(
        repo,
        "evolve/v3",
        {
            "ship-order/SKILL.md": V3,
            "ship-order/scripts/check.sh": None,
            "ship-order/extra.md": "new in 3\n",
        },
    )
    return config, repo


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_rollback_proposes_the_previous_version_and_accept_lands_it(
    capsys, three_versions, tmp_path
):
    config, repo = three_versions
    main_before = repo.head("main")
    code, out, _ = run(capsys, "rollback", "ship-order")
    assert code == 0 and "from version 3 to version 2" in out
    assert repo.head("main") == main_before  # only a proposal: main untouched
    with Store(config.db_path) as store:
        [proposal] = store.proposals("open")
        assert proposal["branch"].startswith("rollback/")
        [change] = store.proposal_changes(proposal["id"])
        assert (change["skill"], change["action"], change["version"]) == (
            "ship-order",
            "update",
            "4",
        )
        assert change["summary"] == "Roll back ship-order to version 2"
        review.accept(store, repo, proposal["id"])
    clone = tmp_path / "agent"
    git(tmp_path, "clone", "-q", config.remote_url, str(clone))
    folder = clone / "ship-order"
    assert "straight away" in (folder / "SKILL.md").read_text()  # version 2's procedure
    assert skill_version((folder / "SKILL.md").read_text()) == "4"
    assert (folder / "scripts" / "check.sh").read_text() == "echo 2\n"  # back
    assert not (folder / "extra.md").exists()  # added after version 2: gone


def test_rollback_to_a_named_version_carries_the_runs_figures(capsys, three_versions):
    config, repo = three_versions
    with Store(config.db_path) as store:
        store.add_trajectories(runs("1", 10, 2) + runs("3", 2, 10), source="test")
    code, out, _ = run(capsys, "rollback", "ship-order", "--to", "1")
    assert code == 0 and "to version 1" in out
    assert "success fell from 83% (10/12 runs) with version 1 to 17% (2/12 runs)" in out
    with Store(config.db_path) as store:
        [proposal] = store.proposals("open")
        text = repo.read("ship-order/SKILL.md", proposal["branch"])
    assert "verify_address" in text and skill_version(text) == "4"
    assert repo.files("ship-order", proposal["branch"]) == ["ship-order/SKILL.md"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-skill"], "no skill 'no-such-skill' on main; its skills are: ship-order"),
        (["ship-order", "--to", "7"], "never had version '7' on main; its versions: 3, 2, 1"),
        (["ship-order", "--to", "3"], "is at version 3 already"),
        (["../etc"], "is not a skill name"),
    ],
)
def test_unknown_skills_and_versions_are_clear_errors(capsys, three_versions, args, message):
    config, _ = three_versions
    code, _, err = run(capsys, "rollback", *args)
    assert code == 1 and message in err
    with Store(config.db_path) as store:
        assert store.proposals() == []


def test_a_cycle_does_not_supersede_a_rollback_nor_rewrite_its_skill(capsys, three_versions):
    config, repo = three_versions
    assert run(capsys, "rollback", "ship-order")[0] == 0
    with Store(config.db_path) as store:
        [rollback] = store.proposals("open")
        packing = [
            build_run(f"pack-{i}", f"pack parcel P{i}", ["get_parcel", "pack_parcel"])
            for i in range(6)
        ]
        store.add_trajectories(runs("3", 6, 6) + packing, source="test")
        said: list[str] = []
        result = run_cycle(store, repo, config, say=said.append)
        assert store.proposal(rollback["id"])["status"] == "open"
        assert any("change to ship-order: an open rollback proposal" in line for line in said)
        skills = [c["skill"] for c in store.proposal_changes(result.proposal)]
        assert skills and "ship-order" not in skills
