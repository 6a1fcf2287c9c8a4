"""Regression watch: did a skill's newest merged version make its runs worse than the one
before? A one-sided Fisher exact test with a minimum sample per side decides; a regressed
skill gets a revert change carrying the figures. Pure: counts and texts in, decisions out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from evolver.changes import Evidence, SkillChange
from evolver.hygiene import fisher_less
from evolver.skilldoc import parse, render

VERSION_KEY = "skillforge.version"
ALPHA = 0.05

__all__ = [
    "ALPHA",
    "RegressionCheck",
    "VersionRuns",
    "judge",
    "revert_change",
    "skill_version",
]


@dataclass(frozen=True)
class VersionRuns:
    """Runs that had one version of a skill loaded and whose outcome is known."""

    version: str
    runs: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.runs if self.runs else 0.0

    def figure(self) -> str:
        return f"{self.rate:.0%} ({self.successes}/{self.runs} runs)"


@dataclass(frozen=True)
class RegressionCheck:
    """The comparison of a skill's newest version with the previous one, and the verdict."""

    skill: str
    newest: VersionRuns
    previous: VersionRuns
    p_value: float | None  # None when a side has too few runs to test
    regressed: bool
    why: str


def judge(
    skill: str,
    counts: Sequence[VersionRuns],
    newest: str,
    previous: str,
    *,
    min_runs: int = 10,
    alpha: float = ALPHA,
) -> RegressionCheck:
    """Compare the runs of `newest` with those of `previous`: regressed when the newest
    succeeds less often, each side has `min_runs` runs, and one-sided Fisher p < alpha."""
    by_version = {c.version: c for c in counts}
    new = by_version.get(newest, VersionRuns(newest, 0, 0))
    old = by_version.get(previous, VersionRuns(previous, 0, 0))
    if new.runs < min_runs or old.runs < min_runs:
        why = (
            f"too few runs to judge: version {newest} has {new.runs}, version {previous} "
            f"has {old.runs}; each needs {min_runs}"
        )
        return RegressionCheck(skill, new, old, None, False, why)
    p = fisher_less(
        new.successes, new.runs - new.successes, old.successes, old.runs - old.successes
    )
    regressed = new.rate < old.rate and p < alpha
    figures = (
        f"success fell from {old.figure()} with version {previous} to {new.figure()} "
        f"with version {newest}, p={p:.3g}"
        if new.rate < old.rate
        else f"version {newest} did not do worse: {new.figure()} against {old.figure()}"
    )
    if new.rate < old.rate and not regressed:
        figures += f", not significant at alpha {alpha:g}"
    return RegressionCheck(skill, new, old, p, regressed, figures)


def skill_version(text: str) -> str | None:
    """The `metadata.skillforge.version` of a SKILL.md, or None when absent or unreadable."""
    try:
        meta = parse(text)[0].get("metadata")
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get(VERSION_KEY) is None:
        return None
    return str(meta[VERSION_KEY]).strip() or None


def bumped(old_text: str, current_version: str) -> str:
    """`old_text` with its version set past `current_version`, so the runs of the restored
    text are never counted with those of the version it replaces."""
    fm, body = parse(old_text)
    meta = dict(fm.get("metadata") or {})
    try:
        meta[VERSION_KEY] = str(int(current_version) + 1)
    except ValueError:
        meta[VERSION_KEY] = f"{current_version}.1"
    return render({**fm, "metadata": meta}, body)


def revert_change(
    skill: str, old_text: str, check: RegressionCheck, *, reason: str = ""
) -> SkillChange:
    """An update that puts back `check.previous`'s SKILL.md (`old_text`), with the figures."""
    new, old = check.newest, check.previous
    p = "" if check.p_value is None else f", p={check.p_value:.2g}"
    summary = (
        f"Revert {skill} to version {old.version}: success fell from {old.rate:.0%} "
        f"({old.runs} runs) to {new.rate:.0%} ({new.runs} runs){p}"
    )
    why = reason or (
        f"Runs that loaded version {new.version} of {skill} succeeded {new.figure()}; runs "
        f"that loaded version {old.version} succeeded {old.figure()} (one-sided Fisher exact "
        f"test{p}). This puts back the text of version {old.version}, renumbered so its runs "
        "are counted apart."
    )
    # Stable for the same pair of versions: a rejected revert stays rejected.
    key = f"revert:{skill}:{new.version}->{old.version}"
    evidence = Evidence(
        trajectory_ids=(),
        runs=new.runs,
        successes=new.successes,
        failures=new.runs - new.successes,
        success_rate=new.rate,
        fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16],
    )
    return SkillChange(
        skill=skill,
        action="update",
        content=bumped(old_text, new.version),
        summary=summary,
        reason=why,
        evidence=evidence,
        cluster="regression",
    )
