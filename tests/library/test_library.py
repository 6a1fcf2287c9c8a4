"""LibraryRepo against real git: bare remotes and working copies in tmp_path, no mocks."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from skillforge.errors import (
    LibraryLockedError,
    LibraryRepoError,
    MergeConflictError,
    UnsafePathError,
)
from skillforge.library import CommitSpec, FileChange, LibraryRepo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME with a minimal gitconfig; no system config, no leaked GIT_* vars."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Tester\n\temail = tester@example.com\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for key in list(os.environ):
        if (
            key.startswith("GIT_")
            and not key.startswith("GIT_PYTHON")
            and key != ("GIT_CONFIG_NOSYSTEM")
        ):
            monkeypatch.delenv(key)
    return home


def run_git(cwd: Path, *args: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def tree_paths(repo: Path, ref: str) -> set[str]:
    return set(run_git(repo, "ls-tree", "-r", "--name-only", ref).split())


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    root = tmp_path / "seed"
    for name in ("alpha", "beta"):
        (root / name).mkdir(parents=True)
        (root / name / "SKILL.md").write_text(f"---\nname: {name}\n---\n{name} body\n")
    (root / "alpha" / "scripts").mkdir()
    (root / "alpha" / "scripts" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "alpha" / "scripts" / "run.sh").chmod(0o755)
    (root / "notes.txt").write_text("not a skill\n")
    (root / "nodoc").mkdir()
    (root / "nodoc" / "README.md").write_text("no SKILL.md here\n")
    return root


@pytest.fixture
def lib(tmp_path: Path, seed: Path) -> LibraryRepo:
    return LibraryRepo.ensure(tmp_path / "work", tmp_path / "remote.git", seed)


def remote_of(lib: LibraryRepo) -> Path:
    assert isinstance(lib.remote, Path)
    return lib.remote


def three_commits() -> list[CommitSpec]:
    return [
        CommitSpec("Add gamma", (FileChange("gamma/SKILL.md", "gamma v1\n"),)),
        CommitSpec(
            "Update alpha\n\nBecause evidence.",
            (FileChange("alpha/SKILL.md", "alpha v2\n"), FileChange("gamma/ref.md", "ref\n")),
        ),
        CommitSpec("Delete beta", (FileChange("beta/SKILL.md", None),)),
    ]


def test_ensure_creates_remote_and_clone_and_seeds_only_skill_folders(
    tmp_path: Path, lib: LibraryRepo
) -> None:
    remote = remote_of(lib)
    assert run_git(remote, "rev-parse", "--is-bare-repository").strip() == "true"
    assert tree_paths(remote, "main") == {"alpha/SKILL.md", "alpha/scripts/run.sh", "beta/SKILL.md"}
    assert "100755" in run_git(remote, "ls-tree", "main", "alpha/scripts/run.sh")
    assert run_git(remote, "rev-list", "--count", "main").strip() == "1"
    assert lib.head() == run_git(remote, "rev-parse", "main").strip()
    assert (lib.workdir / "alpha" / "SKILL.md").read_text() == "---\nname: alpha\n---\nalpha body\n"
    assert run_git(lib.workdir, "status", "--porcelain") == ""
    assert run_git(lib.workdir, "config", "--local", "commit.gpgsign").strip() == "false"


def test_ensure_is_idempotent_and_a_second_working_copy_gets_main(
    tmp_path: Path, lib: LibraryRepo, seed: Path
) -> None:
    first = lib.head()
    again = LibraryRepo.ensure(tmp_path / "work", tmp_path / "remote.git", seed)
    assert again.head() == first
    assert run_git(remote_of(lib), "rev-list", "--count", "main").strip() == "1"
    other = LibraryRepo.ensure(tmp_path / "other", tmp_path / "remote.git", seed)
    assert other.head() == first
    assert (other.workdir / "beta" / "SKILL.md").exists()


def test_ensure_without_seed_makes_an_empty_main_and_sets_identity(
    tmp_path: Path, git_home: Path
) -> None:
    (git_home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    lib = LibraryRepo.ensure(tmp_path / "work", str(tmp_path / "remote.git"))
    assert lib.head() is not None
    assert lib.skills() == []
    assert run_git(lib.workdir, "config", "--local", "user.name").strip() == "skillforge"
    assert run_git(lib.workdir, "log", "-1", "--format=%ae").strip() == "skillforge@localhost"


def test_ensure_refuses_a_non_empty_non_git_workdir(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "stray.txt").write_text("x")
    with pytest.raises(LibraryRepoError, match="not a git working copy"):
        LibraryRepo.ensure(tmp_path / "work", tmp_path / "remote.git")


def test_head_of_a_missing_ref_is_none(lib: LibraryRepo) -> None:
    assert lib.head("no-such-branch") is None
    assert lib.head("main") == lib.head()


def test_commit_on_branch_builds_commits_without_touching_working_copy(
    lib: LibraryRepo,
) -> None:
    work = lib.workdir
    main_before = lib.head()
    index_before = (work / ".git" / "index").read_bytes()
    shas = lib.commit_on_branch("evolve/one", three_commits())

    assert len(shas) == 3
    assert lib.head("evolve/one") == shas[-1]
    assert run_git(work, "rev-parse", f"{shas[0]}^").strip() == main_before
    assert [subject for _, subject in lib.log("main", "evolve/one")] == [
        "Add gamma",
        "Update alpha",
        "Delete beta",
    ]
    assert [sha for sha, _ in lib.log("main", "evolve/one")] == shas
    assert "Because evidence." in run_git(work, "log", "-1", "--format=%B", shas[1])
    assert run_git(work, "show", f"{shas[1]}:alpha/SKILL.md") == "alpha v2\n"
    assert run_git(work, "show", f"{shas[0]}:gamma/SKILL.md") == "gamma v1\n"
    assert "beta/SKILL.md" in tree_paths(work, shas[1])
    assert "beta/SKILL.md" not in tree_paths(work, shas[2])
    # Working tree, index, HEAD and main are exactly as before.
    assert lib.head() == main_before
    assert run_git(work, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert (work / ".git" / "index").read_bytes() == index_before
    assert run_git(work, "status", "--porcelain") == ""
    assert not (work / "gamma").exists()
    assert (work / "beta" / "SKILL.md").exists()


def test_a_commit_that_changes_nothing_is_skipped(lib: LibraryRepo) -> None:
    same = (lib.workdir / "alpha" / "SKILL.md").read_text()
    shas = lib.commit_on_branch(
        "evolve/noop",
        [
            CommitSpec("Rewrite alpha identically", (FileChange("alpha/SKILL.md", same),)),
            CommitSpec("Add delta", (FileChange("delta/SKILL.md", "delta\n"),)),
        ],
    )
    assert len(shas) == 1
    assert lib.log("main", "evolve/noop") == [(shas[0], "Add delta")]
    assert (
        lib.commit_on_branch(
            "evolve/empty",
            [
                CommitSpec("Nothing", (FileChange("alpha/SKILL.md", same),)),
            ],
        )
        == []
    )
    assert lib.head("refs/heads/evolve/empty") is None


@pytest.mark.parametrize(
    "path",
    [
        "../x/SKILL.md",
        "/etc/x",
        "a/.git/config",
        "a\\b",
        ".GIT/x",
        "",
        "a/./b",
        "a//b",
        "-rf/SKILL.md",
        "a/b\x00c",
        "a/\nb",
        ".git",
        "x/.gitmodules",
    ],
)
def test_unsafe_paths_are_refused_and_create_no_branch(lib: LibraryRepo, path: str) -> None:
    refs_before = run_git(lib.workdir, "for-each-ref")
    with pytest.raises(UnsafePathError):
        lib.commit_on_branch("evolve/bad", [CommitSpec("bad", (FileChange(path, "x"),))])
    assert lib.head("refs/heads/evolve/bad") is None
    assert run_git(lib.workdir, "for-each-ref") == refs_before


def test_a_failure_midway_leaves_no_branch(lib: LibraryRepo) -> None:
    refs_before = run_git(lib.workdir, "for-each-ref")
    specs = three_commits()
    unsafe = [specs[0], CommitSpec("bad", (FileChange("../evil", "x"),)), specs[2]]
    with pytest.raises(UnsafePathError):
        lib.commit_on_branch("evolve/half", unsafe)
    # Content that cannot be written fails while building the 2nd commit, after the 1st.
    unencodable = [specs[0], CommitSpec("bad", (FileChange("a/SKILL.md", "\ud800"),)), specs[2]]
    with pytest.raises(LibraryRepoError, match="UTF-8"):
        lib.commit_on_branch("evolve/half", unencodable)
    assert lib.head("refs/heads/evolve/half") is None
    assert run_git(lib.workdir, "for-each-ref") == refs_before
    lib.fsck()


def test_an_existing_branch_is_not_overwritten(lib: LibraryRepo) -> None:
    first = lib.commit_on_branch("evolve/dup", three_commits()[:1])
    with pytest.raises(LibraryRepoError, match="already exists"):
        lib.commit_on_branch("evolve/dup", three_commits()[1:])
    assert lib.head("evolve/dup") == first[-1]


@pytest.mark.parametrize("branch", ["-x", "a..b", "has space", "@{-1}", "HEAD", "a/", "x.lock"])
def test_bad_branch_names_are_refused(lib: LibraryRepo, branch: str) -> None:
    with pytest.raises(UnsafePathError):
        lib.commit_on_branch(branch, three_commits()[:1])


def test_unknown_base_is_an_error(lib: LibraryRepo) -> None:
    with pytest.raises(LibraryRepoError, match="no 'nope'"):
        lib.commit_on_branch("evolve/x", three_commits()[:1], base="nope")


def test_push_branches_delete_and_rejected_push(lib: LibraryRepo) -> None:
    remote = remote_of(lib)
    shas = lib.commit_on_branch("evolve/one", three_commits())
    lib.commit_on_branch("other/two", three_commits()[:1])
    lib.push("evolve/one")
    assert f"{shas[-1]}\trefs/heads/evolve/one" in run_git(remote, "ls-remote", "--heads", ".")
    assert lib.branches() == ["evolve/one"]
    assert lib.branches(remote=True) == ["evolve/one"]
    assert lib.branches(prefix="") == ["evolve/one", "main", "other/two"]

    # A different history under the same name is a non-fast-forward: rejected, not forced.
    lib.delete_branch("evolve/one", remote=False)
    lib.commit_on_branch("evolve/one", three_commits()[:1])
    with pytest.raises(LibraryRepoError, match="rejected"):
        lib.push("evolve/one")
    with pytest.raises(LibraryRepoError, match="Refusing to push"):
        lib.push("+evolve/one")
    assert run_git(remote, "rev-parse", "evolve/one").strip() == shas[-1]

    lib.delete_branch("evolve/one")
    assert lib.branches() == []
    assert lib.branches(remote=True) == []
    lib.delete_branch("evolve/one")  # missing is fine
    with pytest.raises(LibraryRepoError):
        lib.delete_branch("main")


def test_diff_shows_the_proposal(lib: LibraryRepo) -> None:
    lib.commit_on_branch("evolve/one", three_commits())
    diff = lib.diff("main", "evolve/one")
    assert "+++ b/gamma/SKILL.md" in diff
    assert "+alpha v2" in diff
    assert "deleted file mode" in diff
    assert diff.endswith("\n")


def test_merge_lands_on_the_remote_and_a_fresh_clone_has_the_files(
    tmp_path: Path, lib: LibraryRepo
) -> None:
    before = lib.head()
    lib.commit_on_branch("evolve/one", three_commits())
    sha = lib.merge("evolve/one", "Merge evolve/one: gamma, alpha, beta")
    remote = remote_of(lib)
    assert run_git(remote, "rev-parse", "main").strip() == sha
    parents = run_git(remote, "rev-list", "--parents", "-1", sha).split()[1:]
    assert parents == [before, lib.head("evolve/one")]
    assert run_git(remote, "log", "-1", "--format=%s", sha).strip().startswith("Merge evolve/one")
    run_git(tmp_path, "clone", "-q", str(remote), "fresh")
    assert (tmp_path / "fresh" / "gamma" / "SKILL.md").read_text() == "gamma v1\n"
    assert not (tmp_path / "fresh" / "beta").exists()
    # The working copy matches main.
    assert (lib.workdir / "alpha" / "SKILL.md").read_text() == "alpha v2\n"
    assert not (lib.workdir / "beta" / "SKILL.md").exists()
    assert run_git(lib.workdir, "status", "--porcelain") == ""
    with pytest.raises(LibraryRepoError, match="already merged"):
        lib.merge("evolve/one", "again")


def test_merge_refuses_a_dirty_working_copy_or_another_branch(lib: LibraryRepo) -> None:
    before = lib.head()
    lib.commit_on_branch("evolve/one", three_commits())
    (lib.workdir / "alpha" / "SKILL.md").write_text("local edit\n")
    with pytest.raises(LibraryRepoError, match="uncommitted changes"):
        lib.merge("evolve/one", "merge")
    run_git(lib.workdir, "checkout", "--", "alpha/SKILL.md")
    run_git(lib.workdir, "checkout", "-q", "evolve/one")
    with pytest.raises(LibraryRepoError, match="not on main"):
        lib.merge("evolve/one", "merge")
    assert lib.head() == before
    assert run_git(remote_of(lib), "rev-parse", "main").strip() == before


def test_merge_conflict_raises_and_leaves_main_unchanged(lib: LibraryRepo) -> None:
    lib.commit_on_branch("evolve/a", [CommitSpec("a", (FileChange("alpha/SKILL.md", "A\n"),))])
    lib.commit_on_branch("evolve/b", [CommitSpec("b", (FileChange("alpha/SKILL.md", "B\n"),))])
    merged = lib.merge("evolve/a", "Merge a")
    with pytest.raises(MergeConflictError):
        lib.merge("evolve/b", "Merge b")
    assert lib.head() == merged
    assert run_git(remote_of(lib), "rev-parse", "main").strip() == merged
    assert run_git(lib.workdir, "status", "--porcelain") == ""
    assert not (lib.workdir / ".git" / "MERGE_HEAD").exists()
    assert (lib.workdir / "alpha" / "SKILL.md").read_text() == "A\n"


RACE_HOOK = """#!/bin/sh
# On the first push only, someone else pushes to main from another clone.
unset $(git rev-parse --local-env-vars)
[ -e "{marker}" ] && exit 0
touch "{marker}"
git clone -q "{remote}" "{other}" && cd "{other}" &&
echo theirs > theirs.md && git add theirs.md && git commit -qm "Their change" &&
git push -q origin main
"""


def test_merge_that_loses_a_push_race_lands_on_top(tmp_path: Path, lib: LibraryRepo) -> None:
    remote = remote_of(lib)
    hook = lib.workdir / ".git" / "hooks" / "pre-push"
    hook.write_text(
        RACE_HOOK.format(marker=tmp_path / "raced", remote=remote, other=tmp_path / "someone")
    )
    hook.chmod(0o755)
    lib.commit_on_branch("evolve/one", three_commits())
    sha = lib.merge("evolve/one", "Merge evolve/one")

    assert (tmp_path / "raced").exists()
    assert run_git(remote, "rev-parse", "main").strip() == sha
    first_parent = run_git(remote, "rev-parse", f"{sha}^1").strip()
    assert run_git(remote, "log", "-1", "--format=%s", first_parent).strip() == "Their change"
    assert {"theirs.md", "gamma/SKILL.md"} <= tree_paths(remote, "main")
    assert (lib.workdir / "theirs.md").exists()
    assert run_git(lib.workdir, "status", "--porcelain") == ""


def test_a_push_rejected_for_another_reason_puts_main_back(lib: LibraryRepo) -> None:
    hook = lib.workdir / ".git" / "hooks" / "pre-push"
    hook.write_text("#!/bin/sh\necho 'policy says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = lib.head()
    lib.commit_on_branch("evolve/one", three_commits())
    with pytest.raises(LibraryRepoError, match="policy says no"):
        lib.merge("evolve/one", "Merge")
    assert lib.head() == before
    assert run_git(remote_of(lib), "rev-parse", "main").strip() == before
    assert run_git(lib.workdir, "status", "--porcelain") == ""


def test_lock_excludes_another_process_and_thread(lib: LibraryRepo) -> None:
    script = (
        "import sys\nfrom pathlib import Path\nfrom skillforge.library import LibraryRepo\n"
        f"with LibraryRepo(Path({str(lib.workdir)!r}), 'unused').lock():\n"
        "    print('locked', flush=True)\n    sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LibraryLockedError), lib.lock(timeout=0.2):
            pass
        holder.stdin.close()
        holder.wait(timeout=10)
    with lib.lock(timeout=5):
        errors: list[BaseException] = []

        def contender() -> None:
            try:
                with lib.lock(timeout=0.2):
                    pass
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(timeout=10)
        assert len(errors) == 1 and isinstance(errors[0], LibraryLockedError)
    with lib.lock(timeout=0.2):
        pass


def test_git_children_of_a_killed_holder_keep_the_lock(lib: LibraryRepo, tmp_path: Path) -> None:
    """SIGKILL a process mid-fetch: its orphaned git keeps the library locked until done, so
    a restarted daemon never writes the repository while a dead one's git still does."""
    started, release = tmp_path / "started", tmp_path / "release"
    slow_remote = (
        f"touch {shlex.quote(str(started))} && "
        f"until [ -e {shlex.quote(str(release))} ]; do sleep 0.05; done && git upload-pack"
    )
    run_git(lib.workdir, "config", "remote.origin.uploadpack", slow_remote)
    script = (
        "from pathlib import Path\nfrom skillforge.library import LibraryRepo\n"
        f"repo = LibraryRepo(Path({str(lib.workdir)!r}), 'unused')\n"
        "with repo.lock():\n    repo.fetch()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    deadline = time.monotonic() + 60
    while not started.exists() and holder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert started.exists(), "the fetch never reached the remote"
        holder.kill()
        holder.wait(timeout=10)
        with pytest.raises(LibraryLockedError), lib.lock(timeout=0.3):
            pass  # the holder is dead, but its `git fetch` is not
    finally:
        release.touch()
    with lib.lock(timeout=60):
        assert run_git(lib.workdir, "status", "--porcelain") == ""


def test_only_the_holding_threads_git_inherits_the_lock(lib: LibraryRepo, tmp_path: Path) -> None:
    """The git a lock holder starts gets the lock's descriptor; a git another thread starts
    meanwhile does not (the holder may close it while that git runs)."""
    listing = tmp_path / "fds"
    spy = f"ls -l /proc/$$/fd > {shlex.quote(str(listing))} && git upload-pack"
    run_git(lib.workdir, "config", "remote.origin.uploadpack", spy)

    def lock_seen() -> bool:
        return "skillforge.lock" in listing.read_text()

    with lib.lock():
        lib.fetch()
        assert lock_seen()
    held, done = threading.Event(), threading.Event()

    def holder() -> None:
        with lib.lock():
            held.set()
            done.wait(timeout=30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(timeout=30)
        lib.fetch()
        assert not lock_seen()
    finally:
        done.set()
        thread.join(timeout=30)


def test_skills_are_read_from_git_objects(lib: LibraryRepo) -> None:
    (lib.workdir / "zeta").mkdir()
    (lib.workdir / "zeta" / "SKILL.md").write_text("only in the working tree\n")
    (lib.workdir / "alpha" / "SKILL.md").write_text("uncommitted edit\n")
    docs = lib.skills()
    assert [doc.name for doc in docs] == ["alpha", "beta"]
    assert docs[0].text == "---\nname: alpha\n---\nalpha body\n"

    lib.commit_on_branch(
        "evolve/one",
        [
            *three_commits(),
            CommitSpec(
                "Nested",
                (
                    FileChange("group/sub/SKILL.md", "nested\n"),
                    FileChange("README.md", "top\n"),
                ),
            ),
        ],
    )
    on_branch = {doc.name: doc.text for doc in lib.skills("evolve/one")}
    assert on_branch == {"alpha": "alpha v2\n", "gamma": "gamma v1\n"}
    with pytest.raises(LibraryRepoError):
        lib.skills("no-such-ref")


def test_fsck_passes_and_detects_corruption(lib: LibraryRepo) -> None:
    lib.commit_on_branch("evolve/one", three_commits())
    lib.fsck()
    blob = run_git(lib.workdir, "rev-parse", "evolve/one:gamma/SKILL.md").strip()
    path = lib.workdir / ".git" / "objects" / blob[:2] / blob[2:]
    path.chmod(0o644)
    path.write_bytes(b"garbage")
    with pytest.raises(LibraryRepoError, match="fsck"):
        lib.fsck()


def test_leaked_git_environment_does_not_redirect_git(
    tmp_path: Path, seed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    run_git(tmp_path, "init", "-q", str(decoy))
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(decoy / ".git" / "index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(decoy / ".git" / "objects"))
    lib = LibraryRepo.ensure(tmp_path / "work", tmp_path / "remote.git", seed)
    lib.commit_on_branch("evolve/one", three_commits())
    lib.merge("evolve/one", "Merge")
    assert [doc.name for doc in lib.skills()] == ["alpha", "gamma"]
    assert run_git(decoy, "for-each-ref") == ""
    assert not (decoy / ".git" / "index").exists()
    assert not any((decoy / ".git" / "objects").glob("??"))


def test_files_lists_a_skill_folder_so_it_can_be_retired_whole(lib: LibraryRepo) -> None:
    [name] = [doc.name for doc in lib.skills()][:1]
    files = lib.files(name)
    assert f"{name}/SKILL.md" in files and all(f.startswith(name + "/") for f in files)
    assert lib.files("no-such-skill") == []
    retire = CommitSpec("Retire it", tuple(FileChange(f, None) for f in files))
    lib.commit_on_branch("evolve/retire", [retire])
    assert not any(p.startswith(name + "/") for p in tree_paths(lib.workdir, "evolve/retire"))
    with pytest.raises(UnsafePathError):
        lib.files("../outside")
