"""SKILL.md parsing, rendering, checking, naming, and the managed block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evolver.changes import MANAGED_KEY
from evolver.skilldoc import (
    BLOCK_BEGIN,
    BLOCK_END,
    NAME_RE,
    is_managed,
    parse,
    problems,
    render,
    replace_managed_block,
    slugify,
)
from tests.evolver.conftest import CHECK_SKILLS


def test_render_orders_keys_and_stringifies_metadata() -> None:
    fm = {
        "metadata": {"b": 2, "a": True},
        "allowed-tools": "Read",
        "description": "Does: things, with a colon",
        "name": "demo",
        "license": "MIT",
    }
    text = render(fm, "# Demo\n")
    keys = [line.split(":")[0] for line in text.splitlines()[1:] if line and line[0] != " "]
    assert keys[:5] == ["name", "description", "license", "metadata", "allowed-tools"]
    data, body = parse(text)
    assert data["metadata"] == {"b": "2", "a": "True"}
    assert data["description"] == "Does: things, with a colon"
    assert body == "# Demo\n"
    assert problems(text, "demo") == []


def test_render_never_wraps_long_descriptions() -> None:
    text = render({"name": "x", "description": "word " * 150}, "")
    assert len([line for line in text.splitlines() if line.startswith("description")]) == 1
    assert parse(text)[0]["description"] == "word " * 150
    assert len(text.splitlines()) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# no frontmatter\n", "must open"),
        ("---\nname: [unclosed\n---\nbody\n", "not valid YAML"),
        ("---\n- a\n- b\n---\nbody\n", "not a YAML mapping"),
    ],
)
def test_parse_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


CASES = {
    "good": "---\nname: good\ndescription: Fine.\n---\nbody\n",
    "extra-key": "---\nname: extra-key\ndescription: x\nversion: 2\n---\n",
    "Bad_Name": "---\nname: Bad_Name\ndescription: x\n---\n",
    "wrong-folder": "---\nname: other\ndescription: x\n---\n",
    "my-claude-skill": "---\nname: my-claude-skill\ndescription: x\n---\n",
    "angles": "---\nname: angles\ndescription: use <b>bold</b>\n---\n",
    "no-desc": "---\nname: no-desc\n---\n",
    "meta-int": "---\nname: meta-int\ndescription: x\nmetadata:\n  v: 2\n---\n",
    "long-body": "---\nname: long-body\ndescription: x\n---\n" + "line\n" * 501,
    "no-fm": "just text\n",
}


def test_problems_agree_with_check_skills(tmp_path: Path) -> None:
    for folder, text in CASES.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "SKILL.md").write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(CHECK_SKILLS), str(tmp_path)], capture_output=True, text=True
    )
    for folder, text in CASES.items():
        ours = problems(text, folder)
        theirs = [
            line.split(": ", 1)[1]
            for line in proc.stdout.splitlines()
            if line.startswith(str(tmp_path / folder / "SKILL.md") + ":")
        ]
        assert ours == theirs, folder
    assert "1 passed, 9 failed" in proc.stdout


@pytest.mark.parametrize(
    "raw",
    [
        "../../etc/passwd",
        "Claude_Helper",
        "anthropic",
        "claclaudeude",
        "🚀🔥",
        "",
        "x" * 300,
        "word-" * 80,
        "Ünïcødé Tööl",
        "cancelReservation",
        "--a--b--",
        "ANTHROPIC_claude_tool",
    ],
)
def test_slugify_always_gives_a_valid_name(raw: str) -> None:
    name = slugify(raw)
    assert NAME_RE.match(name) and 1 <= len(name) <= 64
    assert "claude" not in name and "anthropic" not in name
    assert problems(render({"name": name, "description": "d"}, ""), name) == []


def test_slugify_examples() -> None:
    assert slugify("cancel_reservation") == "cancel-reservation"
    assert slugify("cancelReservation") == "cancel-reservation"
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("Claude_Helper") == "helper"
    assert slugify("🚀") == "skill"


@pytest.mark.parametrize(
    ("raw", "token"),
    [
        ("fetch_Xk29Qz81Lm47Rt_record", "xk29qz81lm47rt"),
        ("getToken4f9a8b7c6d5e4f3a2b1c", "4f9a8b7c6d5e4f3a2b1c"),
        ("close_ghp_PLANTEDgithubTOKEN0123456789abcdEF", "planted"),
        ("sync_aB3dE5fG7hJ9kL_state", "ab3de5fg7hj9kl"),
        ("rotate password=hunter2secret", "hunter2secret"),
    ],
)
def test_slugify_never_makes_a_name_of_a_secret_or_a_token(raw: str, token: str) -> None:
    name = slugify(raw)
    assert NAME_RE.match(name) and token not in name, name
    assert not any(c.isdigit() for c in name), name  # nor a piece of one (camel case split)


def test_slugify_keeps_short_words_with_digits() -> None:
    assert slugify("base64_encode") == "base64-encode"
    assert slugify("get_user_v2") == "get-user-v2"
    assert slugify("sha256sum") == "sha256sum"


def test_is_managed() -> None:
    assert is_managed({"metadata": {MANAGED_KEY: "true"}})
    assert not is_managed({"metadata": {MANAGED_KEY: "false"}})
    assert not is_managed({"metadata": "true"})
    assert not is_managed({})


def test_managed_block_is_appended_then_replaced_in_place() -> None:
    body = "# Mine\n\nA person wrote this.\n"
    first = replace_managed_block(body, "## Procedure\n\n1. one")
    assert first.startswith(body)
    assert first.count(BLOCK_BEGIN) == 1 and first.endswith(BLOCK_END + "\n")
    edited = first.replace("# Mine", "# Mine, edited") + "\nA note after the block.\n"
    second = replace_managed_block(edited, "## Procedure\n\n1. two")
    assert "1. one" not in second and "1. two" in second
    assert second.startswith("# Mine, edited\n\nA person wrote this.\n")
    assert second.endswith(BLOCK_END + "\n\nA note after the block.\n")
    before, after = edited.split(BLOCK_BEGIN)[0], edited.split(BLOCK_END)[1]
    assert second.split(BLOCK_BEGIN)[0] == before and second.split(BLOCK_END)[1] == after


@pytest.mark.parametrize(
    "body",
    [
        f"{BLOCK_BEGIN}\nno end\n",
        f"{BLOCK_END}\n{BLOCK_BEGIN}\n",
        f"{BLOCK_BEGIN}{BLOCK_BEGIN}{BLOCK_END}",
    ],
)
def test_malformed_markers_raise(body: str) -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_managed_block(body, "x")
