"""The LLM pass of a cycle: the offline changes in, the same changes better written out.

The offline evolver decides what changes; per skill (batched by cluster) an analyzer reads
the diagnosed failures, a writer words a new skill or an editor makes minimal edits to an
existing one, and a trigger optimiser rewrites the description of a skill that misfires.
An answer that is refused, does not parse or fails the validator leaves the offline change
as it was, and the proposal says why. Evidence and fingerprints stay the offline ones.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evolver.changes import ChangeSet, SkillChange, SkillDoc
from evolver.diagnose import Diagnosis, diagnose_all
from evolver.llm_edit import EditRejected, edited_skill, managed_text
from evolver.llm_validate import commands_seen, validate_analysis, validate_skill, validate_text
from evolver.model import Trajectory
from evolver.prompts import Prompt, analyzer, editor, trigger, writer
from evolver.prompts.facts import change_facts, loading_facts
from evolver.prompts.fence import scrub
from evolver.redact import sanitize_inline
from evolver.skilldoc import find_managed_block, is_managed, parse, problems, render

from .config import Config
from .llm.budget import Usage
from .llm.client import Answer, LLMClient, client_from_config
from .output import write_line
from .store import Store

__all__ = ["MIN_ANALYZED_FAILURES", "Refined", "refine", "refine_cycle"]

MIN_ANALYZED_FAILURES = 3  # diagnosed failures a cluster needs before the analyzer is asked


@dataclass(frozen=True)
class Refined:
    """The changes after the LLM pass, and per skill what it cost and what happened."""

    changes: tuple[SkillChange, ...]
    usage_by_skill: dict[str, Usage] = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cached_by_skill: dict[str, int] = field(default_factory=dict)
    written: frozenset[str] = frozenset()  # skills whose text the LLM wrote or edited
    provider: str = ""
    model: str = ""

    @property
    def total(self) -> Usage:
        return sum(self.usage_by_skill.values(), Usage())


class _Asks:
    """The client, counting per skill what each ask cost and how many came from the cache."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.usage: dict[str, Usage] = defaultdict(Usage)
        self.cached: Counter[str] = Counter()

    def __call__(self, prompt: Prompt) -> Answer:
        answer = self.client.ask(prompt)
        skill = prompt.skill or ""
        self.usage[skill] += answer.usage
        self.cached[skill] += int(answer.cached)
        return answer


def refine(
    changes: Sequence[SkillChange],
    changeset: ChangeSet,
    trajectories: Sequence[Trajectory],
    library: Sequence[SkillDoc],
    client: LLMClient,
) -> Refined:
    """Each create/update change reworded by the LLM where its answer passes the validator;
    every other change, and every change whose answer does not, as the offline evolver made it."""
    by_id = {t.id: t for t in trajectories}
    # Each change's runs are one group, as in the cycle: a cluster's lessons stay its own, so
    # new runs in one cluster leave the others' facts (and their cached answers) as they were.
    skill_of = {i: c.skill for c in changes for i in c.evidence.trajectory_ids}
    diagnoses = diagnose_all(list(by_id.values()), skill_of=skill_of)
    docs = {d.name: d for d in library}
    asks = _Asks(client)
    out: list[SkillChange] = []
    notes: dict[str, tuple[str, ...]] = {}
    written: set[str] = set()
    for change in changes:
        if change.action == "retire":
            out.append(change)
            continue
        if _changes_outside_block(docs.get(change.skill), change):
            # A merge carries the other skill's guidance outside the markers, where an
            # LLM edit (confined to the block) would silently drop it: keep it whole.
            out.append(change)
            notes[change.skill] = ("kept the offline text: it changes text outside the markers",)
            continue
        runs = [by_id[i] for i in change.evidence.trajectory_ids if i in by_id]
        step = _Skill(change, runs, diagnoses, docs.get(change.skill), asks)
        try:
            new = step.run(changeset, trajectories)
        except (ValueError, EditRejected) as exc:  # a malformed skill in the library
            step.notes.append(f"kept the offline text: {exc}")
            new = change
        if new is not change:
            written.add(change.skill)
        out.append(new)
        notes[change.skill] = tuple(step.notes)
    skills = {c.skill for c in changes if c.action != "retire"}
    return Refined(
        changes=tuple(out),
        usage_by_skill={s: asks.usage[s] for s in sorted(skills)},
        notes=notes,
        cached_by_skill={s: asks.cached[s] for s in sorted(skills)},
        written=frozenset(written),
        provider=client.provider,
        model=client.model,
    )


class _Skill:
    """The LLM pass over one change: analyse, write or edit, tune the trigger; keep notes."""

    def __init__(
        self,
        change: SkillChange,
        runs: Sequence[Trajectory],
        diagnoses: Sequence[Diagnosis],
        current: SkillDoc | None,
        ask: Callable[[Prompt], Answer],
    ) -> None:
        ids = set(change.evidence.trajectory_ids)
        self.change = change
        self.runs = runs
        self.failures = [d for d in diagnoses if d.trajectory_id in ids]
        self.current = current if change.action == "update" else None
        self.ask = ask
        self.facts = change_facts(change, runs, self.failures)
        self.commands = commands_seen(runs)
        self.allowed = "\n".join(_strings(scrub(self.facts))) + "\n" + change.content
        self.notes: list[str] = []

    def run(self, changeset: ChangeSet, trajectories: Sequence[Trajectory]) -> SkillChange:
        analysis = self._analysis()
        content, role = self._write(analysis)
        if content is not None and self.current is not None:
            content = self._trigger(content, changeset, trajectories)
        if content is None or content == self.change.content:
            self.notes.append("kept the offline text")
            return self.change
        how = {"writer": "written", "editor": "edited"}[role]
        reason = (
            f"{self.change.reason} The text was {how} by an LLM from this evidence "
            "and passed skillforge's validator."
        )
        return self.change.model_copy(update={"content": content, "reason": reason})

    def _answer(self, prompt: Prompt) -> Any:
        """The parsed answer, or None with a note saying why the offline result stands."""
        answer = self.ask(prompt)
        if answer.value is None:
            self.notes.append(f"{prompt.version}: no answer ({answer.note})")
        return answer.value

    def _analysis(self) -> analyzer.FailureAnalysis | None:
        if len(self.failures) < MIN_ANALYZED_FAILURES:
            return None
        found = self._answer(analyzer.build(self.facts))
        if found is None:
            return None
        tools = {c.name for r in self.runs for c in r.tool_calls}  # and tools the diagnoses name
        tools |= {t for d in self.failures for t in (d.tool, d.expected) if t}
        reasons = validate_analysis(
            found.patterns,
            failures=self.change.evidence.failures,
            tools=tools,
            allowed=self.allowed,
        )
        if reasons:
            self.notes.append(f"{analyzer.VERSION}: answer rejected ({_first(reasons)})")
            return None
        self.notes.append(f"{analyzer.VERSION}: {len(found.patterns)} failure patterns")
        return found

    def _write(self, analysis: analyzer.FailureAnalysis | None) -> tuple[str | None, str]:
        change = self.change
        if self.current is None:
            found = self._answer(writer.build(self.facts, change.content, analysis))
            if found is None:
                return None, "writer"
            return self._checked(writer.render_written(found, change.content), writer.VERSION)
        text = self.current.text.replace("\r\n", "\n")
        shown = text if managed_text(parse(text)[1]) else change.content
        regenerated = managed_text(parse(change.content)[1])
        found = self._answer(editor.build(self.facts, shown, regenerated, analysis))
        if found is None:
            return None, "editor"
        try:
            content = edited_skill(text, change.content, found.edits)
        except EditRejected as exc:
            self.notes.append(f"{editor.VERSION}: edit rejected ({exc})")
            return None, "editor"
        checked, role = self._checked(content, editor.VERSION)
        if checked is not None:
            self.notes[-1] += f": {len(found.edits)} edits ({sanitize_inline(found.summary)})"
        return checked, role

    def _checked(self, content: str, version: str) -> tuple[str | None, str]:
        base = self.current.text if self.current else None
        reasons = validate_skill(
            content, self.change.skill, base=base, allowed=self.allowed, commands=self.commands
        )
        role = version.split("/")[0]
        if reasons:
            self.notes.append(f"{version}: answer rejected by the validator ({_first(reasons)})")
            return None, role
        self.notes.append(f"{version}: {'written' if role == 'writer' else 'edited'} by the LLM")
        return content, role

    def _trigger(
        self, content: str, changeset: ChangeSet, trajectories: Sequence[Trajectory]
    ) -> str:
        """`content` with the description a trigger answer gave, when the skill misfires."""
        fm, body = parse(content)
        if not is_managed(fm):
            return content  # a person's frontmatter is theirs
        misfires = loading_facts(self.change.skill, self.change.cluster, trajectories, changeset)
        if misfires is None:
            return content
        found = self._answer(trigger.build(self.change.skill, str(fm["description"]), misfires))
        if found is None:
            return content
        allowed = self.allowed + "\n" + "\n".join(_strings(scrub(misfires)))
        tuned = render({**fm, "description": found.description}, body)
        reasons = validate_text(found.description, allowed=allowed, commands=self.commands)
        reasons += problems(tuned, self.change.skill)
        if reasons:
            self.notes.append(f"{trigger.VERSION}: answer rejected ({_first(reasons)})")
            return content
        self.notes.append(
            f"{trigger.VERSION}: description rewritten ({sanitize_inline(found.why)})"
        )
        return tuned


def _changes_outside_block(current: SkillDoc | None, change: SkillChange) -> bool:
    """Whether an update rewrites the text outside the managed block (as a merge does)."""
    if current is None or change.action != "update":
        return False
    try:
        return _outside(current.text) != _outside(change.content)
    except ValueError:  # malformed markers: the editor path reports it
        return False


def _outside(text: str) -> str:
    _, body = parse(text)
    span = find_managed_block(body)
    outside = body if span is None else body[: span[0]] + body[span[1] :]
    return " ".join(outside.split())  # a block added or replaced may move blank lines


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif value is not None:
        yield json.dumps(value)


def _first(reasons: Sequence[str], limit: int = 2) -> str:
    more = len(reasons) - limit
    return "; ".join(reasons[:limit]) + (f"; and {more} more" if more > 0 else "")


def refine_cycle(
    store: Store,
    config: Config,
    cycle_id: str,
    changes: Sequence[SkillChange],
    changeset: ChangeSet,
    trajectories: Sequence[Trajectory],
    library: Sequence[SkillDoc],
    *,
    say: Callable[[str], None] = write_line,
) -> tuple[list[SkillChange], Refined | None]:
    """The cycle's hook: refine `changes` when an LLM is configured and record the spend;
    (changes, None) unchanged when offline."""
    client = client_from_config(config, store)
    if client is None or not changes:
        return list(changes), None
    refined = refine(changes, changeset, trajectories, library, client)
    store.record_llm_calls(cycle_id, client.calls())
    total, cached = refined.total, sum(refined.cached_by_skill.values())
    say(
        f"cycle {cycle_id}: LLM {client.provider} {client.model}: {len(refined.written)} of "
        f"{len(changes)} changes written by it; {total.calls} calls, {total.input_tokens:,} in "
        f"/ {total.output_tokens:,} out tokens, ~${total.cost_usd:.4f}; {cached} from the cache"
    )
    return list(refined.changes), refined
