"""The skill library: a git repository of `<name>/SKILL.md` folders, with a bare remote.

Every git call runs through `LibraryRepo._git`: a fresh GitPython `git.Git` CLI wrapper (no
long-lived `Repo`, so no leaked `cat-file` processes), deliberate `GIT_DIR`/`GIT_WORK_TREE`/
`GIT_INDEX_FILE`, and GitPython errors turned into skillforge ones. Proposals are built with
plumbing on a temporary index; callers serialise writers with `lock()`. The git processes
started under `lock()` inherit it, so a daemon killed mid-push leaves the library locked
until its orphaned git children have finished writing.

That temporary index lives in a scratch folder under `.git/skillforge-scratch/`, flocked by
the process using it; a SIGKILL skips the cleanup, so whoever takes `lock()` next removes
every scratch folder no live process holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import git

from evolver.changes import SkillDoc
from skillforge.errors import (
    LibraryLockedError,
    LibraryRepoError,
    MergeConflictError,
    UnsafePathError,
)

MAIN = "main"
SCRATCH = "skillforge-scratch"  # under the git dir: temporary indexes and blobs of proposals
PUSH_ATTEMPTS = 10  # merge pushes redone on top of a main someone else moved meanwhile
_IDENTITY = {"user.name": "skillforge", "user.email": "skillforge@localhost"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# git's own `local_repo_env`: if a parent git process (a hook, `rebase -x`) leaked one of
# these, it is overridden with the value git would use by default for our repository.
# GitPython always starts from os.environ, so overriding is the only way to scrub.
_LEAK_DEFAULTS = {
    "GIT_OBJECT_DIRECTORY": "{gd}/objects",
    "GIT_COMMON_DIR": "{gd}",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
    "GIT_CONFIG": "{gd}/config",
    "GIT_CONFIG_PARAMETERS": "",
    "GIT_IMPLICIT_WORK_TREE": "1",
    "GIT_GRAFT_FILE": "{gd}/info/grafts",
    "GIT_REPLACE_REF_BASE": "refs/replace/",
    "GIT_SHALLOW_FILE": "{gd}/shallow",
    "GIT_PREFIX": "",
    "GIT_NAMESPACE": "",
}
# The lock file descriptor each library (by git dir) holds, by the thread that holds it, for
# `_git` to hand to that thread's git (another thread's may outlive the descriptor).
_HELD: dict[tuple[Path, int], int] = {}


SKILL_FILES = ("checks.json",)  # files skillforge writes beside a SKILL.md


@dataclass(frozen=True)
class FileChange:
    """One file to write (or, with content None, delete) at a relative POSIX path."""

    path: str
    content: str | None


@dataclass(frozen=True)
class CommitSpec:
    """One commit of a proposal: its message and the files it changes."""

    message: str
    files: tuple[FileChange, ...]


def check_path(path: str) -> None:
    """Raise UnsafePathError unless `path` is a plain relative path inside the library."""
    parts = path.split("/")
    if (
        not path
        or path.startswith(("/", "-"))
        or "\\" in path
        or _CONTROL.search(path)
        or any(p in ("", ".", "..") for p in parts)
        or any(p.rstrip(". ").casefold() in (".git", ".gitmodules") for p in parts)
    ):
        raise UnsafePathError(
            f"Refusing the library path {path!r}: use a relative path of plain names "
            "separated by '/', without '.', '..', '.git', backslashes or control characters."
        )


def _stderr(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or "").strip()
    match = re.fullmatch(r"stderr: '(.*)'", text, re.S)
    return (match.group(1) if match else text).strip().rstrip(".") or f"exit status {exc.status}"


@contextlib.contextmanager
def _flocked(path: Path, how: int) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, how)
        yield  # closing the file releases the lock


def _is_local(remote: Path | str) -> bool:
    return isinstance(remote, Path) or not re.match(r"^([a-z][a-z0-9+.-]*://|[^/]+:)", remote)


class LibraryRepo:
    """The daemon's working copy of the skill library and its `origin` remote."""

    def __init__(self, workdir: Path, remote: Path | str) -> None:
        self.workdir = Path(workdir).absolute()
        self.remote = Path(remote).absolute() if _is_local(remote) else str(remote)
        if str(remote).startswith("-"):
            raise LibraryRepoError(f"Refusing the remote {remote!r}: it must not start with '-'.")
        self.git_dir = self.workdir / ".git"

    # -- plumbing ---------------------------------------------------------------------

    def _git(
        self,
        *args: str,
        index: Path | None = None,
        stdin: bytes | None = None,
        binary: bool = False,
        bare: Path | None = None,
    ) -> str:
        """Run `git <args>` on the working copy (or the `bare` repository) and return stdout."""
        gd = bare or self.git_dir
        env = {k: v.format(gd=gd) for k, v in _LEAK_DEFAULTS.items() if k in os.environ}
        env["GIT_DIR"] = str(gd)
        env["GIT_INDEX_FILE"] = str(index or gd / "index")
        env["GIT_WORK_TREE"] = str(bare or self.workdir)
        # Never let git fall back to the process's cwd (which may be another repository).
        cwd = self.workdir if self.workdir.is_dir() else Path(tempfile.gettempdir())
        try:
            with tempfile.TemporaryFile() as istream:
                if stdin is not None:
                    istream.write(stdin)
                    istream.seek(0)
                runner = git.Git(cwd)
                # A flock belongs to the open file, so a child holding the descriptor keeps
                # the library locked if this process dies first (SIGKILL, OOM killer).
                held = _HELD.get((self.git_dir, threading.get_ident()))
                return runner.execute(
                    [runner.GIT_PYTHON_GIT_EXECUTABLE, *args],
                    env=env,
                    istream=istream if stdin is not None else None,
                    strip_newline_in_stdout=False,
                    stdout_as_string=not binary,
                    pass_fds=(held,) if held is not None else (),
                )
        except git.GitCommandNotFound as exc:
            raise LibraryRepoError(
                "The git executable was not found; install git or set GIT_PYTHON_GIT_EXECUTABLE."
            ) from exc
        except git.GitCommandError as exc:
            words = [arg for arg in args if not arg.startswith("-")]
            raise LibraryRepoError(
                f"git {' '.join(words[:2])} failed in {self.workdir}: {_stderr(exc)}. "
                "Check the library repository with `git status` there, then retry."
            ) from exc
        except (git.GitError, OSError) as exc:
            raise LibraryRepoError(f"Could not run git in {self.workdir}: {exc}.") from exc

    def _try(self, *args: str) -> str | None:
        """Run a git command whose exit status 1 means "no" (None) rather than a failure."""
        try:
            return self._git(*args).strip()
        except LibraryRepoError as exc:
            if isinstance(exc.__cause__, git.GitCommandError) and exc.__cause__.status == 1:
                return None
            raise

    def _rev(self, ref: str) -> str | None:
        if ref.startswith("-"):
            raise UnsafePathError(f"Refusing the revision {ref!r}: it must not start with '-'.")
        return self._try("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")

    def _need(self, ref: str) -> str:
        sha = self._rev(ref)
        if sha is None:
            raise LibraryRepoError(f"The library has no {ref!r}; check it with `git branch -a`.")
        return sha

    def _check_branch(self, branch: str) -> None:
        ok = not branch.startswith("-") and "@{" not in branch and branch != "HEAD"
        if ok:
            try:
                ok = self._git("check-ref-format", "--branch", branch).strip() == branch
            except LibraryRepoError:
                ok = False
        if not ok:
            raise UnsafePathError(
                f"Refusing the branch name {branch!r}: use letters, digits, '-', '_', '.' and '/'."
            )

    def _remote_heads(self) -> dict[str, str]:
        out = self._git("ls-remote", "--heads", "origin")
        heads = (line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        return {ref.removeprefix("refs/heads/"): sha for sha, ref in heads}

    # -- setup and locking ----------------------------------------------------------

    @classmethod
    def ensure(cls, workdir: Path, remote: Path | str, seed: Path | None = None) -> LibraryRepo:
        """Create whatever is missing (bare remote, working copy, seeded `main`); idempotent.

        A local remote path that does not exist becomes `git init --bare -b main`; an empty
        remote gets a first commit on main holding every `<dir>/` of `seed` with a SKILL.md.
        """
        repo = cls(workdir, remote)
        if isinstance(repo.remote, Path) and not repo.remote.exists():
            # `init --bare` refuses a leaked GIT_WORK_TREE, which GitPython cannot unset;
            # so init with a deliberate one, then make the repository bare.
            repo._git("init", "--quiet", "-b", MAIN, str(repo.remote), bare=repo.remote)
            repo._git("config", "core.bare", "true", bare=repo.remote)
            repo._git("config", "--unset", "core.worktree", bare=repo.remote)
        if not repo.git_dir.exists():
            if repo.workdir.exists() and any(repo.workdir.iterdir()):
                raise LibraryRepoError(
                    f"{repo.workdir} exists but is not a git working copy; empty or move it."
                )
            repo.workdir.mkdir(parents=True, exist_ok=True)
            repo._git("init", "--quiet", "-b", MAIN, str(repo.workdir))
            repo._git("remote", "add", "origin", str(repo.remote))
        for key, value in _IDENTITY.items():
            if repo._try("config", "--get", key) is None:
                repo._git("config", "--local", key, value)
        repo._git("config", "--local", "commit.gpgsign", "false")
        with repo.lock():
            repo._git("fetch", "--quiet", "origin")
            if MAIN not in repo._remote_heads():
                if repo._rev(f"refs/heads/{MAIN}") is None:
                    sha = repo._seed_commit(seed)
                    repo._git("update-ref", f"refs/heads/{MAIN}", sha, "")
                    repo._git("reset", "--quiet", "--hard", sha)
                repo._git("push", "--quiet", "--set-upstream", "origin", MAIN)
            elif repo._rev(f"refs/heads/{MAIN}") is None:
                repo._git("checkout", "--quiet", "-B", MAIN, "--track", f"origin/{MAIN}")
        return repo

    def _seed_commit(self, seed: Path | None) -> str:
        entries: list[tuple[str, Path | None]] = []
        folders = sorted(seed.iterdir()) if seed is not None and seed.is_dir() else []
        for folder in folders:
            if folder.is_dir() and not folder.is_symlink() and (folder / "SKILL.md").is_file():
                for file in sorted(folder.rglob("*")):
                    if file.is_file() and not file.is_symlink():
                        rel = file.relative_to(seed).as_posix()
                        if ".git" in rel.split("/"):
                            continue  # a skill folder that is itself a checkout
                        check_path(rel)
                        entries.append((rel, file))
        with self._scratch() as tmp:
            self._git("read-tree", "--empty", index=Path(tmp) / "index")
            tree = self._write_tree(Path(tmp) / "index", entries)
            message = b"Seed the skill library\n"
            return self._git("commit-tree", tree, stdin=message).strip()

    @contextlib.contextmanager
    def lock(self, timeout: float = 30.0) -> Iterator[None]:
        """Hold an exclusive inter-process lock on the library, so the daemon and the CLI
        never run git on it at once; not re-entrant. Raises LibraryLockedError after timeout.

        The git processes run meanwhile share the lock: if this process is killed, the lock
        stays held until the last of them exits, so a restarted daemon never races them."""
        if not self.git_dir.is_dir():
            raise LibraryRepoError(f"{self.workdir} is not a library working copy; run setup.")
        deadline = time.monotonic() + timeout
        with open(self.git_dir / "skillforge.lock", "a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as exc:
                    if time.monotonic() >= deadline:
                        raise LibraryLockedError(
                            f"Another process has held the library lock for {timeout:g} s: "
                            "the daemon in a cycle, or git left running by one that was "
                            f"killed (`fuser -v {self.git_dir / 'skillforge.lock'}` names "
                            "it). Wait for it to finish and retry."
                        ) from exc
                    time.sleep(0.05)
            holder = (self.git_dir, threading.get_ident())
            _HELD[holder] = handle.fileno()
            try:
                with contextlib.suppress(OSError):  # tidying up must never block the work
                    self.sweep_scratch()  # what a killed process left; its git is done now
                yield
            finally:
                del _HELD[holder]
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        """A new scratch folder under the git dir, flocked while in use and removed after."""
        root = self.git_dir / SCRATCH
        root.mkdir(exist_ok=True)
        with _flocked(root / ".lock", fcntl.LOCK_SH):  # no sweep between mkdtemp and flock
            path = Path(tempfile.mkdtemp(prefix="tmp-", dir=root))
            fd = os.open(path, os.O_RDONLY)  # not inherited by git: only we hold it
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)

    def sweep_scratch(self) -> int:
        """Remove the scratch folders of processes that died without cleaning up (SIGKILL):
        those nobody holds locked. Returns how many were removed."""
        root = self.git_dir / SCRATCH
        if not root.is_dir():
            return 0
        removed = 0
        with _flocked(root / ".lock", fcntl.LOCK_EX):
            for entry in root.iterdir():
                if entry.name == ".lock":
                    continue
                try:
                    fd = os.open(entry, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process is using it
                finally:
                    os.close(fd)
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
        return removed

    # -- reading --------------------------------------------------------------------

    def head(self, ref: str = MAIN) -> str | None:
        """The commit sha `ref` names, or None when it does not exist."""
        return self._rev(ref)

    def skills(self, ref: str = MAIN) -> list[SkillDoc]:
        """Every top-level `<name>/SKILL.md` at `ref` with the files skillforge keeps beside it
        (checks.json), read from git objects, sorted by name."""
        commit = self._need(ref)
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", commit)
        blobs: list[tuple[str, str, str]] = []  # (folder, file, sha)
        for entry in listing.split("\0"):
            meta, _, path = entry.partition("\t")
            parts = path.split("/")
            wanted = len(parts) == 2 and parts[1] in ("SKILL.md", *SKILL_FILES)
            if wanted and meta[:6] in ("100644", "100755"):
                blobs.append((parts[0], parts[1], meta.split()[2]))
        if not blobs:
            return []
        batch = "".join(f"{sha}\n" for _, _, sha in blobs).encode()
        raw = cast(bytes, self._git("cat-file", "--batch", stdin=batch, binary=True))
        texts: dict[str, str] = {}
        extra: dict[str, dict[str, str]] = {}
        pos = 0
        for name, file, _ in blobs:
            header_end = raw.index(b"\n", pos)
            size = int(raw[pos:header_end].split()[2])
            body = raw[header_end + 1 : header_end + 1 + size].decode("utf-8", errors="replace")
            if file == "SKILL.md":
                texts[name] = body
            else:
                extra.setdefault(name, {})[file] = body
            pos = header_end + 1 + size + 1
        docs = [SkillDoc(name=n, text=t, files=extra.get(n, {})) for n, t in texts.items()]
        return sorted(docs, key=lambda doc: doc.name)

    def added_dates(self, ref: str = MAIN) -> dict[str, datetime]:
        """When each top-level skill's SKILL.md first appeared on `ref` (commit time)."""
        out = self._git(
            "log",
            "--reverse",
            "--diff-filter=A",
            "--name-only",
            "--format=@%cI",
            self._need(ref),
            "--",
            "*/SKILL.md",
        )
        added: dict[str, datetime] = {}
        when: datetime | None = None
        for line in out.splitlines():
            if line.startswith("@"):
                when = datetime.fromisoformat(line[1:])
            elif line.count("/") == 1 and line.endswith("/SKILL.md") and when is not None:
                added.setdefault(line.split("/", 1)[0], when)
        return added

    def files(self, folder: str, ref: str = MAIN) -> list[str]:
        """Every file path under `folder/` at `ref` (what retiring a skill must delete)."""
        check_path(folder)
        listing = self._git("ls-tree", "-r", "-z", "--name-only", self._need(ref), "--", folder)
        return sorted(p for p in listing.split("\0") if p.startswith(folder + "/"))

    def first_parent_history(self, path: str, ref: str = MAIN) -> list[str]:
        """Commits on `ref`'s first-parent line (merges as they landed) that changed `path`,
        newest first."""
        check_path(path)
        out = self._git("log", "--first-parent", "--format=%H", self._need(ref), "--", path)
        return out.split()

    def read(self, path: str, ref: str = MAIN) -> str | None:
        """The text of `path` at `ref`, or None when it does not exist there."""
        check_path(path)
        commit = self._need(ref)
        if not self._git("ls-tree", "-z", "--full-tree", commit, "--", path).strip("\0"):
            return None
        raw = cast(bytes, self._git("cat-file", "blob", f"{commit}:{path}", binary=True))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LibraryRepoError(
                f"{path} at {commit[:10]} is not UTF-8 text; restore it with git by hand."
            ) from exc

    def branches(self, prefix: str = "evolve/", remote: bool = False) -> list[str]:
        """Names of local (or, with remote, origin's) branches that start with `prefix`."""
        if remote:
            names = list(self._remote_heads())
        else:
            out = self._git("for-each-ref", "--format=%(refname)", "refs/heads/")
            names = [line.removeprefix("refs/heads/") for line in out.splitlines()]
        return sorted(name for name in names if name.startswith(prefix))

    def diff(self, base: str, branch: str) -> str:
        """The proposal's diff: `git diff base...branch`."""
        self._need(base)
        self._need(branch)
        return self._git("diff", f"{base}...{branch}", "--")

    def log(self, base: str, branch: str) -> list[tuple[str, str]]:
        """(sha, subject) of the commits on `branch` that `base` lacks, oldest first."""
        self._need(base)
        self._need(branch)
        out = self._git("log", "--reverse", "--format=%H%x00%s", f"{base}..{branch}", "--")
        pairs = (line.partition("\0") for line in out.splitlines())
        return [(sha, subject) for sha, _, subject in pairs]

    def fsck(self) -> None:
        """Check the working copy's object store; raise LibraryRepoError on any problem."""
        self._git("fsck", "--full", "--no-progress", "--no-dangling")

    # -- branches others push to (code hosts, reviewers) -----------------------------

    def fetch(self) -> None:
        """`git fetch --prune origin`: see branches reviewers pushed or a host deleted."""
        self._git("fetch", "--quiet", "--prune", "origin")

    def folders_edited_without(self, trailer: str, base: str, ref: str) -> set[str]:
        """Top-level folders changed on `ref` since `base` by non-merge commits whose message
        lacks the `trailer` key (commits skillforge did not write). Call `fetch()` first."""
        self._need(base)
        self._need(ref)
        fmt = f"--format=%x00%H %(trailers:key={trailer},valueonly,separator=%x2C)"
        out = self._git("log", "--no-merges", fmt, "--name-only", f"{base}..{ref}", "--")
        folders: set[str] = set()
        for chunk in out.split("\0")[1:]:
            head, _, paths = chunk.partition("\n")
            if not head.partition(" ")[2].strip():
                folders |= {p.split("/", 1)[0] for p in paths.splitlines() if "/" in p}
        return folders

    def fast_forward_main(self) -> str:
        """Fetch and fast-forward local main (and the working tree) to origin's, after a merge
        made elsewhere (a code host); return main's sha."""
        self.fetch()
        if self._try("symbolic-ref", "--quiet", "HEAD") != f"refs/heads/{MAIN}":
            raise LibraryRepoError(
                f"The library working copy {self.workdir} is not on main; "
                "run `git checkout main` there and retry."
            )
        self._fast_forward_to_origin()
        return self._need(MAIN)

    def continue_branch(
        self, branch: str, commits: Sequence[CommitSpec], keep: Sequence[str], message: str
    ) -> list[str]:
        """Continue origin's `branch` without rewriting it: first a merge commit of main whose
        tree is main's with the `keep` folders as the branch has them, then `commits` on top.

        The result fast-forwards origin's branch (a plain push, never forced); `git diff
        main...branch` then shows only the kept folders and the new commits. Returns the shas.
        """
        self._check_branch(branch)
        for folder in keep:
            check_path(folder)
        tip = self._need(f"refs/remotes/origin/{branch}")
        main = self._need(MAIN)
        with self._scratch() as tmp:
            index = Path(tmp) / "index"
            self._git("read-tree", main, index=index)
            for folder in keep:
                self._git(
                    "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", folder, index=index
                )
                if self._try("rev-parse", "--verify", "--quiet", f"{tip}:{folder}") is not None:
                    self._git("read-tree", f"--prefix={folder}/", f"{tip}:{folder}", index=index)
            tree = self._git("write-tree", index=index).strip()
        stdin = message.encode("utf-8", errors="replace")
        merge = self._git("commit-tree", tree, "-p", tip, "-p", main, stdin=stdin).strip()
        self._git("update-ref", "-d", f"refs/heads/{branch}")
        shas = self.commit_on_branch(branch, commits, base=merge)
        if not shas:
            self._git("update-ref", "-m", "skillforge: continue", f"refs/heads/{branch}", merge, "")
        return [merge, *shas]

    # -- writing --------------------------------------------------------------------

    def _write_tree(self, index: Path, entries: Sequence[tuple[str, Path | None]]) -> str:
        """Apply (path, file or None to delete) to the temporary index; return its tree."""
        written = [(path, src) for path, src in entries if src is not None]
        shas: list[str] = []
        if written:
            out = self._git(
                "hash-object", "-w", "--no-filters", "--", *(str(src) for _, src in written)
            )
            shas = out.split()
        infos, blob = [], iter(shas)
        for path, src in entries:
            if src is None:
                infos.append(f"0 {'0' * 40}\t{path}")
            else:
                mode = "100755" if os.access(src, os.X_OK) else "100644"
                infos.append(f"{mode} {next(blob)}\t{path}")
        if infos:
            stdin = "".join(f"{info}\0" for info in infos).encode()
            self._git("update-index", "-z", "--index-info", index=index, stdin=stdin)
        return self._git("write-tree", index=index).strip()

    def commit_on_branch(
        self, branch: str, commits: Sequence[CommitSpec], base: str = MAIN
    ) -> list[str]:
        """Build `commits` on a new branch from `base` without touching the working tree,
        index or any ref until one final create-only update-ref; return the new shas.

        Commits that change nothing are skipped; if none is left, no branch is created.
        """
        self._check_branch(branch)
        for spec in commits:
            for change in spec.files:
                check_path(change.path)
        parent = self._need(base)
        if self._rev(f"refs/heads/{branch}") is not None:
            raise LibraryRepoError(
                f"The branch {branch!r} already exists; delete it or choose another name."
            )
        created: list[str] = []
        with self._scratch() as tmp:
            index = Path(tmp) / "index"
            self._git("read-tree", parent, index=index)
            for n, spec in enumerate(commits):
                entries: list[tuple[str, Path | None]] = []
                for i, change in enumerate(spec.files):
                    src = None
                    if change.content is not None:
                        src = Path(tmp) / f"blob-{n}-{i}"
                        try:
                            src.write_bytes(change.content.encode("utf-8"))
                        except UnicodeEncodeError as exc:
                            raise LibraryRepoError(
                                f"The new content of {change.path!r} is not valid text "
                                "(it cannot be encoded as UTF-8); fix the proposal."
                            ) from exc
                    entries.append((change.path, src))
                tree = self._write_tree(index, entries)
                if tree == self._git("rev-parse", f"{parent}^{{tree}}").strip():
                    continue
                stdin = spec.message.encode("utf-8", errors="replace")
                parent = self._git("commit-tree", tree, "-p", parent, stdin=stdin).strip()
                created.append(parent)
        if created:
            self._git("update-ref", "-m", "skillforge: propose", f"refs/heads/{branch}", parent, "")
        return created

    def push(self, *refspecs: str) -> None:
        """`git push origin <refspecs>` (never forced); a rejection raises LibraryRepoError."""
        if not refspecs or any(spec.startswith(("+", "-")) or not spec for spec in refspecs):
            raise LibraryRepoError(
                f"Refusing to push {refspecs!r}: name at least one refspec, without '+' or '-'."
            )
        self._git("push", "--quiet", "origin", *refspecs)

    def delete_branch(self, branch: str, remote: bool = True) -> None:
        """Delete a proposal branch locally and (with remote) on origin; missing is fine."""
        self._check_branch(branch)
        if branch == MAIN or self._try("symbolic-ref", "--quiet", "HEAD") == f"refs/heads/{branch}":
            raise LibraryRepoError(f"Refusing to delete {branch!r}: it is checked out or main.")
        self._git("update-ref", "-d", f"refs/heads/{branch}")
        if remote and branch in self._remote_heads():
            self._git("push", "--quiet", "origin", f":refs/heads/{branch}")

    def merge(self, branch: str, message: str) -> str:
        """Merge `branch` into main with a merge commit, push main, and return its sha.

        The merge commit is built on origin's main with plumbing (local main and the working
        tree move only once the push has landed), so the window in which someone else's push
        can win is a few git calls; a push that loses that race is redone on top of the new
        origin/main (up to PUSH_ATTEMPTS times, never forced). Hold `lock()` around it.
        """
        self._check_branch(branch)
        self._git("fetch", "--quiet", "origin")
        if self._try("symbolic-ref", "--quiet", "HEAD") != f"refs/heads/{MAIN}":
            raise LibraryRepoError(
                f"The library working copy {self.workdir} is not on main; "
                "run `git checkout main` there and retry."
            )
        if self._git("status", "--porcelain").strip():
            raise LibraryRepoError(
                f"The library working copy {self.workdir} has uncommitted changes; commit, "
                "stash or remove them (see `git status` there) and retry."
            )
        source = self._rev(f"refs/heads/{branch}") or self._need(f"refs/remotes/origin/{branch}")
        self._fast_forward_to_origin()
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            onto = self._rev(f"refs/remotes/origin/{MAIN}") or self._need("HEAD")
            if self._try("merge-base", "--is-ancestor", source, onto) is not None:
                raise LibraryRepoError(f"The branch {branch!r} is already merged into main.")
            sha = self._merge_commit(branch, source, message, onto)
            try:
                self._git("push", "--quiet", "origin", f"{sha}:refs/heads/{MAIN}")
            except LibraryRepoError:
                self._git("fetch", "--quiet", "origin")
                if self._rev(f"refs/remotes/origin/{MAIN}") == onto:
                    raise  # rejected for another reason than a newer main
                if attempt == PUSH_ATTEMPTS:
                    raise LibraryRepoError(
                        f"main on {self.remote} moved {PUSH_ATTEMPTS} times while merging "
                        f"{branch!r}; nothing was pushed. Retry when pushes to main calm down."
                    ) from None
                time.sleep(0.02 * attempt)  # let a burst of pushes by others pass
                continue
            self._git("merge", "--quiet", "--ff-only", sha)  # local main and working tree
            return sha
        raise AssertionError("unreachable")  # pragma: no cover

    def _fast_forward_to_origin(self) -> None:
        if self._rev(f"refs/remotes/origin/{MAIN}") is None:
            return
        try:
            self._git("merge", "--quiet", "--ff-only", f"refs/remotes/origin/{MAIN}")
        except LibraryRepoError as exc:
            raise LibraryRepoError(
                f"Local main in {self.workdir} has diverged from origin/main; run "
                "`git reset --hard origin/main` there if its extra commits are "
                "unwanted, then retry."
            ) from exc

    def _merge_commit(self, branch: str, source: str, message: str, onto: str) -> str:
        """A merge commit of `source` into `onto`, made without touching any ref or file."""
        try:
            tree = self._git(
                "merge-tree", "--write-tree", "--no-messages", onto, source
            ).split()[0]
        except LibraryRepoError as exc:
            cause = exc.__cause__
            if isinstance(cause, git.GitCommandError) and cause.status == 1:
                raise MergeConflictError(
                    f"The branch {branch!r} no longer merges cleanly into main; reject it, "
                    "or rebase it on main and review it again."
                ) from exc
            raise
        stdin = (message.rstrip("\n") + "\n").encode("utf-8", errors="replace")
        return self._git("commit-tree", tree, "-p", onto, "-p", source, stdin=stdin).strip()
