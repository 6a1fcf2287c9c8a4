"""Regression watch and rollback: the I/O around `evolver.regression`.

A skill's versions are the `metadata.skillforge.version` values its SKILL.md had on main's
first-parent line (each as it stood when the next one was merged); the runs of each
version come from the store's `skill_runs`. A cycle turns a significant drop into a revert
change in its proposal; `skillforge rollback` proposes one by hand. Either is reviewed and
accepted like any change; nothing here touches main.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from evolver.changes import ChangeSet, SkillChange
from evolver.regression import RegressionCheck, VersionRuns, judge, revert_change, skill_version

from .config import Config
from .errors import RollbackError
from .library import MAIN, CommitSpec, FileChange, LibraryRepo
from .output import write_line
from .propose import change_row, propose
from .store import Store, utcnow

ROLLBACK_PREFIX = "rollback/"
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class VersionState:
    """One version of a skill on main: the newest first-parent commit that still had it."""

    version: str
    commit: str


@dataclass(frozen=True)
class Rollback:
    """A rollback proposal as made: its id, branch and what it restores."""

    proposal: str
    branch: str
    skill: str
    restored: str  # the version whose files come back
    replaced: str  # the version on main now
    change: SkillChange


def versions_on_main(repo: LibraryRepo, skill: str, ref: str = MAIN) -> list[VersionState]:
    """The distinct versions `skill` had on `ref`, newest first (versionless states skipped)."""
    path = f"{skill}/SKILL.md"
    found: list[VersionState] = []
    for commit in repo.first_parent_history(path, ref):
        text = repo.read(path, commit)
        version = skill_version(text) if text is not None else None
        if version is not None and all(v.version != version for v in found):
            found.append(VersionState(version, commit))
    return found


def version_runs(store: Store, skill: str) -> list[VersionRuns]:
    """Per version of `skill`: runs that loaded it with a known outcome, and their successes."""
    return [
        VersionRuns(
            str(row["version"]),
            (row["successes"] or 0) + (row["failures"] or 0),
            row["successes"] or 0,
        )
        for row in store.skill_versions(skill)
        if row["version"] is not None
    ]


def find_regressions(
    store: Store, repo: LibraryRepo, *, min_runs: int, ref: str = MAIN
) -> list[tuple[RegressionCheck, SkillChange]]:
    """Every skill on `ref` whose newest version did significantly worse than the previous
    one, with the revert change that puts the previous text back."""
    reported = store.skill_usage()
    found = []
    for doc in repo.skills(ref):
        if doc.name not in reported:
            continue  # no run ever said it loaded this skill: nothing to compare
        history = versions_on_main(repo, doc.name, ref)
        if len(history) < 2 or skill_version(doc.text) != history[0].version:
            continue
        newest, previous = history[0], history[1]
        check = judge(
            doc.name,
            version_runs(store, doc.name),
            newest.version,
            previous.version,
            min_runs=min_runs,
        )
        if not check.regressed:
            continue
        old_text = repo.read(f"{doc.name}/SKILL.md", previous.commit)
        if old_text is not None:
            found.append((check, revert_change(doc.name, old_text, check)))
    return found


def with_reverts(
    store: Store,
    repo: LibraryRepo,
    changeset: ChangeSet,
    *,
    min_runs: int,
    say: Callable[[str], None] = write_line,
) -> ChangeSet:
    """The cycle's hook: add a revert for each regressed skill and drop the evolver's own
    change to that skill this cycle (and to any skill an open rollback proposal holds)."""
    reverts = [change for _, change in find_regressions(store, repo, min_runs=min_runs)]
    held = _rollback_held(store)
    reverts = [c for c in reverts if c.skill not in held]
    blocked = held | {c.skill for c in reverts}
    for change in reverts:
        say(f"  revert {change.skill}: {change.summary.split(': ', 1)[1]}")
    kept = []
    for change in changeset.changes:
        if change.skill in blocked:
            why = "a revert" if change.skill not in held else "an open rollback proposal"
            say(f"  skip the evolver's change to {change.skill}: {why} comes first")
            continue
        kept.append(change)
    if not reverts and len(kept) == len(changeset.changes):
        return changeset
    return changeset.model_copy(update={"changes": (*reverts, *kept)})


def _rollback_held(store: Store) -> set[str]:
    return {
        change["skill"]
        for proposal in store.proposals("open")
        if proposal["branch"].startswith(ROLLBACK_PREFIX)
        for change in store.proposal_changes(proposal["id"])
    }


def propose_rollback(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    skill: str,
    to: str | None = None,
    *,
    now: datetime | None = None,
) -> Rollback:
    """Propose putting `skill`'s folder back as it was at version `to` (default: the one
    before the newest), on a pushed `rollback/` branch, recorded for `skillforge review`."""
    if not _SLUG.match(skill):
        raise RollbackError(f"{skill!r} is not a skill name (lowercase letters, digits, '-').")
    now = now or utcnow()
    with repo.lock():
        names = [doc.name for doc in repo.skills()]
        if skill not in names:
            raise RollbackError(
                f"no skill {skill!r} on main; its skills are: {', '.join(names) or 'none'}"
            )
        history = versions_on_main(repo, skill)
        if not history:
            raise RollbackError(
                f"{skill} has no skillforge.version in its history on main, so it has no "
                "versions to roll back to; revert its commits with git instead."
            )
        current, target = history[0], _target(skill, history, to)
        change = _rollback_change(store, repo, config, skill, current, target)
        files = _folder_files(repo, skill, target.commit, change.content)
        proposal = _free_id(store, f"rollback-{now:%Y%m%d-%H%M%S}-{skill}")
        branch = ROLLBACK_PREFIX + proposal
        base = repo.head(MAIN)
        shas = repo.commit_on_branch(branch, [CommitSpec(change.commit_message, files)])
        if not shas:
            raise RollbackError(f"{skill} already has the files of version {target.version}.")
        description = _describe(proposal, branch, change, current, target)
        propose(
            store, repo, config, proposal=proposal, branch=branch, base=base, head=shas[-1],
            description=description, rows=[change_row(change)], now=now,
        )  # fmt: skip
    return Rollback(proposal, branch, skill, target.version, current.version, change)


def _target(skill: str, history: Sequence[VersionState], to: str | None) -> VersionState:
    if to is None:
        if len(history) < 2:
            raise RollbackError(
                f"{skill} has only version {history[0].version} on main: nothing to roll back to."
            )
        return history[1]
    for state in history[1:]:
        if state.version == to.strip():
            return state
    if history[0].version == to.strip():
        raise RollbackError(f"{skill} is at version {to} already.")
    known = ", ".join(state.version for state in history)
    raise RollbackError(f"{skill} never had version {to!r} on main; its versions: {known}.")


def _rollback_change(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    skill: str,
    current: VersionState,
    target: VersionState,
) -> SkillChange:
    old_text = repo.read(f"{skill}/SKILL.md", target.commit)
    assert old_text is not None  # versions_on_main only lists commits where it exists
    check = judge(
        skill,
        version_runs(store, skill),
        current.version,
        target.version,
        min_runs=config.regression_min_runs,
    )
    reason = (
        f"Rolled back by hand from version {current.version} to version {target.version} "
        f"(the text merged in {target.commit[:10]}), renumbered so its runs are counted "
        f"apart. Runs so far: {check.why}."
    )
    change = revert_change(skill, old_text, check, reason=reason)
    summary = f"Roll back {skill} to version {target.version}"
    if check.p_value is not None:
        summary += f": {check.why}"
    return change.model_copy(update={"summary": summary})


def _folder_files(
    repo: LibraryRepo, skill: str, commit: str, skill_md: str
) -> tuple[FileChange, ...]:
    """Every file of the folder as at `commit` (SKILL.md renumbered); files added since go."""
    then = repo.files(skill, commit)
    changes = [
        FileChange(path, skill_md if path == f"{skill}/SKILL.md" else repo.read(path, commit))
        for path in then
    ]
    changes += [FileChange(path, None) for path in repo.files(skill) if path not in then]
    return tuple(changes)


def _free_id(store: Store, wanted: str) -> str:
    candidate, n = wanted, 1
    while store.proposal(candidate) is not None:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _describe(
    proposal: str, branch: str, change: SkillChange, current: VersionState, target: VersionState
) -> str:
    return "\n".join(
        [
            f"# Rollback proposal {proposal}",
            "",
            f"Puts `{change.skill}` back to version {target.version} (from version "
            f"{current.version}), on branch `{branch}`.",
            "",
            f"**{change.summary}**",
            "",
            change.reason,
            "",
            "## How to review",
            "",
            "```",
            f"skillforge review show {proposal}",
            f"skillforge review accept {proposal}",
            f'skillforge review reject {proposal} --reason "..."',
            "```",
            "",
        ]
    )
