"""The structured evidence a role sees: what the offline stages computed, never raw transcripts.

Paths, argument keys, preconditions, error patterns, failure conditions, answer forms, worked
examples and grouped diagnoses of one change's runs, as plain JSON-ready data. Strings are
redacted again when fenced (`fence.scrub`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from evolver.answers import answer_forms
from evolver.changes import ChangeSet, SkillChange
from evolver.conditions import failure_conditions
from evolver.diagnose import Diagnosis
from evolver.examples import worked_examples
from evolver.graph import path_counts
from evolver.graph_patterns import preconditions
from evolver.model import Trajectory
from evolver.skillbody import argument_keys, failed_runs, ok_runs, tool_runs

__all__ = ["change_facts", "diagnosis_groups", "loading_facts"]

MAX_PATHS = 3
MAX_ERRORS = 10
MAX_GROUPS = 10


def change_facts(
    change: SkillChange, runs: Sequence[Trajectory], diagnoses: Sequence[Diagnosis]
) -> dict[str, Any]:
    """The facts behind `change`, computed from its runs and their diagnoses."""
    ev = change.evidence
    counts = path_counts(runs)
    paths = sorted(counts, key=lambda p: (-counts[p], len(p), p))[:MAX_PATHS]
    ok_tools, failed_tools = tool_runs(ok_runs(runs)), tool_runs(failed_runs(runs))
    found = answer_forms(runs)
    return {
        "skill": change.skill,
        "action": change.action,
        "cluster": change.cluster,
        "runs": ev.runs,
        "successes": ev.successes,
        "failures": ev.failures,
        "success_rate": ev.success_rate,
        "successful_paths": [{"tools": list(p), "runs": counts[p]} for p in paths],
        "arguments_that_worked": {
            tool: argument_keys(runs, tool)[:8] for tool in sorted({t for p in paths for t in p})
        },
        "tools_in_successful_runs": dict(sorted(ok_tools.items())),
        "tools_only_in_failed_runs": sorted(t for t in failed_tools if t not in ok_tools),
        "preconditions": [
            {
                "call_first": p.before,
                "before": p.tool,
                "successful_runs": p.support,
                "failed_runs_that_skipped_it": len(p.violating_failures),
            }
            for p in preconditions(runs)[:5]
        ],
        "errors": [e.model_dump() for e in ev.errors[:MAX_ERRORS]],
        "conditions_only_in_failed_runs": [
            {
                "tool": c.tool,
                "after_result_of": c.fact.source or None,
                "key": c.fact.key,
                "value": c.fact.value,
                "failed_runs": c.failed_runs,
                "successful_runs_that_called_the_tool": c.ok_runs,
            }
            for c in failure_conditions(runs)
        ],
        "final_answer_forms_of_successful_runs": [
            {"form": f, "runs": n} for f, n in (found.forms if found else ())
        ],
        "requests_resolved_and_the_changes_made": [
            {"request_words": list(e.words), "changed": sorted(e.changes), "runs": e.runs}
            for e in worked_examples(runs)
        ],
        "diagnosed_failures": diagnosis_groups(diagnoses),
    }


def diagnosis_groups(diagnoses: Sequence[Diagnosis]) -> list[dict[str, Any]]:
    """Diagnoses grouped by (category, tool, expected), most failed runs first, one example."""
    groups: dict[tuple[str, str, str], list[Diagnosis]] = defaultdict(list)
    for d in diagnoses:
        groups[(str(d.category), d.tool or "", d.expected or "")].append(d)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_GROUPS]
    out = []
    for (category, tool, expected), found in ranked:
        said = Counter(d.evidence for d in found if d.evidence)
        out.append(
            {
                "category": category,
                "tool": tool or None,
                "successful_runs_called": expected or None,
                "failed_runs": len(found),
                "example": min(said, key=lambda t: (-said[t], t)) if said else "",
            }
        )
    return out


MIN_MISFIRES = 2
FALSE_LOAD_SHARE = 0.25  # of the runs that loaded it
MISSED_SHARE = 0.5  # of its cluster's runs that report the skills they load


def loading_facts(
    skill: str, cluster: str, runs: Sequence[Trajectory], changeset: ChangeSet
) -> dict[str, Any] | None:
    """Evidence that `skill` (learned from `cluster`) misfires, or None when it does not or
    nobody can tell: runs of other clusters that loaded it, runs of its cluster that did not.

    Only runs that report their loaded skills count as misses."""
    member = changeset.memberships
    reports = {c.id: c for c in changeset.clusters}
    loaded = [r for r in runs if any(s.name == skill for s in r.skills)]
    mine = [r for r in runs if member.get(r.id) == cluster]
    false_loads = [r for r in loaded if member.get(r.id) != cluster]
    missed = [r for r in mine if r.skills and r not in loaded]
    wrong = len(false_loads) >= MIN_MISFIRES and len(false_loads) >= FALSE_LOAD_SHARE * len(loaded)
    reporting = sum(1 for r in mine if r.skills)
    lost = len(missed) >= MIN_MISFIRES and len(missed) >= MISSED_SHARE * max(reporting, 1)
    if not (wrong or lost):
        return None
    by_cluster = Counter(member.get(r.id, "none") for r in false_loads)
    others = sorted(by_cluster.items(), key=lambda kv: (-kv[1], kv[0]))[:5]

    def kind(cid: str) -> dict[str, Any]:
        report = reports.get(cid)
        return {
            "cluster": cid,
            "key_terms": list(report.keywords[:8]) if report else [],
            "tools": list(report.top_tools[:5]) if report else [],
        }

    return {
        "meant_for": {**kind(cluster), "runs": len(mine)},
        "loaded_it": len(loaded),
        "loaded_by_other_kinds": [{**kind(cid), "runs": n} for cid, n in others],
        "its_kind_that_did_not_load_it": {"runs": len(missed), "of_reporting": reporting},
    }
