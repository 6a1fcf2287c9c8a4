"""Cycles through the LLM path: the real anthropic and openai SDKs against a loopback server.

On the tau-bench airline corpus: skills written and then edited by the model are committed
and pass the strict check; the budget holds; unchanged evidence costs nothing; a hostile
model's output is rejected; planted secrets never reach a request or the library, nor does
text from runs that reads as instructions.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evolver.model import ToolCall, Trajectory
from evolver.skilldoc import parse
from skillforge import review
from skillforge.config import Config, load
from skillforge.cycle import CycleResult, run_cycle
from skillforge.importers import parse_record
from skillforge.library import LibraryRepo
from skillforge.store import Store
from tests.conftest import CHECK_SKILLS, REPO_ROOT
from tests.llm_roles import expert, hostile, skill_of
from tests.llm_server import LLMServer
from tests.reliability.test_injection import MARKERS, planted

LEAK = (
    "key sk-ant-api03-PlantedKeyValue0123456789abcdef, db https://admin:PlantedPass99@db.example"
    ".com/x, mail planted.person@example.com, card 4111 1111 1111 1111, phone +1 415 555 0134, "
    "-----BEGIN RSA PRIVATE KEY-----\nPlantedPrivateKeyBody\n-----END RSA PRIVATE KEY-----"
)
SECRETS = (
    "PlantedKeyValue",
    "PlantedPass99",
    "planted.person",
    "4111 1111",
    "555 0134",
    "PlantedPrivateKeyBody",
)
OFFLINE_MARK = "following what worked in past agent runs"  # the offline description's words


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _leaky(run: Trajectory) -> Trajectory:
    """The run with the planted secrets in its task and in a failing tool call."""
    call = ToolCall(
        name="get_reservation_details",
        arguments={"note": LEAK},
        error=True,
        error_text=f"Error: lookup failed for {LEAK}",
    )
    return run.model_copy(update={"task": f"{run.task} ({LEAK})", "steps": [*run.steps, call]})


@pytest.fixture(scope="module")
def airline(airline_records: list[dict[str, Any]]) -> dict[int, list[Trajectory]]:
    by_trial: dict[int, list[Trajectory]] = {}
    for record in airline_records:
        by_trial.setdefault(record["trial"], []).append(parse_record(record))
    failed = [r for r in by_trial[0] if r.succeeded is False][:6]
    by_trial[0] = [_leaky(r) if r in failed else r for r in by_trial[0]]
    return by_trial


class Env:
    """A library, a store and a config pointed at the loopback server through one SDK."""

    def __init__(self, tmp: Path, server: LLMServer, provider: str, **llm: Any) -> None:
        base = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
        overrides = {
            "seed": REPO_ROOT / "skills",
            "llm_provider": provider,
            "llm_base_url": base,
            "llm_api_key": "test-key",
            "llm_model": "test-model",
            "llm_retries": 0,
            "llm_timeout_seconds": 5,
            **llm,
        }
        self.server = server
        self.config: Config = load(environ={}, cwd=tmp, overrides=overrides)
        self.repo = LibraryRepo.ensure(
            self.config.library_path, self.config.remote_url, seed=self.config.seed
        )
        self.store = Store(self.config.db_path)

    def cycle(self, runs: list[Trajectory] = ()) -> CycleResult:
        if runs:
            self.store.add_trajectories(runs, source="test")
        return run_cycle(self.store, self.repo, self.config, say=lambda _: None)

    def skill(self, result: CycleResult, name: str) -> str:
        return git(
            "show", f"evolve/{result.proposal}:{name}/SKILL.md", cwd=self.config.library_path
        )

    def changes(self, result: CycleResult) -> dict[str, dict[str, Any]]:
        return {c["skill"]: c for c in self.store.proposal_changes(result.proposal)}


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator:
    made: list[tuple[LLMServer, Env]] = []

    def make(responder: Any = expert, provider: str = "openai", **llm: Any) -> Env:
        server = LLMServer(responder).__enter__()
        env = Env(tmp_path / f"env{len(made)}", server, provider, **llm)
        made.append((server, env))
        return env

    yield make
    for server, env in made:
        env.store.close()
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def offline(airline, tmp_path_factory) -> dict[str, str]:
    """Each skill's text as the offline evolver writes it from trials 0 and 1."""
    with LLMServer(expert) as server:
        env = Env(tmp_path_factory.mktemp("offline"), server, "offline")
        result = env.cycle(airline[0] + airline[1])
        texts = {name: env.skill(result, name) for name in env.changes(result)}
        env.store.close()
    assert not server.requests
    return texts


def _check_clone(env: Env, tmp: Path, ref: str) -> Path:
    clone = tmp / f"clone-{ref.replace('/', '-')}"
    git("clone", "-q", "--branch", ref, env.config.remote_url, str(clone))
    check = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(clone)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    return clone


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_skills_are_written_then_edited_through_the_llm(make_env, airline, provider, tmp_path):
    env = make_env(provider=provider)
    first = env.cycle(airline[0] + airline[1])
    created = env.changes(first)
    assert first.status == "done" and len(created) >= 2  # one skill per intent
    assert {skill_of(r) for r in env.server.requests} == set(created)  # batched per cluster
    assert set(env.server.roles()) == {"analyzer", "writer"}
    for name in created:
        text = env.skill(first, name)
        assert "Guides an agent through" in text and OFFLINE_MARK not in text  # the LLM's words
    clone = _check_clone(env, tmp_path, f"evolve/{first.proposal}")
    description = env.store.proposal(first.proposal)["description"]
    assert description.count("- LLM: ") == len(created) and "written by the LLM" in description
    spend = env.store.llm_spend()[first.proposal]
    assert spend["calls"] == len(env.server.requests)
    everything = "\n".join(env.server.texts()) + description
    everything += "\n".join(p.read_text() for p in clone.rglob("SKILL.md"))
    for secret in SECRETS:
        assert secret not in everything, secret

    review.accept(env.store, env.repo, first.proposal)
    sent = len(env.server.requests)
    second = env.cycle(airline[2])
    updated = [n for n, c in env.changes(second).items() if c["action"] == "update"]
    assert updated and "editor" in env.server.roles()[sent:]
    for name in updated:
        diff = git(
            "diff",
            "main",
            f"evolve/{second.proposal}",
            "--",
            f"{name}/SKILL.md",
            cwd=env.config.library_path,
        )
        assert "+- Re-read the result of" in diff  # the editor's minimal edit
        assert "-description:" not in diff  # nothing else of the LLM-written skill was lost
    _check_clone(env, tmp_path, f"evolve/{second.proposal}")

    sent = len(env.server.requests)
    third = env.cycle()
    assert third.status == "nothing-new" and len(env.server.requests) == sent


def test_unchanged_clusters_are_answered_from_the_cache(make_env, airline):
    env = make_env()
    runs = airline[0] + airline[1]
    first = env.cycle(runs)
    before = env.changes(first)
    sent = len(env.server.requests)
    target = sorted(before)[0]
    cluster = parse(env.skill(first, target))[0]["metadata"]["skillforge.cluster"]
    member = env.store.memberships()
    # failed runs only: a success would also be contrast for other clusters' failures of its task
    failed = [r for r in runs if member[r.id] == cluster and r.succeeded is False]
    second = env.cycle([r.model_copy(update={"id": f"{r.id}-again"}) for r in failed[:3]])
    after = env.changes(second)
    moved = {n for n in after if after[n]["fingerprint"] != before.get(n, {}).get("fingerprint")}
    asked = {skill_of(r) for r in env.server.requests[sent:]}
    assert target in moved and asked == moved and len(moved) < len(after)
    spend = env.store.llm_spend()[second.proposal]
    assert spend["cached"] >= len(after) - len(moved)


def test_the_budget_holds_and_the_rest_stays_offline(make_env, airline, offline):
    env = make_env(llm_max_calls=3, llm_max_cost_usd=0.5)
    result = env.cycle(airline[0] + airline[1])
    assert len(env.server.requests) <= 3
    spend = env.store.llm_spend()[result.proposal]
    assert spend["calls"] <= 3 and spend["cost_usd"] <= 0.5
    description = env.store.proposal(result.proposal)["description"]
    assert "budget exhausted" in description
    kept = {n for n in env.changes(result) if env.skill(result, n) == offline[n]}
    assert kept and kept != set(offline)  # some by the LLM, the rest as the offline evolver


def test_a_hostile_model_is_rejected_and_the_offline_text_committed(
    make_env, airline, offline, tmp_path
):
    env = make_env(hostile, provider="anthropic")
    result = env.cycle(airline[0] + airline[1])
    description = env.store.proposal(result.proposal)["description"]
    assert "rejected by the validator" in description
    assert set(env.changes(result)) == set(offline)
    for name in offline:
        assert env.skill(result, name) == offline[name]
    _check_clone(env, tmp_path, f"evolve/{result.proposal}")


def test_an_unavailable_api_leaves_the_cycle_offline(make_env, airline, offline):
    env = make_env()
    env.server.fail_next(500, n=50)
    result = env.cycle(airline[0] + airline[1])
    assert result.status == "done" and len(env.server.requests) == 1  # not asked again
    assert {n: env.skill(result, n) for n in env.changes(result)} == offline
    assert "no answer" in env.store.proposal(result.proposal)["description"]


def test_text_that_reads_as_instructions_reaches_no_llm_request(make_env, tmp_path):
    """An injection in error texts, a result, an argument value and requests is replaced
    before the request is sent (the fence alone is not enough), and the library and the
    proposal written through the LLM path quote none of it either."""
    env = make_env()
    result = env.cycle([parse_record(r) for r in planted()])
    assert result.status == "done" and env.server.requests
    assert {"writer", "analyzer"} <= set(env.server.roles())  # the failures were analysed too
    sent = "\n".join(env.server.texts()).lower()
    description = env.store.proposal(result.proposal)["description"]
    clone = _check_clone(env, tmp_path, f"evolve/{result.proposal}")
    library = "\n".join(
        p.read_text() for p in clone.rglob("*") if p.is_file() and ".git" not in p.parts
    )
    for where, text in {"requests": sent, "proposal": description, "library": library}.items():
        found = [m for m in MARKERS if m in text.lower()]
        assert not found, (where, found)
    assert "withheld" in sent  # the evidence says something was there, not what


def test_a_merge_is_never_sent_to_the_editor_which_could_only_drop_its_merged_section():
    from evolver.changes import SkillDoc
    from evolver.hygiene import Duplicate, merge_changes
    from skillforge.refine import _changes_outside_block

    def skill(name: str, step: str) -> SkillDoc:
        text = (
            f"---\nname: {name}\ndescription: Cancel orders.\nmetadata:\n"
            "  skillforge.managed: 'true'\n---\n# Title\n\nIntro.\n\n"
            f"<!-- skillforge:begin -->\n## Procedure\n\n1. Call `{step}`.\n"
            "<!-- skillforge:end -->\n"
        )
        return SkillDoc(name=name, text=text)

    keep, drop = skill("cancel-order", "get_order"), skill("cancel-orders", "find_order")
    update, retire = merge_changes(keep, drop, Duplicate(keep.name, drop.name, 0.9, "same"))
    assert "## Merged from cancel-orders" in update.content
    assert _changes_outside_block(keep, update)  # kept offline, whole
    assert not _changes_outside_block(drop, retire)
    edited_inside = update.model_copy(update={"content": keep.text.replace("get_order", "x")})
    assert not _changes_outside_block(keep, edited_inside)  # an ordinary rewrite goes to the LLM
