"""Publish the library as a Claude Code plugin marketplace, so `/plugin marketplace add REPO`
installs its skills as one plugin.

The layout follows anthropics/skills: `.claude-plugin/marketplace.json` at the repository
root, one plugin entry with `"source": "./"` and `"strict": false` (the entry is the whole
plugin manifest, so no `plugin.json` is written) listing each `<name>/` skill folder. The
file is created by a reviewed proposal (`skillforge publish-plugin`); once it is on main,
every cycle's proposal refreshes its skill list, so it never names a retired skill.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evolver.changes import SkillChange

from .config import Config
from .library import MAIN, CommitSpec, FileChange, LibraryRepo
from .propose import propose
from .store import Store, utcnow

MARKETPLACE = ".claude-plugin/marketplace.json"
MARKETPLACE_NAME = "skillforge-library"
PLUGIN_NAME = "skillforge-skills"
PUBLISH_PREFIX = "publish/"


@dataclass(frozen=True)
class Published:
    """A publish proposal as made."""

    proposal: str
    branch: str
    skills: tuple[str, ...]


def marketplace(skills: Iterable[str]) -> dict[str, Any]:
    """The marketplace manifest listing `skills` (folder names at the repository root)."""
    names = sorted(set(skills))
    return {
        "name": MARKETPLACE_NAME,
        "owner": {"name": "skillforge"},
        "metadata": {
            "description": "Agent Skills learned from agent runs by skillforge and reviewed "
            "by a person.",
            "version": "1.0.0",
        },
        "plugins": [
            {
                "name": PLUGIN_NAME,
                "description": f"The {len(names)} skills of this skillforge library.",
                "source": "./",
                "strict": False,
                "skills": [f"./{name}" for name in names],
            }
        ],
    }


def marketplace_text(skills: Iterable[str]) -> str:
    return json.dumps(marketplace(skills), indent=2) + "\n"


def refresh_commits(repo: LibraryRepo, changes: Sequence[SkillChange]) -> list[CommitSpec]:
    """One commit that updates the marketplace's skill list to what main will hold after
    `changes`, when main publishes one and the list changes; else none."""
    current = repo.read(MARKETPLACE, MAIN)
    if current is None:
        return []
    skills = {doc.name for doc in repo.skills(MAIN)}
    skills |= {c.skill for c in changes if c.action == "create"}
    skills -= {c.skill for c in changes if c.action == "retire"}
    text = marketplace_text(skills)
    if text == current:
        return []
    message = "Refresh the plugin marketplace's skill list\n"
    return [CommitSpec(message, (FileChange(MARKETPLACE, text),))]


def propose_publish(
    store: Store, repo: LibraryRepo, config: Config, *, now: datetime | None = None
) -> Published | None:
    """Propose `.claude-plugin/marketplace.json` listing main's skills, on a pushed branch;
    None when main already publishes exactly that."""
    now = now or utcnow()
    with repo.lock():
        skills = tuple(doc.name for doc in repo.skills(MAIN))
        text = marketplace_text(skills)
        if repo.read(MARKETPLACE, MAIN) == text:
            return None
        proposal = f"publish-plugin-{now:%Y%m%d-%H%M%S}"
        branch = PUBLISH_PREFIX + proposal
        base = repo.head(MAIN)
        summary = f"Publish the library as a Claude Code plugin marketplace ({len(skills)} skills)"
        reason = (
            f"Adds {MARKETPLACE}: marketplace {MARKETPLACE_NAME!r} with one plugin "
            f"{PLUGIN_NAME!r} holding every skill folder, so Claude Code users can run "
            f"`/plugin marketplace add <this repository>` then "
            f"`/plugin install {PLUGIN_NAME}@{MARKETPLACE_NAME}`. Later cycles keep its list "
            "current."
        )
        shas = repo.commit_on_branch(
            branch, [CommitSpec(f"{summary}\n\n{reason}\n", (FileChange(MARKETPLACE, text),))]
        )
        description = (
            f"# Publish proposal {proposal}\n\n**{summary}**\n\n{reason}\n\n"
            f"```json\n{text}```\n\nReview: `skillforge review accept {proposal}`\n"
        )
        row = {
            "skill": MARKETPLACE.split("/")[0],
            "action": "update",
            "fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16],
            "content_sha": hashlib.sha256(text.encode()).hexdigest(),
            "summary": summary,
            "reason": reason,
            "runs": 0,
            "successes": 0,
            "version": None,
        }
        propose(
            store, repo, config, proposal=proposal, branch=branch, base=base, head=shas[-1],
            description=description, rows=[row], now=now,
        )  # fmt: skip
    return Published(proposal, branch, skills)
