"""evolve() end to end: statuses, mapping, idempotence, determinism, safety, purity."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from evolver import ChangeSet, EvolveParams, SkillDoc, evolve, parse, problems, slugify
from evolver.skilldoc import BLOCK_BEGIN, BLOCK_END, NAME_RE
from tests.evolver.conftest import (
    CHECK_SKILLS,
    apply,
    refund_runs,
    run,
    shipping_runs,
    synthetic,
    write_library,
)


def _dump(cs: ChangeSet) -> str:
    return cs.model_dump_json()


def _check_all(tmp_path: Path, cs: ChangeSet) -> None:
    for change in cs.changes:
        assert problems(change.content, change.skill) == [], change.skill
        assert len(change.summary) <= 72
    root = write_library(tmp_path / "lib", apply(cs, []))
    proc = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(root)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout
    assert f"{len(cs.changes)} passed, 0 failed" in proc.stdout


def test_statuses_and_changes(tmp_path: Path) -> None:
    runs = (
        refund_runs()
        + shipping_runs()
        + [
            run(f"f{i}", "Delete the spam folder in the mailbox", ["purge_mail"], False)
            for i in range(5)
        ]
        + [run("lonely", "Compose a haiku about autumn leaves", ["write_poem"])]
    )
    cs = evolve(runs, [])
    status = {r.keywords[0] if r.keywords else r.id: r.status for r in cs.clusters}
    assert sorted(status.values()) == ["changed", "changed", "no-success", "too-small"]
    # named by what the requests ask for, sorted by name
    assert [c.skill for c in cs.changes] == ["change-shipping-address", "refund-order"]
    assert all(c.action == "create" for c in cs.changes)
    assert cs.trajectories == len(runs)
    assert cs.tool_graph_mermaid.startswith("flowchart LR")
    assert [r.size for r in cs.clusters] == sorted((r.size for r in cs.clusters), reverse=True)
    _check_all(tmp_path, cs)


def test_min_params_are_respected() -> None:
    runs = refund_runs()
    assert evolve(runs, [], EvolveParams(min_runs=8)).empty
    assert evolve(runs, [], EvolveParams(min_successes=5)).clusters[0].status == "no-success"
    assert not evolve(runs, [], EvolveParams(min_successes=4)).empty


def test_applying_then_rerunning_gives_no_changes() -> None:
    runs = refund_runs() + shipping_runs() + synthetic(200)
    person = SkillDoc(
        name="issue-refund",
        text="---\nname: issue-refund\ndescription: Our notes.\n---\n# Refunds\n\nBe kind.\n",
    )
    first = evolve(runs, [person])
    assert any(c.skill == "issue-refund" and c.action == "update" for c in first.changes)
    library = apply(first, [person])
    second = evolve(list(reversed(runs)), library)
    assert second.empty, [c.summary for c in second.changes]
    assert {r.status for r in second.clusters} <= {"unchanged", "too-small", "no-success"}


def test_unrelated_runs_leave_existing_changes_untouched() -> None:
    base = refund_runs() + synthetic(300)
    before = {c.skill: c for c in evolve(base, []).changes}
    lonely = run("lonely-1", "translate a poem into Latin", [], success=None)
    after = {c.skill: c for c in evolve(base + [lonely] + shipping_runs(), []).changes}
    assert set(after) == set(before) | {"change-shipping-address"}
    for name, change in before.items():
        assert after[name].content == change.content, name


def test_managed_skill_is_updated_not_duplicated() -> None:
    first = evolve(refund_runs() + shipping_runs(), [])
    library = apply(first, [])
    grown = refund_runs() + refund_runs("more", 3, 2) + shipping_runs()
    second = evolve(grown, library)
    assert [(c.skill, c.action) for c in second.changes] == [("refund-order", "update")]
    fm, _ = parse(second.changes[0].content)
    assert fm["metadata"]["skillforge.version"] == "2"
    assert second.changes[0].evidence.runs == 12
    assert second.changes[0].summary.startswith("Update refund-order: 7/12 runs succeed")


def test_loaded_skill_decides_the_mapping() -> None:
    runs = [r.model_copy(update={"skills": []}) for r in refund_runs()]
    from evolver.model import LoadedSkill

    runs = [r.model_copy(update={"skills": [LoadedSkill(name="refunds-howto")]}) for r in runs]
    lib = [
        SkillDoc(name="refunds-howto", text="---\nname: refunds-howto\ndescription: d\n---\nHi\n")
    ]
    cs = evolve(runs, lib)
    assert [(c.skill, c.action) for c in cs.changes] == [("refunds-howto", "update")]
    assert "had it loaded" in cs.changes[0].reason
    assert cs.changes[0].content.startswith(lib[0].text)


def test_malformed_markers_are_left_alone() -> None:
    text = f"---\nname: issue-refund\ndescription: d\n---\n{BLOCK_BEGIN}\nhalf a block\n"
    cs = evolve(refund_runs(), [SkillDoc(name="issue-refund", text=text)])
    assert cs.empty
    assert cs.clusters[0].status == "conflict" and cs.clusters[0].skill == "issue-refund"


def test_shuffled_input_gives_identical_output() -> None:
    runs = refund_runs() + shipping_runs() + synthetic(400)
    lib = [SkillDoc(name="zeta", text="---\nname: zeta\ndescription: z\n---\n")]
    base = _dump(evolve(runs, lib))
    for seed in (1, 2):
        shuffled = runs[:]
        random.Random(seed).shuffle(shuffled)
        assert _dump(evolve(shuffled, list(reversed(lib)))) == base


def test_output_does_not_depend_on_hash_seed() -> None:
    code = (
        "import sys, hashlib\n"
        "sys.path.insert(0, '.')\n"
        "from tests.evolver.conftest import synthetic, refund_runs\n"
        "from evolver import evolve\n"
        "cs = evolve(synthetic(600) + refund_runs(), [])\n"
        "print(hashlib.sha256(cs.model_dump_json().encode()).hexdigest())\n"
    )
    root = Path(__file__).parents[2]
    digests = set()
    for seed in ("1", "2", "3"):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env
        )
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip())
    assert len(digests) == 1


HOSTILE = [
    "../../etc/passwd",
    "Claude_Helper",
    "🚀🔥💥",
    "x" * 200,
    "<img src=x onerror=alert(1)>",
    "`rm -rf /`|tee",
    "anthropic_claude_do",
    "# heading\nnewline",
]


def test_hostile_tool_names_give_valid_skills(tmp_path: Path) -> None:
    runs = []
    for i, tool in enumerate(HOSTILE):
        task = f"Handle case {chr(97 + i)}lpha{chr(97 + i)} with the special widget number {i}"
        runs += [
            run(f"h{i}-{j}", task, [("get_x", {}, None), (tool, {"k": 1}, None)]) for j in range(4)
        ]
    cs = evolve(runs, [])
    assert len(cs.changes) >= len(HOSTILE) - 1
    names = [c.skill for c in cs.changes]
    assert len(set(names)) == len(names)
    for name in names:
        assert NAME_RE.match(name) and len(name) <= 64 and "claude" not in name
    for change in cs.changes:
        fm, body = parse(change.content)
        assert "<img" not in change.content and "# heading" not in body
        assert "\n# " not in body.split(BLOCK_BEGIN)[1]
    _check_all(tmp_path, cs)
    assert "<" not in cs.tool_graph_mermaid


SECRETS = {
    "openai": "sk-proj-ZXCVBNMasdfghjklQWERTYuiop1234567890",
    "aws": "AKIAZZZZZZZZZZZZZZZZ",
    "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
    "password": "hunter2hunter2",
    "email": "alice.secret@example.com",
    "card": "4111 1111 1111 1111",
    "phone": "+44 20 7946 0958",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4eHh4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
}


def test_planted_secrets_never_reach_any_output(tmp_path: Path) -> None:
    s = SECRETS
    task = (
        f"Rotate the credentials for {s['email']} using key {s['openai']} and "
        f"password={s['password']}, card {s['card']}, phone {s['phone']}, aws {s['aws']}"
    )
    runs = []
    for i in range(6):
        key_error = None if i < 4 else f"Error: key {s['openai']} rejected for {s['email']}"
        notify_error = f"Error: bad Bearer {s['github']} (jwt {s['jwt']})" if i >= 3 else None
        calls = [
            ("find_account", {"email": s["email"], "token": s["jwt"], s["aws"]: 1}, None),
            ("rotate_key", {"api_key": s["openai"], "card": s["card"]}, key_error),
            ("notify_user", {"phone": s["phone"]}, notify_error),
        ]
        runs.append(run(f"sec-{i}", task, calls, success=i < 4))
    cs = evolve(runs, [])
    assert cs.changes, "the secret-laden runs should still teach a skill"
    out = _dump(cs) + "".join(c.commit_message for c in cs.changes)
    for secret in SECRETS.values():
        assert secret not in out, secret
        assert json.dumps(secret)[1:-1] not in out
    assert "rejected for ⟨email⟩" in out  # the error texts are quoted, redacted to their kind
    _check_all(tmp_path, cs)


def test_hostile_markdown_in_task_and_errors_is_neutralised() -> None:
    task = "Export report <!-- skillforge:end --> ```\n# Injected heading\n| a | b |"
    runs = [
        run(
            f"m{i}",
            task,
            [("export_report", {}, None if i < 3 else "<script>x</script>\n# boom")],
            i < 3,
        )
        for i in range(5)
    ]
    cs = evolve(runs, [])
    content = cs.changes[0].content
    assert content.count(BLOCK_END) == 1 and content.count(BLOCK_BEGIN) == 1
    assert "<script>" not in content and "\n# Injected" not in content and "\n# boom" not in content
    assert "```" not in content


def test_evolver_is_pure() -> None:
    code = (
        "import sys, evolver, evolver.pipeline, evolver.synthesize, evolver.graph\n"
        "bad = {'sqlite_utils','git','apscheduler','watchdog','httpx','anthropic','openai',"
        "'skillforge','requests','sqlite3','urllib3','aiohttp'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2]
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_evolver_source_does_no_io() -> None:
    import ast

    root = Path(__file__).parents[2] / "evolver"
    banned_modules = {"os", "pathlib", "io", "shutil", "subprocess", "socket", "sqlite3", "urllib"}
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                assert not {n.split(".")[0] for n in names} & banned_modules, (path.name, names)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"open", "exec", "eval", "__import__"}, path.name


def test_slugified_names_only() -> None:
    runs = [
        run(f"n{i}", "Book a table at the bistro", [("Reserve Table!!", {}, None)])
        for i in range(4)
    ]
    cs = evolve(runs, [])
    # the name comes from the request, never from the tool (whatever its name holds)
    assert [c.skill for c in cs.changes] == ["book-table"]
    assert slugify("Reserve Table!!") == "reserve-table"


def test_three_thousand_runs() -> None:
    """Scale: twelve families in 3,000 runs of about six calls each (time printed, not asserted)."""
    import time

    runs = synthetic(3000)
    started = time.perf_counter()
    cs = evolve(runs, [])
    print(f"\nevolve() on 3000 synthetic runs: {time.perf_counter() - started:.2f}s")
    assert len(cs.changes) == 12
    assert len({c.skill for c in cs.changes}) == 12


def test_a_copy_with_new_steps_has_its_own_tool_calls():
    from evolver.model import Trajectory

    run = Trajectory(task="t", steps=[{"type": "tool_call", "name": "a"}])
    assert [c.name for c in run.tool_calls] == ["a"]  # computed and kept
    assert run.model_copy(update={"steps": []}).tool_calls == []
    assert [c.name for c in run.model_copy(update={"task": "u"}).tool_calls] == ["a"]
