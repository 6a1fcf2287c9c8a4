"""Results of the costly stages of a cycle, by a hash of everything they read.

A cycle can hand the evolver a plain mapping of earlier results (key -> JSON text). Every
stage that reads runs looks its result up under a key made of all it reads (which runs, by
id and outcome, and every other input); a miss computes it and adds it. A result is always
returned as it reads back from its JSON, hit or miss, so a cycle gives the same ChangeSet
with the mapping, without it, or with an older one: the mapping only saves time. Pure: the
caller keeps the mapping (a store, between cycles).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, TypeVar

from evolver.changes import ErrorPattern, SkillChange
from evolver.checks import Check, Measured, Profile
from evolver.conditions import Condition, Fact
from evolver.diagnose import Diagnosis, Lessons
from evolver.examples import Example
from evolver.redact import redact
from evolver.synthesize import View

__all__ = [
    "VERSION",
    "Memo",
    "decode_change",
    "decode_diagnoses",
    "decode_lessons",
    "decode_measured",
    "decode_profiles",
    "decode_view",
    "digest",
    "encode_change",
    "encode_diagnoses",
    "encode_lessons",
    "encode_measured",
    "encode_profiles",
    "encode_view",
]

VERSION = "6"  # bump when a stage's output changes for the same inputs
T = TypeVar("T")


def digest(parts: Any) -> str:
    """A hash of JSON-able parts (sorted keys, so dicts in any order hash alike)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _same(value: Any) -> Any:
    return value


class Memo:
    """Stage results by key. `saved` is the caller's mapping (key -> JSON text), read and
    added to; `used` holds every key this cycle asked for, so the caller can drop the rest,
    and `misses` counts the computations per stage."""

    def __init__(self, saved: MutableMapping[str, str] | None = None) -> None:
        self.saved: MutableMapping[str, str] = {} if saved is None else saved
        self.used: set[str] = set()
        self.misses: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()

    def __call__(
        self,
        stage: str,
        parts: Any,
        compute: Callable[[], T],
        encode: Callable[[T], Any] = _same,
        decode: Callable[[Any], T] = _same,
    ) -> T:
        """The stage's result for these inputs: from `saved`, or computed and added."""
        key = f"{stage}:{VERSION}:{digest(parts)}"
        self.used.add(key)
        text = self.saved.get(key)
        if text is None:
            self.misses[stage] += 1
            text = json.dumps(encode(compute()), sort_keys=True, ensure_ascii=False)
            self.saved[key] = text
        else:
            self.hits[stage] += 1
        return decode(json.loads(text))


# --- codecs: exact round trips of the stages' results -----------------------------------------


def encode_measured(found: Sequence[Measured]) -> list[Any]:
    return [
        [
            m.check.to_json(),
            [m.complied_ok, m.complied, m.other_ok, m.other],
            m.p_value,
            [m.folds_agreeing, m.folds],
            m.scope,
            list(m.fitted) if m.fitted is not None else None,
        ]
        for m in found
    ]


def decode_measured(data: Sequence[Any]) -> list[Measured]:
    return [
        Measured(
            Check.from_json(check),
            *table,
            p,
            *folds,
            scope=scope,
            fitted=(fitted[0], fitted[1]) if fitted else None,
        )
        for check, table, p, folds, scope, fitted in data
    ]


def encode_profiles(found: Sequence[Profile]) -> list[Any]:
    """Profiles as JSON, without what a store must not hold: the request (`decode_profiles`
    takes it back from the caller) and argument names that hold a secret (redacted, as they
    are then everywhere: hit or miss, a cycle sees the decoded profile). Count, first, last
    and erred follow from ops and errors."""
    return [
        {
            "ops": list(p.ops),
            "errors": sorted(p.errors),
            "missing": sorted({(op, redact(key)) for op, key in p.missing}),
            "keys": sorted({(op, redact(key)) for op, key in p.keys}),
            "repeated": sorted(p.repeated),
            "answer": p.answer,
            "facts": [[op, f.source, f.key, f.value] for op, f in sorted(p.facts)],
            "changes": sorted(p.changes),
            "ended_failed": p.ended_failed,
            "failures": p.failures,
            "duplicates": p.duplicates,
        }
        for p in found
    ]


def decode_profiles(data: Sequence[Any], tasks: Sequence[str]) -> list[Profile]:
    """The profiles `encode_profiles` kept, with their runs' requests, in order."""
    out = []
    for d, task in zip(data, tasks, strict=True):
        ops = tuple(d["ops"])
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, op in enumerate(ops):
            first.setdefault(op, i)
            last[op] = i
        errors = frozenset((e[0], e[1]) for e in d["errors"])
        out.append(
            Profile(
                ops=ops,
                count=Counter(ops),
                first=first,
                last=last,
                errors=errors,
                erred=frozenset(op for op, _ in errors),
                missing=frozenset((m[0], m[1]) for m in d["missing"]),
                keys=frozenset((k[0], k[1]) for k in d["keys"]),
                repeated=frozenset(d["repeated"]),
                answer=d["answer"],
                facts=frozenset((f[0], Fact(f[1], f[2], f[3])) for f in d["facts"]),
                task=task,
                changes=frozenset(d["changes"]),
                ended_failed=bool(d.get("ended_failed", False)),
                failures=int(d.get("failures", 0)),
                duplicates=int(d.get("duplicates", 0)),
            )
        )
    return out


def _example(data: Sequence[Any]) -> Example:
    return Example(tuple(data[0]), frozenset(data[1]), int(data[2]))


def encode_lessons(found: Lessons) -> dict[str, Any]:
    return {
        "conditions": [
            [c.tool, c.fact.source, c.fact.key, c.fact.value, c.failed_runs, c.ok_runs, c.p_value]
            for c in found.conditions
        ],
        "forms": sorted(found.answer_forms),
        "examples": [[list(e.words), sorted(e.changes), e.runs] for e in found.examples],
    }


def decode_lessons(data: dict[str, Any]) -> Lessons:
    return Lessons(
        [Condition(c[0], Fact(c[1], c[2], c[3]), c[4], c[5], c[6]) for c in data["conditions"]],
        frozenset(data["forms"]),
        [_example(e) for e in data["examples"]],
    )


def encode_diagnoses(found: Sequence[Diagnosis]) -> list[Any]:
    return [d.model_dump(mode="json") for d in found]


def decode_diagnoses(data: Sequence[Any]) -> list[Diagnosis]:
    return [Diagnosis.model_validate(d) for d in data]


# Digests are kept as "fp:<hex>", never as bare hex: a store dump then holds no token that
# secret scanners (detect-secrets' hex entropy plugin) take for a key.
_FP_LINE = "- Fingerprint: `{}`"
_HIDDEN = "fp:"


def _hide(fingerprint: str) -> str:
    return _HIDDEN + fingerprint


def _show(kept: str) -> str:
    return kept.removeprefix(_HIDDEN)


def encode_view(seen: View) -> dict[str, Any]:
    line = _FP_LINE.format(seen.fingerprint)
    return {
        "block": seen.block.replace(line, _FP_LINE.format(_HIDDEN)),
        "path": list(seen.path),
        "ok_on_path": seen.ok_on_path,
        "errors": [e.model_dump(mode="json") for e in seen.errors],
        "categories": seen.categories,
        "terms": list(seen.terms),
        "tools": list(seen.tools),
        "hidden": seen.hidden,
        "tasks": seen.tasks,
        "ids": list(seen.ids),
        "successes": seen.successes,
        "failures": seen.failures,
        "fingerprint": _hide(seen.fingerprint),
    }


def decode_view(data: dict[str, Any]) -> View:
    fingerprint = _show(data["fingerprint"])
    return View(
        block=data["block"].replace(_FP_LINE.format(_HIDDEN), _FP_LINE.format(fingerprint)),
        path=tuple(data["path"]),
        ok_on_path=data["ok_on_path"],
        errors=tuple(ErrorPattern.model_validate(e) for e in data["errors"]),
        categories=dict(data["categories"]),
        terms=tuple(data["terms"]),
        tools=tuple(data["tools"]),
        hidden=dict(data["hidden"]),
        tasks=data["tasks"],
        ids=tuple(data["ids"]),
        successes=data["successes"],
        failures=data["failures"],
        fingerprint=fingerprint,
    )


def encode_change(change: SkillChange | None) -> Any:
    if change is None:
        return None
    data = change.model_dump(mode="json")
    data["evidence"]["fingerprint"] = _hide(change.evidence.fingerprint)
    return data


def decode_change(data: Any) -> SkillChange | None:
    if data is None:
        return None
    evidence = {**data["evidence"], "fingerprint": _show(data["evidence"]["fingerprint"])}
    return SkillChange.model_validate({**data, "evidence": evidence})
