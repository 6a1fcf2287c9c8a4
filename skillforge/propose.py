"""Hand a branch to review: write its description, push it, record the proposal.

A cycle, a rollback and publishing the plugin marketplace all end the same way; the order
matters (push before record), so a crash never leaves a recorded proposal without its branch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from evolver.changes import SkillChange
from evolver.regression import skill_version

from .config import Config
from .files import write_atomically
from .library import LibraryRepo
from .store import Store


def change_row(change: SkillChange) -> dict[str, Any]:
    """How the store remembers one change of a proposal (for dedupe, rejection and the ledger)."""
    return {
        "skill": change.skill,
        "action": change.action,
        "fingerprint": change.evidence.fingerprint,
        "content_sha": hashlib.sha256(change.content.encode()).hexdigest(),
        "summary": change.summary,
        "reason": change.reason,
        "runs": change.evidence.runs,
        "successes": change.evidence.successes,
        "version": None if change.action == "retire" else skill_version(change.content),
    }


def propose(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    *,
    proposal: str,
    branch: str,
    base: str | None,
    head: str | None,
    description: str,
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    """Write `description` beside the other proposals, push `branch`, then record it open."""
    write_atomically(config.proposals_dir / f"{proposal}.md", description)
    repo.push(f"refs/heads/{branch}")
    store.add_proposal(
        {
            "id": proposal,
            "branch": branch,
            "status": "open",
            "created_at": now.isoformat(timespec="seconds"),
            "base": base,
            "head": head,
            "description": description,
        },
        rows,
    )
