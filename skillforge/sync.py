"""`skillforge sync`: make an agent's skills folder a git clone of the library, or
fast-forward it, never overwriting what a person changed there.

The library keeps `<name>/SKILL.md` at its root, so the folder an agent reads
(`~/.claude/skills`, `~/.agents/skills`, or a project's `.claude/skills` / `.agents/skills`)
is itself the clone, and plain `git pull` in it keeps working. Anything that a fast-forward
would not cover (local edits, local commits, another branch, a folder that is not our
clone) stops the sync with what to do; it never resets, stashes or forces on its own.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SyncError
from .library import MAIN

AGENT_DIRS = {"claude": ".claude/skills", "agents": ".agents/skills", "codex": ".agents/skills"}
# Variables that would point git at another repository than the one we name with -C.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
)
_SHOWN = 8  # files named in a refusal, at most


@dataclass(frozen=True)
class SyncResult:
    """What a sync did to the folder: cloned, updated or already up to date, and the skills."""

    target: Path
    action: str  # cloned | updated | up-to-date
    head: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def target_dir(
    to: Path | None = None,
    agent: str | None = None,
    project: Path | None = None,
    home: Path | None = None,
) -> Path:
    """The folder to sync: `to`, else the agent's skills folder in `project` or the home."""
    if to is not None:
        if project is not None:
            raise SyncError("--project picks the agent's folder inside a project; use it with "
                            "--agent, not with --to.")  # fmt: skip
        return to.expanduser().absolute()
    agent = agent or "agents"
    if agent not in AGENT_DIRS:
        raise SyncError(f"unknown agent {agent!r}; choose one of {', '.join(AGENT_DIRS)}.")
    base = project.expanduser() if project is not None else (home or Path.home())
    return (base / AGENT_DIRS[agent]).absolute()


def sync(target: Path, remote: str) -> SyncResult:
    """Clone `remote` into `target`, or fast-forward the clone already there."""
    if target.exists() and not target.is_dir():
        raise SyncError(f"{target} is not a folder; remove it or sync elsewhere with --to.")
    if not target.exists() or not any(target.iterdir()):
        return _clone(target, remote)
    if not (target / ".git").exists():
        raise SyncError(_not_ours(target))
    _check_origin(target, remote)
    branch = _git(target, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    if branch != MAIN:
        where = f"on branch {branch!r}" if branch else "on a detached HEAD"
        raise SyncError(
            f"{target} is {where}, not {MAIN}; sync only fast-forwards {MAIN}. Run "
            f"`git -C {target} switch {MAIN}` (your branch stays as it is) and sync again."
        )
    tracked, untracked = _local_changes(target)
    if tracked:
        raise SyncError(_edited(target, tracked))
    _git(target, "fetch", "--quiet", "origin")
    upstream = f"refs/remotes/origin/{MAIN}"
    ahead = _git(target, "log", "--format=%h %s", f"{upstream}..HEAD").splitlines()
    if ahead:
        raise SyncError(_committed(target, ahead))
    incoming = set(
        _git(target, "diff", "--name-only", "--no-renames", "HEAD", upstream).split("\n")
    )
    clash = sorted(path for path in untracked if path in incoming)
    if clash:
        raise SyncError(
            f"{target} has files of your own that the library now also has: "
            f"{_names(clash)}. sync never overwrites them: move or rename them and sync again."
        )
    before = _git(target, "rev-parse", "HEAD").strip()
    _git(target, "merge", "--ff-only", "--quiet", upstream)
    after = _git(target, "rev-parse", "HEAD").strip()
    if after == before:
        return SyncResult(target, "up-to-date", after)
    return SyncResult(target, "updated", after, *_skill_changes(target, before, after))


def project_hint(project: Path, target: Path) -> str | None:
    """A note when the synced folder sits untracked inside the project's own repository."""
    if not (project / ".git").exists():
        return None
    ignored = _git(project, "check-ignore", "-q", str(target), check=False, status=True)
    if ignored == "0":
        return None
    root = project.absolute()
    rel = target.relative_to(root) if target.is_relative_to(root) else target
    return (
        f"{project} is a git repository: add `{rel}/` to its .gitignore so the library "
        "clone is not committed into the project."
    )


def _clone(target: Path, remote: str) -> SyncResult:
    target.parent.mkdir(parents=True, exist_ok=True)
    _git(target.parent, "clone", "--quiet", "--branch", MAIN, "--", remote, str(target))
    head = _git(target, "rev-parse", "HEAD").strip()
    added = _git(target, "ls-tree", "--name-only", "-r", "HEAD").splitlines()
    skills = sorted({p.split("/")[0] for p in added if re.fullmatch(r"[^./][^/]*/SKILL\.md", p)})
    return SyncResult(target, "cloned", head, added=skills)


def _not_ours(target: Path) -> str:
    entries = sorted(p.name for p in target.iterdir())
    return (
        f"{target} already holds {_names(entries)} and is not a git clone of the library; "
        "sync never mixes the library into a folder it does not own. Move the folder aside "
        f"(`mv {target} {target}.bak`) and sync again, then copy back any skills of your "
        "own under names the library does not use; or sync elsewhere with --to."
    )


def _check_origin(target: Path, remote: str) -> None:
    origin = _git(target, "config", "--get", "remote.origin.url", check=False).strip()
    if not origin or not _same_remote(origin, remote, target):
        raise SyncError(
            f"{target} is a git repository, but its origin is {origin or 'not set'}, not the "
            f"library {remote}; sync never mixes the two. Sync with --remote {origin} if "
            "that is the library, or move the folder aside and sync again."
        )


def _same_remote(a: str, b: str, base: Path) -> bool:
    def norm(url: str) -> str:
        if re.match(r"^([a-z][a-z0-9+.-]*://|[^/]+:)", url):
            return url.rstrip("/").removesuffix(".git")
        return (
            str((base / url).resolve()) if not Path(url).is_absolute() else str(Path(url).resolve())
        )

    return norm(a) == norm(b)


def _local_changes(target: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(status, path) of changed tracked files, and the untracked paths."""
    out = _git(target, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    tracked, untracked = [], []
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code == "??":
            untracked.append(path)
        elif code != "!!":
            tracked.append((code.strip(), path))
            if "R" in code or "C" in code:
                next(entries, None)  # the rename's source path follows
    return tracked, untracked


def _edited(target: Path, tracked: list[tuple[str, str]]) -> str:
    words = {"M": "modified", "D": "deleted", "A": "added", "R": "renamed", "T": "retyped"}
    named = [f"{path} ({words.get(code[:1], code)})" for code, path in tracked]
    return (
        f"{target} has local edits to the library's files: {_names(named)}. sync never "
        "overwrites them. To keep them for yourself: "
        f"`git -C {target} stash`, sync again, then `git -C {target} stash pop`; to offer "
        "them to the library, commit them on a branch and push it for review; to drop "
        f"them: `git -C {target} restore --staged --worktree -- <file>`."
    )


def _committed(target: Path, ahead: list[str]) -> str:
    return (
        f"{target} has {len(ahead)} local commit(s) the library does not have: "
        f"{_names(ahead)}. sync only fast-forwards. To keep them, push them for review "
        f"(`git -C {target} push origin HEAD:refs/heads/my-edits`) or replay them on the "
        f"library's main (`git -C {target} pull --rebase`); to drop them: "
        f"`git -C {target} reset --keep origin/{MAIN}`."
    )


def _skill_changes(target: Path, before: str, after: str) -> tuple[list[str], list[str], list[str]]:
    """Skills added, updated and removed between two commits (top-level folders only)."""
    out = _git(target, "diff", "--name-status", "--no-renames", "-z", before, after)
    fields = out.split("\0")
    touched: dict[str, set[str]] = {}
    for status, path in zip(fields[::2], fields[1::2], strict=False):
        if "/" in path and not path.startswith("."):
            folder, rest = path.split("/", 1)
            touched.setdefault(folder, set()).add(f"{status}:{rest}")
    added = sorted(f for f, s in touched.items() if "A:SKILL.md" in s)
    removed = sorted(f for f, s in touched.items() if "D:SKILL.md" in s)
    updated = sorted(set(touched) - set(added) - set(removed))
    return added, updated, removed


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _git(cwd: Path, *args: str, check: bool = True, status: bool = False) -> str:
    """Run git in `cwd`; with `status`, return the exit status instead of stdout."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"  # a remote that wants a password fails instead of hanging
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args], env=env, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise SyncError(f"could not run git: {exc}; is git installed?") from exc
    if status:
        return str(done.returncode)
    if check and done.returncode != 0:
        words = " ".join(a for a in args[:2] if not a.startswith("-"))
        raise SyncError(f"git {words} failed in {cwd}: {done.stderr.strip() or done.returncode}")
    return done.stdout
