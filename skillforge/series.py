"""Continue an open proposal's branch instead of replacing it, when a code host holds its pull
request or a reviewer has pushed edits to it.

Neither GitHub nor Gitea can move a pull request to another head branch (their PATCH takes
title, body, state and base), and skillforge never force-pushes. So a later cycle builds on
the open proposal's branch as origin has it: first a merge commit of main whose tree is
main's, except for the folders a reviewer edited, which stay as the branch has them; then one
commit per change. That fast-forwards the branch, so its pull request updates itself, and
`main...branch` shows this cycle's changes plus the reviewer's edits, nothing stale. Without a
host and without reviewer edits, a cycle makes a fresh `evolve/<cycle-id>` branch and the older
proposal's branch is deleted, as before.

Every commit skillforge writes carries a `Skillforge-Proposal: <id>` trailer. Any other
non-merge commit on the branch is a reviewer's: the skills it touched are kept exactly as the
reviewer left them, and the cycle proposes no change to them while the proposal is open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evolver.changes import SkillChange

from .library import CommitSpec, LibraryRepo
from .store import Store

TRAILER = "Skillforge-Proposal"
_ROW_FIELDS = ("skill", "action", "fingerprint", "content_sha", "summary", "reason", "runs")
_ROW_FIELDS += ("successes", "version")


@dataclass(frozen=True)
class Plan:
    """Where this cycle's commits go and which changes are left to make."""

    branch: str
    changes: list[SkillChange]
    continued: dict[str, Any] | None = None  # the open proposal whose branch is continued
    kept: tuple[str, ...] = ()  # skills a reviewer edited on that branch, kept as they are
    kept_rows: tuple[dict[str, Any], ...] = ()  # their change records, carried over

    @property
    def held(self) -> set[tuple[str, str]]:
        """(skill, fingerprint) the new proposal holds besides its own changes."""
        return {(r["skill"], r["fingerprint"]) for r in self.kept_rows}

    def note(self) -> str:
        """A paragraph for the description naming the kept skills (empty when none)."""
        if not self.kept:
            return ""
        names = ", ".join(f"`{s}`" for s in self.kept)
        return (
            f"\n## Kept as a reviewer edited them\n\n{names}: edited by a reviewer on "
            f"`{self.branch}`; this proposal keeps those edits and changes nothing there.\n"
        )


def plan(
    store: Store,
    repo: LibraryRepo,
    changes: Sequence[SkillChange],
    fresh_branch: str,
    *,
    hosted: bool,
    prefix: str,
    say: Callable[[str], None],
) -> Plan:
    """Continue the newest open `prefix` proposal's branch when hosted or reviewer-edited;
    otherwise plan a fresh branch. Drops changes to skills a reviewer edited."""
    fresh = Plan(fresh_branch, list(changes))
    opened = [p for p in store.proposals("open") if p["branch"].startswith(prefix)]
    if not opened:
        return fresh
    current = opened[-1]
    branch = current["branch"]
    repo.fetch()
    remote = f"refs/remotes/origin/{branch}"
    if repo.head(remote) is None:
        return fresh
    edited = tuple(sorted(repo.folders_edited_without(TRAILER, "main", remote)))
    if not hosted and not edited:
        return fresh
    for change in changes:
        if change.skill in edited:
            say(f"  keep {change.skill}: a reviewer edited it on {branch}")
    rows = tuple(
        {k: row[k] for k in _ROW_FIELDS}
        for row in store.proposal_changes(current["id"])
        if row["skill"] in edited
    )
    left = [c for c in changes if c.skill not in edited]
    return Plan(branch, left, current, edited, rows)


def sign(message: str, proposal_id: str) -> str:
    """The commit message with skillforge's trailer, which tells its commits from a person's."""
    return f"{message.rstrip()}\n\n{TRAILER}: {proposal_id}\n"


def build(
    repo: LibraryRepo, plan: Plan, commits: Sequence[CommitSpec], proposal_id: str
) -> list[str]:
    """Make the planned commits (signed); returns their shas, oldest first."""
    signed = [CommitSpec(sign(c.message, proposal_id), c.files) for c in commits]
    if plan.continued is None:
        return repo.commit_on_branch(plan.branch, signed)
    kept = ", ".join(plan.kept) or "none"
    message = sign(
        f"Rebuild proposal {proposal_id} on main\n\n"
        f"Continues {plan.continued['id']}; kept as a reviewer edited them: {kept}.",
        proposal_id,
    )
    return repo.continue_branch(plan.branch, signed, plan.kept, message)
