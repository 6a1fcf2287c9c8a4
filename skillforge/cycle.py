"""One evolution cycle: stored trajectories and the library's main in, a proposal branch out.

The evolver decides what to change; this module does the I/O around it. Commits are
built on `evolve/<cycle-id>` without touching the working copy, pushed, then recorded.
A crash at any point leaves main untouched; the next cycle cleans up and redoes the work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from evolver import skilldoc
from evolver.changes import ChangeSet, SkillChange, SkillDoc
from evolver.hygiene import SkillUsage
from evolver.model import Trajectory
from evolver.pipeline import EvolveParams, evolve

from . import host_sync, series
from .clusterstate import ClusterState
from .config import Config
from .files import write_atomically
from .hosts import CodeHost, host_from_config
from .incremental import Evolved, StoredSamples, evolve_state
from .library import SKILL_FILES, CommitSpec, FileChange, LibraryRepo
from .output import write_line
from .pictures import write_pictures
from .plugin import refresh_commits
from .proposal import describe, with_feedback
from .propose import change_row
from .refine import refine_cycle
from .regression import with_reverts
from .store import Store, utcnow

BRANCH_PREFIX = "evolve/"


@dataclass(frozen=True)
class CycleResult:
    """What a cycle did, for the CLI, the daemon's log and the tests."""

    id: str
    status: str  # nothing-new | done | failed
    trajectories: int = 0
    new: int = 0
    changes: int = 0
    proposal: str | None = None
    description: Path | None = None
    message: str = ""


def run_cycle(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    *,
    now: datetime | None = None,
    say: Callable[[str], None] = write_line,
) -> CycleResult:
    """Run one cycle now. Holds the library lock throughout, so cycles never overlap."""
    now = now or utcnow()
    with repo.lock():
        store.interrupt_running_cycles(now=now)  # under the lock, a 'running' cycle is a dead one
        host = host_from_config(config)  # None without a code host
        host_sync.read_back(store, repo, host, say=say)  # PRs decided?
        _drop_orphan_branches(store, repo)
        high_water, evolved = store.high_water(), store.evolved_high_water()
        outcomes = store.outcomes_high_water()  # outcomes that arrived after their runs
        cycle_id = f"{now:%Y%m%d-%H%M%S}-{store.count('cycles') + 1:04d}"
        store.start_cycle(cycle_id, high_water, now=now, outcomes=outcomes)
        if high_water == evolved and outcomes == store.evolved_outcomes():
            store.finish_cycle(cycle_id, "nothing-new", now=utcnow(), trajectories=0, changes=0)
            return CycleResult(
                cycle_id, "nothing-new", message="no new trajectories; nothing to do"
            )
        try:
            result = _evolve_and_propose(
                store, repo, config, host, cycle_id, high_water, evolved, say
            )
        except Exception as exc:
            store.finish_cycle(
                cycle_id, "failed", now=utcnow(), error=f"{type(exc).__name__}: {exc}"
            )
            raise
        store.finish_cycle(
            cycle_id,
            "done",
            now=utcnow(),
            trajectories=result.trajectories,
            changes=result.changes,
            proposal=result.proposal,
        )
        return result


def _evolve_and_propose(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    host: CodeHost | None,
    cycle_id: str,
    high_water: int,
    evolved: int,
    say: Callable[[str], None],
) -> CycleResult:
    library = repo.skills("main")
    params = EvolveParams(
        min_runs=config.min_runs, min_successes=config.min_successes, unused_days=config.unused_days
    )
    new = store.count("trajectories", "seq > ? AND seq <= ?", [evolved, high_water])
    say(f"cycle {cycle_id}: reading {new} new trajectories")
    stored: Evolved | None = None
    if hasattr(store, "save_cluster_state"):  # the cluster state: new runs are all it reads
        state = ClusterState.current(store, params)
        state.advance(high_water)
        say(f"cycle {cycle_id}: {state.runs} trajectories ({new} new)")
        stored = evolve_state(state, library, params, usage=_usage(store, repo), now=utcnow())
        changeset, total, samples = stored.changeset, stored.runs, stored.samples
        if stored.resampled:
            say(f"cycle {cycle_id}: {stored.resampled} clusters drew their sample again")
        trajectories: Sequence[Trajectory] = ()  # the LLM pass gets its changes' samples

        def runs_of(cluster: str) -> Sequence[Trajectory]:
            return samples.get(cluster, ())

    else:  # a store without cluster state: every run, every cycle
        trajectories = list(store.trajectories(upto_seq=high_water))
        total = len(trajectories)
        say(f"cycle {cycle_id}: {total} trajectories ({new} new)")
        changeset = evolve(
            trajectories,
            library,
            params,
            memberships=store.memberships(),
            usage=_usage(store, repo),
            now=utcnow(),
        )
        by_cluster: dict[str, list[Trajectory]] = {}
        for run in trajectories:
            by_cluster.setdefault(changeset.memberships.get(run.id, ""), []).append(run)

        def runs_of(cluster: str) -> Sequence[Trajectory]:
            return by_cluster.get(cluster, [])

    base = dict(id=cycle_id, trajectories=total, new=new)
    try:
        return _propose(
            store, repo, config, host, cycle_id, library, changeset, trajectories, runs_of,
            stored, base, say,
        )  # fmt: skip
    finally:
        if stored is not None:  # what the stages computed, for the next cycle
            stored.save_memo(store)


def _propose(
    store: Store,
    repo: LibraryRepo,
    config: Config,
    host: CodeHost | None,
    cycle_id: str,
    library: Sequence[SkillDoc],
    changeset: ChangeSet,
    trajectories: Sequence[Trajectory],
    runs_of: Callable[[str], Sequence[Trajectory]],
    stored: Evolved | None,
    base: dict[str, Any],
    say: Callable[[str], None],
) -> CycleResult:
    """Check, commit, draw and push the changes of an evolved cycle as a proposal."""
    # Regression watch: reverts of skills whose newest version made runs worse.
    changeset = with_reverts(store, repo, changeset, min_runs=config.regression_min_runs, say=say)
    say(
        f"cycle {cycle_id}: {len(changeset.clusters)} clusters, "
        f"{len(changeset.changes)} skill changes against main"
    )
    changes = _worth_proposing(store, changeset.changes, say)
    if stored is None:
        store.save_memberships(changeset.memberships)  # the next cycle keeps these clusters
    # Code host / reviewer edits: maybe continue the open proposal's branch (see series.py),
    # leaving skills a reviewer edited there alone; reviewers' earlier feedback in each reason.
    plan = series.plan(
        store, repo, changes, BRANCH_PREFIX + cycle_id, hosted=host is not None,
        prefix=BRANCH_PREFIX, say=say,
    )  # fmt: skip
    changes = [with_feedback(c, store.feedback_for(c.skill)) for c in plan.changes]
    if not changes:
        return CycleResult(status="done", message="no change to propose", **base)  # type: ignore[arg-type]
    wanted = {(c.skill, c.evidence.fingerprint) for c in changes} | plan.held
    for open_proposal in store.proposals("open"):
        held = {(c["skill"], c["fingerprint"]) for c in store.proposal_changes(open_proposal["id"])}
        if held == wanted:
            message = f"the open proposal {open_proposal['id']} already holds these changes"
            _supersede_older(store, repo, open_proposal)  # a crash may have left them open
            return CycleResult(status="done", proposal=open_proposal["id"], message=message, **base)  # type: ignore[arg-type]
    # The LLM pass, when one is configured: the same changes and evidence, better written.
    if stored is not None:
        learned = {cid for c in changes for cid in c.cluster.removeprefix("composite:").split("+")}
        trajectories = _Loaded(stored.samples, sorted(learned))
    changes, llm = refine_cycle(
        store, config, cycle_id, changes, changeset, trajectories, library, say=say
    )

    branch = plan.branch
    commits = [CommitSpec(c.commit_message, _files(repo, c)) for c in changes]
    commits += refresh_commits(repo, changes)  # the plugin marketplace, when main publishes one
    base_sha = repo.head("main")
    pause_point("commit", say)
    shas = series.build(repo, plan, commits, cycle_id)
    pictures = write_pictures(
        config.proposals_dir / cycle_id,
        changes,
        runs_of,
        memo=stored.memo if stored else None,
        fps=stored.fps if stored else None,
    )
    description = describe(cycle_id, branch, changes, changeset, pictures, llm=llm)
    description += plan.note()
    path = write_atomically(config.proposals_dir / f"{cycle_id}.md", description)
    pause_point("push", say)
    repo.push(f"refs/heads/{branch}")
    pause_point("record", say)
    # Only earlier cycles' proposals: a rollback by hand stays open until it is reviewed.
    superseded = [p for p in store.proposals("open") if p["branch"].startswith(BRANCH_PREFIX)]
    store.add_proposal(
        {
            "id": cycle_id,
            "branch": branch,
            "status": "open",
            "created_at": utcnow().isoformat(timespec="seconds"),
            "base": base_sha,
            "head": shas[-1] if shas else base_sha,
            "description": description,
        },
        [change_row(c) for c in changes] + list(plan.kept_rows),
    )
    pause_point("supersede", say)
    for old in superseded:
        store.decide(old["id"], "superseded", reason=f"superseded by {cycle_id}", now=utcnow())
        if old["branch"] != branch:  # a continued branch stays
            repo.delete_branch(old["branch"])
    say(f"cycle {cycle_id}: proposed {len(changes)} skill changes on {branch}")
    # Pull request on the code host, and the opt-in auto-merge policy.
    host_sync.publish(store, repo, config, host, cycle_id, changes, plan, library, say=say)
    return CycleResult(
        status="done",
        changes=len(changes),
        proposal=cycle_id,
        description=path,
        **base,  # type: ignore[arg-type]
    )


class _Loaded(Sequence[Trajectory]):
    """The sample runs of some clusters, read only when someone asks (the LLM pass does, when
    one is configured; offline, they are never read)."""

    def __init__(self, samples: StoredSamples, clusters: Sequence[str]) -> None:
        self.samples = samples
        self.clusters = [c for c in clusters if c in samples]
        self._runs: list[Trajectory] | None = None

    def _all(self) -> list[Trajectory]:
        if self._runs is None:
            self._runs = [run for cid in self.clusters for run in self.samples[cid]]
        return self._runs

    @overload
    def __getitem__(self, index: int) -> Trajectory: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Trajectory]: ...
    def __getitem__(self, index: int | slice) -> Trajectory | Sequence[Trajectory]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self._all())


def _usage(store: Store, repo: LibraryRepo) -> dict[str, SkillUsage] | None:
    """How skills were used, or None when no agent reports the skills it loads (then
    nobody can tell an unused skill from an unreported one)."""
    detail = store.skill_usage_detail()
    if not detail:
        return None
    added = repo.added_dates()
    names = set(detail) | set(added)
    return {
        name: SkillUsage(
            runs=detail.get(name, (0, 0, None))[0],
            successes=detail.get(name, (0, 0, None))[1],
            last_used=detail.get(name, (0, 0, None))[2],
            added=added.get(name),
        )
        for name in names
    }


def _files(repo: LibraryRepo, change: SkillChange) -> tuple[FileChange, ...]:
    """The file writes of a change: SKILL.md, or every file of the folder when retiring."""
    if change.action == "retire":
        return tuple(FileChange(path, None) for path in repo.files(change.skill))
    extra = tuple(
        FileChange(f"{change.skill}/{name}", text)
        for name, text in sorted(change.files.items())
        if name in SKILL_FILES  # only files skillforge owns; never a name from elsewhere
    )
    return (FileChange(f"{change.skill}/SKILL.md", change.content), *extra)


def _worth_proposing(
    store: Store, changes: tuple[SkillChange, ...], say: Callable[[str], None]
) -> list[SkillChange]:
    """Drop changes a reviewer rejected on the same evidence, and any invalid skill file."""
    rejected = store.known_changes(["rejected"])
    kept = []
    for change in changes:
        if (change.skill, change.evidence.fingerprint) in rejected:
            say(f"  skip {change.skill}: rejected before on the same evidence")
            continue
        if change.action == "retire":
            kept.append(change)
            continue
        problems = skilldoc.problems(change.content, change.skill)
        if problems:
            say(f"  skip {change.skill}: not a valid Agent Skill ({'; '.join(problems)})")
            continue
        kept.append(change)
    return kept


def _drop_orphan_branches(store: Store, repo: LibraryRepo) -> None:
    """Remove evolve/* branches no open proposal owns (left by a crash mid-cycle)."""
    owned = {p["branch"] for p in store.proposals("open")}
    for remote in (False, True):
        for branch in repo.branches(BRANCH_PREFIX, remote=remote):
            if branch not in owned:
                repo.delete_branch(branch, remote=remote)


def _supersede_older(store: Store, repo: LibraryRepo, newest: dict) -> None:
    """Supersede the open cycle proposals older than `newest`: a cycle killed after recording
    its proposal but before superseding the old ones is redone as 'already holds'."""
    for old in store.proposals("open"):
        older = (old["created_at"], old["id"]) < (newest["created_at"], newest["id"])
        if older and old["branch"].startswith(BRANCH_PREFIX):
            reason = f"superseded by {newest['id']}"
            store.decide(old["id"], "superseded", reason=reason, now=utcnow())
            if old["branch"] != newest["branch"]:
                repo.delete_branch(old["branch"])


PAUSE_ENV = "SKILLFORGE_TEST_PAUSE"  # tests only, see pause_point


def pause_point(point: str, say: Callable[[str], None]) -> None:
    """Tests only: with SKILLFORGE_TEST_PAUSE=<point>[:seconds] a cycle says so and sleeps
    here (an hour by default), so a crash test can SIGKILL the daemon at a known step."""
    wanted, _, seconds = os.environ.get(PAUSE_ENV, "").partition(":")
    if wanted == point:
        say(f"test pause at {point}")
        time.sleep(float(seconds or 3600))
