"""Proposals on a code host: open or update each one's pull request, and read decisions back.

`read_back` (at the start of every cycle and by `skillforge review list`): a merged pull
request is the proposal accepted (local main is fast-forwarded to it); one closed without
merging is a rejection whose reason is the reviewers' conversation and review comments. Every
comment is kept (`review_comments`) and `Store.feedback_for` hands it to the next rewrite of
the skill. `publish` (after a cycle records its proposal): the pull request, then the opt-in
auto-merge policy. Without a host both are no-ops, and the local review flow stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime

from evolver.changes import SkillChange, SkillDoc

from . import automerge
from .config import Config
from .hosts.base import CodeHost, Comment, PullRequest
from .library import LibraryRepo
from .output import write_line
from .series import Plan
from .store import Store, utcnow

MAX_BODY = 60_000  # GitHub refuses pull request bodies over 65,536 characters
MAX_REASON = 2_000
FOOTER = (
    "\n\n---\nMerge this pull request to accept the proposal, or close it to reject it: "
    "skillforge reads the decision and the review comments back at its next cycle (or on "
    "`skillforge review list`), and hands them to the next rewrite of these skills.\n"
)


def read_back(
    store: Store,
    repo: LibraryRepo,
    host: CodeHost | None,
    *,
    now: datetime | None = None,
    say: Callable[[str], None] = write_line,
) -> list[tuple[str, str]]:
    """Record decisions made on the host; returns (proposal id, new status). Hold the lock."""
    if host is None:
        return []
    decided: list[tuple[str, str]] = []
    for proposal in store.proposals("open"):
        number = proposal.get("pr_number")
        if not number:  # a cycle that failed between its push and its pull request
            number = open_pull_request(store, host, proposal["id"]).number
        pr = host.pull_request(number)
        comments = host.comments(number)
        store.add_review_comments(proposal["id"], [asdict(c) for c in comments])
        if pr.state == "open":
            continue
        if pr.state == "merged":
            repo.fast_forward_main()
            status, reason = "accepted", f"merged on {host.name} by {pr.merged_by or 'unknown'}"
        else:
            status, reason = "rejected", rejection_reason(comments, host.name)
        store.decide(proposal["id"], status, reason=reason, now=now or utcnow())
        repo.delete_branch(proposal["branch"])
        decided.append((proposal["id"], status))
        say(f"proposal {proposal['id']}: pull request #{number} {pr.state} ({pr.url}): {status}")
    return decided


def rejection_reason(comments: Sequence[Comment], host: str) -> str:
    """What reviewers said on the whole pull request (reviews and conversation), oldest first;
    line comments stay with the file they are on (see `Store.feedback_for`)."""
    said = [f"{c.author}: {' '.join(c.body.split())}" for c in comments if c.path is None]
    said = [s for s in said if s.partition(": ")[2]]
    if not said:
        return f"closed on {host} without merging, and without a comment"
    text = "; ".join(said)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def open_pull_request(store: Store, host: CodeHost, proposal_id: str) -> PullRequest:
    """Open (or update) the proposal's pull request, its description as the body; stored."""
    record = store.proposal(proposal_id)
    assert record is not None
    body = record["description"]
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n(cut here; `skillforge review show` has it all)"
    count = len(store.proposal_changes(proposal_id))
    title = f"Skill proposal {proposal_id}: {count} skill change{'s' if count != 1 else ''}"
    pr = host.open_or_update_pr(record["branch"], "main", title, body + FOOTER)
    store.set_pull_request(proposal_id, pr.number, pr.url)
    return pr


def publish(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    host: CodeHost | None,
    proposal_id: str,
    changes: Sequence[SkillChange],
    plan: Plan,
    library: Sequence[SkillDoc],
    *,
    say: Callable[[str], None] = write_line,
) -> None:
    """Open or update the proposal's pull request, then merge it if the policy allows."""
    if host is not None:
        pr = open_pull_request(store, host, proposal_id)
        verb = "updated" if plan.continued and plan.continued.get("pr_number") else "opened"
        say(f"proposal {proposal_id}: pull request #{pr.number} {verb}: {pr.url}")
    if config.auto_merge:
        _auto_merge(store, repo, config, host, proposal_id, changes, plan, library, say)


def _auto_merge(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    host: CodeHost | None,
    proposal_id: str,
    changes: Sequence[SkillChange],
    plan: Plan,
    library: Sequence[SkillDoc],
    say: Callable[[str], None],
) -> None:
    texts: Mapping[str, str] = {doc.name: doc.text for doc in library}
    verdict = automerge.check(changes, texts, config.auto_merge_min_failures)
    if plan.kept:
        verdict = automerge.Verdict(False, (f"a reviewer edited {', '.join(plan.kept)}",))
    if not verdict.allowed:
        more = len(verdict.reasons) - 1
        extra = f" (and {more} more)" if more else ""
        say(f"proposal {proposal_id}: left for review: {verdict.reasons[0]}{extra}")
        return
    record = store.proposal(proposal_id)
    assert record is not None
    sha = automerge.merge(store, repo, host, record, verdict)
    say(f"proposal {proposal_id}: auto-merged into main as {sha[:10]} ({verdict.reasons[0]})")
