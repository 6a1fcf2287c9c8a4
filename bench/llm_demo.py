"""Two cycles through the LLM path on the tau-bench airline corpus, against a loopback server.

The server speaks the real OpenAI Chat Completions (or, with --anthropic, Messages) wire format
and answers from the evidence it is sent (`tests/llm_roles.expert`). Cycle 1 writes skills
from trials 0-1 (six failed runs carry planted secrets); they are accepted; cycle 2 edits
them from trial 2; cycle 3 has nothing new. Prints one LLM-written skill, one LLM edit as a
diff, the request log with the planted secrets as they were sent, and the budget use.

    .venv/bin/python bench/llm_demo.py [--anthropic]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skillforge import review  # noqa: E402
from skillforge.config import load  # noqa: E402
from skillforge.cycle import run_cycle  # noqa: E402
from skillforge.importers import parse_record  # noqa: E402
from skillforge.library import LibraryRepo  # noqa: E402
from skillforge.store import Store  # noqa: E402
from tests.llm_roles import expert, skill_of  # noqa: E402
from tests.llm_server import LLMServer  # noqa: E402
from tests.test_llm_cycle import LEAK, SECRETS, _leaky  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "tau-bench-airline" / "gpt-4o-airline.json"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def main() -> int:
    provider = "anthropic" if "--anthropic" in sys.argv else "openai"
    by_trial: dict[int, list] = {}
    for record in json.loads(CORPUS.read_text()):
        by_trial.setdefault(record["trial"], []).append(parse_record(record))
    failed = [r for r in by_trial[0] if r.succeeded is False][:6]
    by_trial[0] = [_leaky(r) if r in failed else r for r in by_trial[0]]
    home = Path(tempfile.mkdtemp(prefix="llm-demo-"))
    with LLMServer(expert) as server:
        base = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
        config = load(
            environ={},
            cwd=home,
            overrides={
                "seed": ROOT / "skills",
                "llm_provider": provider,
                "llm_base_url": base,
                "llm_api_key": "demo-key",
                "llm_model": "demo-model",
                "llm_max_calls": 12,
                "llm_max_cost_usd": 0.25,
            },
        )
        repo = LibraryRepo.ensure(config.library_path, config.remote_url, seed=config.seed)
        with Store(config.db_path) as store:
            store.add_trajectories(by_trial[0] + by_trial[1], source="demo")
            first = run_cycle(store, repo, config)
            sent_first = len(server.requests)
            review.accept(store, repo, first.proposal)
            store.add_trajectories(by_trial[2], source="demo")
            second = run_cycle(store, repo, config)
            sent_second = len(server.requests)
            third = run_cycle(store, repo, config)
            lib = config.library_path
            created = [c["skill"] for c in store.proposal_changes(first.proposal)]
            updated = [
                c["skill"]
                for c in store.proposal_changes(second.proposal)
                if c["action"] == "update"
            ]
            print(f"\n=== LLM-written skill ({created[0]}, cycle {first.proposal}) ===\n")
            print(git("show", f"main:{created[0]}/SKILL.md", cwd=lib))
            edited = next(
                (
                    n
                    for n in updated
                    if "+- Re-read"
                    in git(
                        "diff", "main", f"evolve/{second.proposal}", "--", f"{n}/SKILL.md", cwd=lib
                    )
                ),
                None,
            )
            if edited:
                print(f"=== LLM edit of {edited} (cycle {second.proposal}) ===\n")
                print(
                    git(
                        "diff",
                        "main",
                        f"evolve/{second.proposal}",
                        "--",
                        f"{edited}/SKILL.md",
                        cwd=lib,
                    )
                )
            print("=== Request log ===\n")
            for i, (role, body) in enumerate(zip(server.roles(), server.requests, strict=True)):
                text = json.dumps(body)
                where = "cycle 1" if i < sent_first else "cycle 2"
                print(
                    f"{i + 1:2d}. {where} {role:8s} skill={skill_of(body):45s} "
                    f"{len(text):6,d} bytes"
                )
            sent = "\n".join(server.texts())
            placeholders = sorted(set(re.findall(r"\[REDACTED:[a-z-]+\]", sent)))
            print("\nplanted in 6 failed runs:", LEAK.replace("\n", " "))
            print("planted values found in requests:", [s for s in SECRETS if s in sent] or "none")
            print("placeholders the requests carry instead:", ", ".join(placeholders))
            example = next(
                (m.group(0) for m in re.finditer(r"lookup failed for[^\"]{0,160}", sent)), ""
            )
            print("as sent:", example)
            print("\n=== Budget use (skillforge status) ===\n")
            for cycle, row in store.llm_spend().items():
                print(f"{cycle}: {row}")
            print(
                f"\ncycle 3 ({third.status}): requests before {sent_second}, after "
                f"{len(server.requests)}"
            )
            print(
                f"limits: {config.llm_max_calls} calls, {config.llm_max_input_tokens:,} in, "
                f"{config.llm_max_output_tokens:,} out, ${config.llm_max_cost_usd}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
