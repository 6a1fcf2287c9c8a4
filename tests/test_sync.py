"""`skillforge sync` into temporary HOME folders (both user layouts) and a project; it never
overwrites a person's edits, and plain `git pull` keeps working in what it made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skillforge import cli
from skillforge.config import load
from skillforge.library import CommitSpec, FileChange, LibraryRepo
from tests.conftest import CHECK_SKILLS, REPO_ROOT

NEW_SKILL = (
    "---\nname: pack-parcel\ndescription: Pack a parcel before shipping it.\n---\n"
    "# Pack parcel\n\n1. Call `get_order`.\n"
)
SEEDED = sorted(p.name for p in (REPO_ROOT / "skills").iterdir() if (p / "SKILL.md").exists())


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def library(tmp_path, monkeypatch):
    """The daemon's library (seeded) and a working folder whose skillforge.toml points at it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "skillforge.toml").write_text(
        f'[skillforge]\nhome = "var"\nseed = "{REPO_ROOT / "skills"}"\n'
    )
    monkeypatch.chdir(work)
    config = load(environ={}, cwd=work)
    repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
    return config, repo


def land(repo: LibraryRepo, branch: str, files: dict[str, str | None]) -> None:
    """Merge a change into the library's main, as `review accept` does."""
    changes = tuple(FileChange(path, text) for path, text in files.items())
    repo.commit_on_branch(branch, [CommitSpec(f"Change on {branch}", changes)])
    with repo.lock():
        repo.merge(branch, f"Accept {branch}")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("agent", "folder"), [("claude", ".claude/skills"), ("agents", ".agents/skills")]
)
def test_sync_clones_into_the_home_skills_folder_then_fast_forwards(
    capsys, library, isolated_home, agent, folder
):
    config, repo = library
    code, out, _ = run(capsys, "sync", "--agent", agent)
    target = isolated_home / folder
    assert code == 0 and f"into {target}: {len(SEEDED)} skills" in out
    assert sorted(p.parent.name for p in target.glob("*/SKILL.md")) == SEEDED
    check = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(target)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout

    land(repo, "evolve/add", {"pack-parcel/SKILL.md": NEW_SKILL})
    land(repo, "evolve/retire", {f"{SEEDED[0]}/SKILL.md": None})
    code, out, _ = run(capsys, "sync", "--agent", agent)
    assert code == 0 and f"updated {target}" in out
    assert "  added    pack-parcel" in out and f"  removed  {SEEDED[0]}" in out
    assert (target / "pack-parcel" / "SKILL.md").read_text() == NEW_SKILL
    assert not (target / SEEDED[0]).exists()
    code, out, _ = run(capsys, "sync", "--agent", agent)
    assert code == 0 and "is up to date" in out


def test_codex_reads_the_agents_folder_and_a_project_gets_its_own_clone(capsys, library, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    code, out, _ = run(capsys, "sync", "--agent", "codex", "--project", str(project))
    target = project / ".agents" / "skills"
    assert code == 0 and (target / SEEDED[0] / "SKILL.md").exists()
    assert "add `.agents/skills/` to its .gitignore" in out
    code, out, _ = run(capsys, "sync", "--agent", "claude", "--project", str(project))
    assert code == 0 and (project / ".claude" / "skills" / SEEDED[0] / "SKILL.md").exists()


def test_plain_git_pull_works_in_the_synced_folder(capsys, library, tmp_path):
    _, repo = library
    target = tmp_path / "skills"
    assert run(capsys, "sync", "--to", str(target))[0] == 0
    land(repo, "evolve/add", {"pack-parcel/SKILL.md": NEW_SKILL})
    git(target, "pull", "-q")
    assert (target / "pack-parcel" / "SKILL.md").read_text() == NEW_SKILL


def test_a_local_edit_is_refused_with_the_file_named_and_kept(capsys, library, tmp_path):
    _, repo = library
    target = tmp_path / "skills"
    run(capsys, "sync", "--to", str(target))
    edited = target / SEEDED[0] / "SKILL.md"
    edited.write_text(edited.read_text() + "\nMy own note.\n")
    land(
        repo,
        "evolve/change",
        {f"{SEEDED[0]}/SKILL.md": NEW_SKILL.replace("pack-parcel", SEEDED[0])},
    )
    head = git(target, "rev-parse", "HEAD")
    code, _, err = run(capsys, "sync", "--to", str(target))
    assert code == 1
    assert f"{SEEDED[0]}/SKILL.md (modified)" in err and "git -C" in err and "stash" in err
    assert edited.read_text().endswith("My own note.\n")  # nothing lost
    assert git(target, "rev-parse", "HEAD") == head  # nothing moved


def test_local_commits_are_refused_and_named(capsys, library, tmp_path):
    target = tmp_path / "skills"
    run(capsys, "sync", "--to", str(target))
    (target / "mine").mkdir()
    (target / "mine" / "SKILL.md").write_text(NEW_SKILL.replace("pack-parcel", "mine"))
    git(target, "add", "-A")
    git(target, "commit", "-qm", "My own skill")
    code, _, err = run(capsys, "sync", "--to", str(target))
    assert code == 1 and "1 local commit(s)" in err and "My own skill" in err
    assert "reset --keep" in err and (target / "mine" / "SKILL.md").exists()


def test_an_untracked_file_the_library_now_brings_is_refused(capsys, library, tmp_path):
    _, repo = library
    target = tmp_path / "skills"
    run(capsys, "sync", "--to", str(target))
    (target / "pack-parcel").mkdir()
    (target / "pack-parcel" / "SKILL.md").write_text("my draft\n")
    (target / "notes.txt").write_text("untouched by the library\n")
    land(repo, "evolve/add", {"pack-parcel/SKILL.md": NEW_SKILL})
    code, _, err = run(capsys, "sync", "--to", str(target))
    assert code == 1 and "pack-parcel/SKILL.md" in err
    assert (target / "pack-parcel" / "SKILL.md").read_text() == "my draft\n"


def test_a_folder_that_is_not_our_clone_is_never_mixed(capsys, library, tmp_path):
    target = tmp_path / "skills"
    (target / "hand-made").mkdir(parents=True)
    (target / "hand-made" / "SKILL.md").write_text("mine\n")
    code, _, err = run(capsys, "sync", "--to", str(target))
    assert code == 1 and "not a git clone of the library" in err and "hand-made" in err
    assert sorted(p.name for p in target.iterdir()) == ["hand-made"]

    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    git(other, "remote", "add", "origin", str(tmp_path / "elsewhere.git"))
    (other / "x.txt").write_text("x")
    code, _, err = run(capsys, "sync", "--to", str(other))
    assert code == 1 and "elsewhere.git" in err and "not the library" in err


def test_the_library_can_be_published_as_a_plugin_marketplace(capsys, library, tmp_path):
    from evolver.changes import Evidence, SkillChange
    from skillforge.plugin import MARKETPLACE, refresh_commits

    config, repo = library
    code, out, _ = run(capsys, "publish-plugin")
    assert code == 0 and "publish-plugin-" in out
    proposal = out.split()[1].rstrip(":")
    assert run(capsys, "review", "accept", proposal)[0] == 0
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", config.remote_url, str(clone))
    manifest = json.loads((clone / MARKETPLACE).read_text())
    assert manifest["name"] and manifest["owner"]["name"]
    [plugin] = manifest["plugins"]
    assert plugin["source"] == "./" and plugin["strict"] is False
    assert plugin["skills"] == [f"./{name}" for name in SEEDED]
    assert all((clone / path / "SKILL.md").is_file() for path in plugin["skills"])
    check = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(clone)], capture_output=True, text=True
    )
    assert check.returncode == 0 and f"{len(SEEDED)} passed, 0 failed" in check.stdout
    assert run(capsys, "publish-plugin")[1].startswith("main already publishes")
    # A cycle's changes keep the list current: a retired skill leaves it, a new one joins.
    ev = Evidence(
        trajectory_ids=(), runs=0, successes=0, failures=0, success_rate=0, fingerprint="f"
    )
    new = SkillChange(skill="pack-parcel", action="create", content=NEW_SKILL, summary="s",
                      reason="r", evidence=ev, cluster="c")  # fmt: skip
    gone = new.model_copy(update={"skill": SEEDED[0], "action": "retire", "content": ""})
    [commit] = refresh_commits(repo, [new, gone])
    listed = json.loads(commit.files[0].content)["plugins"][0]["skills"]
    assert listed == sorted(f"./{n}" for n in [*SEEDED[1:], "pack-parcel"])
