"""Operations: generic tool calls (a shell, an editor, SQL, Python, MCP) resolve to what they
do, in a small vocabulary without argument values; other tools keep their names."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolver.model import Message, ToolCall, Trajectory
from evolver.operations import is_generic, operation, with_operations

SHARED = Path(__file__).resolve().parents[3] / "shared"
INTERCODE = SHARED / "corpora" / "intercode" / "data" / "results"


def call(name: str, arguments: dict[str, Any] | str | None = None, **fields: Any) -> ToolCall:
    return ToolCall(name=name, arguments={} if arguments is None else arguments, **fields)


def bash(command: Any) -> str:
    return operation(call("bash", {"command": command}))


def valid(op: str) -> bool:
    """What every operation must be: a legal ToolCall name, one line, no backtick."""
    return 1 <= len(op) <= 200 and "`" not in op and "\n" not in op and "\r" not in op


# (command, operation): real shapes from Claude Code, Codex, SWE-agent and InterCode runs.
SHELL = [
    # test runners behind wrappers, env assignments, cd, pipes and redirections
    ("cd repo && python -m pytest tests/test_x.py -x 2>&1 | tail -20", "pytest"),
    ("pytest -q tests/", "pytest"),
    ("py.test -k slow", "pytest"),
    ("PYTHONPATH=src FOO=1 python3 -m pytest -q", "pytest"),
    ("env DJANGO_SETTINGS_MODULE=x python -m pytest", "pytest"),
    ("timeout 300 python -m pytest tests/ > /tmp/out.txt 2>&1; echo $?", "pytest"),
    ("sudo -u ci timeout -s KILL 30s nohup pytest", "pytest"),
    ("time python -m unittest discover -s tests", "unittest"),
    ("uv run pytest -k foo", "pytest"),
    ("poetry run python -m pytest", "pytest"),
    ("coverage run -m pytest", "pytest"),
    ("tox -e py311", "tox"),
    ("nox -s tests", "nox"),
    ("python manage.py test auth_tests", "django test"),
    ("go test ./...", "go test"),
    ("cargo +nightly test --release", "cargo test"),
    ("npm test", "npm test"),
    ("npm run test -- --watch", "npm test"),
    ("npm run build", "npm run build"),
    ("npx jest src/a.test.ts", "jest"),
    ("make -C build -j 4 test", "make test"),
    ("make", "make"),
    ("./gradlew :app:test", "gradle test"),
    ("mvn -q clean install -DskipTests", "mvn install"),
    # python invocations
    ("python reproduce_issue.py", "python script"),
    ("python3 /tmp/test_fix.py", "python test script"),
    ("python tests/runtests.py admin_views --parallel 1", "python test script"),
    ("python -c 'import sys; print(sys.version)'", "python -c"),
    ("python3 - <<'PY'\nimport json\nprint(json.dumps({}))\nPY", "python -c"),
    ("python -m venv .venv", "python -m venv"),
    ("python -m http.server 8000", "python -m http.server"),
    ("python -m pip install -e '.[dev]'", "pip install"),
    ("/usr/bin/python3.11 -u -X dev setup.py build", "python script"),
    ("source .venv/bin/activate && python", "python"),
    # programs with subcommands and their global options
    ("git -C dir diff", "git diff"),
    ("git --no-pager log --oneline -5", "git log"),
    ("git -c core.pager=cat show HEAD~1", "git show"),
    ("git stash pop", "git stash pop"),
    ("pip3 install -r requirements.txt", "pip install"),
    ("uv pip install requests==2.31", "pip install"),
    ("docker compose -f deploy/x.yml up -d", "docker compose up"),
    ("docker-compose up", "docker compose up"),
    ("docker run --rm -it ubuntu:22.04 bash", "docker run"),
    ("kubectl -n prod get pods", "kubectl get"),
    ("aws --profile dev s3 cp a.txt s3://bucket/", "aws s3"),
    ("gh pr create --title 'Fix' --body x", "gh pr create"),
    ("apt-get -y install libxml2-dev", "apt-get install"),
    ("conda activate py39 && python train.py", "python script"),
    # flags that change what a program does
    ("sed -i 's/foo/bar/g' src/a.py", "sed -i"),
    ("sed -i.bak -e 's/x/y/' a.txt", "sed -i"),
    ("sed -n '1,200p' src/a.py", "sed"),
    ('grep -rn "def main" src/', "grep -r"),
    ("grep -Rl TODO .", "grep -r"),
    ("grep -n -e -r file.txt", "grep"),
    ("egrep 'a|b' x.log", "grep"),
    ("find . -name '*.pyc' -delete", "find -delete"),
    ('find /testbed -type f -name "*.java" -exec md5sum {} + | sort | uniq -d', "find -exec"),
    ("find . -name '*.py' | head", "find"),
    ("rm -rf build dist", "rm -r"),
    ("rm -- -r", "rm"),
    # writes through heredocs and redirections
    ("cat > tests/test_new.py <<'EOF'\nimport os\nrm -rf /\nEOF", "write test file"),
    ("cat <<EOF > src/mod.py\nx = 1\nEOF\npython src/mod.py", "write file"),
    ("echo 'hello' > out.txt", "write file"),
    ("printf '%s\\n' a b >> notes.md", "write file"),
    ("tee conftest.py > /dev/null <<'EOF'\nimport pytest\nEOF", "write test file"),
    ("echo -n -e '\\r' > \"Icon\"$'\\r'", "write file"),
    # noise first, then the significant command
    (
        "set -euo pipefail\ncd /r\nexport A=1\nsource .venv/bin/activate\npip install -e .",
        "pip install",
    ),
    ("mkdir -p /tmp/x && tar -xzf a.tar.gz -C /tmp/x", "tar"),
    ("echo start; ls -la | head -20", "ls"),
    ("(cd sub && make lint)", "make lint"),
    ("{ echo a; ls; }", "ls"),
    ("if [ -f setup.py ]; then python setup.py develop; fi", "python script"),
    ("if [[ -d .git ]]; then git status; fi", "git status"),
    ('for f in *.txt; do wc -l "$f"; done', "wc"),
    ("while read -r line; do echo $line; done < input.txt", "echo"),
    ('while read -r f; do python fix.py "$f"; done < files.txt', "python script"),
    ("# just a comment\nls", "ls"),
    ("ls \\\n  -la", "ls"),
    ("X=$(git rev-parse HEAD)", "git rev-parse"),
    ("A=1 B=$(echo x)", "set variable"),
    ("cd /tmp", "cd"),
    ("echo $PATH", "echo"),
    ('test -d /workspace/dir2/mysql/ && echo "exists" || echo "does not exist"', "test"),
    # plain programs (InterCode)
    ("du -ah --max-depth=1 /workspace/ | grep -v '/$'", "du"),
    ("nl -ba src/a.py | sed -n '1,120p'", "nl"),
    ("sudo ln -s /testbed/dir3/subdir1/subsubdir1/FooBar /", "ln"),
    ("df -m /system | awk 'NR==2 {printf \"%sM\\n\", $4}'", "df"),
    ("cal | awk 'NR>2 {for (i=1; i<=NF; i++) if ($i ~ /^[0-9]+$/) count++}'", "cal"),
    ("comm -23 <(find a -type f | sort) <(find b -type f | sort)", "comm"),
    ("ps -p $(ps -o ppid= -p $$ 2>/dev/null || echo 1) | grep -q screen", "ps"),
    ("command -v python3", "which"),
    # scripts run by path, by shell, through bash -c and eval
    ("./run_tests.sh -v", "shell test script"),
    ("bash scripts/build.sh", "shell script"),
    ("./scripts/deploy", "run script"),
    ("node index.js", "node script"),
    ("bash -lc 'cd /repo && git diff --stat'", "git diff"),
    ('sh -c "python -m pytest"', "pytest"),
    ('eval "git status"', "git status"),
    ("bash <<'EOF'\ncd x\nmake test\nEOF", "make test"),
    # Codex's apply_patch through the shell
    (
        "apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: tests/test_a.py\n@@\n-x\n+y\n"
        "*** End Patch\nEOF",
        "edit test file",
    ),
    # SWE-agent's own commands
    ("open src/utils.py 120", "read file"),
    ("create tests/test_utils.py", "create test file"),
    ("find_file utils.py", "find files"),
    ("search_dir 'def foo' src", "grep"),
    # broken or empty input: never raises, falls back to the tool name
    ("", "bash"),
    ("   \n\t", "bash"),
    ("echo 'unbalanced", "echo"),
    ('grep "unbalanced src/', "grep"),
    ("ls $(unclosed", "ls"),
    ("cat <<EOF\nno terminator", "cat"),
    ("&& || ;;", "bash"),
    ("Great! If you have any more questions, feel free to ask.", "bash"),
    ("The task is complete.", "bash"),
]


@pytest.mark.parametrize(("command", "expected"), SHELL)
def test_shell_commands(command: str, expected: str) -> None:
    assert bash(command) == expected


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        # argv lists (Codex local_shell / shell), a Responses shell_call's command list
        ("local_shell", {"type": "exec", "command": ["bash", "-lc", "cd /r && rg -n foo"]}, "rg"),
        ("shell", {"command": ["rg", "-n", "foo", "src"]}, "rg"),
        ("shell", {"command": ["python3", "-m", "pytest", "-q"]}, "pytest"),
        ("shell", {"commands": ["cd /repo", "git status"]}, "git status"),
        (
            "shell",
            {"command": ["apply_patch", "*** Begin Patch\n*** Add File: src/n.py\n+x\n"]},
            "create source file",
        ),
        # the names shell tools go by, with namespaces and in any case
        ("Bash", {"command": "git diff", "description": "show diff"}, "git diff"),
        ("functions.bash", '{"command": "git log"}', "git log"),
        ("exec_command", {"cmd": "ls -la", "workdir": "/r"}, "ls"),
        ("shell_command", {"command": "pytest"}, "pytest"),
        ("execute_bash", {"command": "pip install x"}, "pip install"),
        ("run_terminal_cmd", {"command": "npm test", "is_background": False}, "npm test"),
        ("container.exec", {"cmd": ["bash", "-c", "make"]}, "make"),
        ("developer__shell", {"command": "cargo build"}, "cargo build"),
        ("bash_code_execution", {"command": "python -c 'print(1)'"}, "python -c"),
        ("bash", "find_file utils.py\n", "find files"),
        # commands as models without tool calling write them: fenced, in ticks, ReAct-style
        ("bash", {"command": "```bash\nfind . -name '*.py' | wc -l\n```"}, "find"),
        ("bash", {"command": "```BASH tar -czf a.tgz src```"}, "tar"),
        ("bash", {"command": "```ls -R /system | grep x"}, "ls"),
        ("bash", {"command": "`awk '{print $NF}' /w/long.txt`"}, "awk"),
        ("bash", {"command": "execute[du -sh /testbed]"}, "du"),
        ("bash", {"command": "I apologize for the mistake. Let me try again."}, "bash"),
        # Terminus (Harbor) types keystrokes into tmux
        ("bash_command", {"keystrokes": "python -m pytest tests/ -q\n", "duration": 5}, "pytest"),
        # arguments that say nothing: the tool name, lowercased
        ("Bash", {"command": 5}, "bash"),
        ("bash", {"command": None}, "bash"),
        ("bash", {"command": []}, "bash"),
        ("bash", {"command": [1, 2]}, "bash"),
        ("bash", {}, "bash"),
        ("Terminal", '{"command": "ls', "terminal"),
    ],
)
def test_shell_tools(name: str, arguments: dict[str, Any] | str, expected: str) -> None:
    assert operation(call(name, arguments)) == expected


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        # Claude Code
        ("Read", {"file_path": "/r/src/app.py"}, "read file"),
        ("Read", {"file_path": "/r/tests/test_app.py", "offset": 10}, "read test file"),
        ("Edit", {"file_path": "/r/src/app.py", "old_string": "a", "new_string": "b"},
         "edit source file"),
        ("MultiEdit", {"file_path": "/r/src/app_test.go", "edits": []}, "edit test file"),
        ("Edit", {"file_path": "/r/README.md"}, "edit doc file"),
        ("Edit", {"file_path": "/r/docs/guide.txt"}, "edit doc file"),
        ("NotebookEdit", {"notebook_path": "/r/a.ipynb", "new_source": "x"},
         "edit source file"),
        ("Write", {"file_path": "/r/tests/conftest.py", "content": "x"}, "create test file"),
        ("Glob", {"pattern": "**/*.py"}, "find files"),
        ("Grep", {"pattern": "TODO"}, "grep"),
        ("LS", {"path": "/r"}, "ls"),
        ("WebFetch", {"url": "https://x", "prompt": "p"}, "web fetch"),
        ("WebSearch", {"query": "x"}, "web search"),
        ("TodoWrite", {"todos": []}, "plan"),
        ("Task", {"description": "d", "prompt": "p"}, "subagent"),
        ("Skill", {"command": "test"}, "Skill"),
        # SWE-agent / Anthropic / OpenHands editors
        ("str_replace_editor", {"command": "view", "path": "/testbed"}, "ls"),
        ("str_replace_editor", {"command": "view", "path": "/testbed/setup.py"}, "read file"),
        ("str_replace_editor", {"command": "create", "path": "/t/tests/test_b.py",
                                "file_text": "x"}, "create test file"),
        ("str_replace_based_edit_tool", {"command": "str_replace", "path": "/t/a.py",
                                         "old_str": "a", "new_str": "b"}, "edit source file"),
        ("str_replace_editor", {"command": "insert", "path": "/t/spec/a.rb"}, "edit test file"),
        ("str_replace_editor", {"command": "undo_edit", "path": "/t/a.py"}, "edit source file"),
        ("str_replace_editor", {"command": "bogus"}, "str_replace_editor"),
        ("developer__text_editor", {"command": "write", "path": "a/b.test.ts"},
         "create test file"),
        # other agents' file tools
        ("read_file", {"path": "src/x.py"}, "read file"),
        ("read_file", {"target_file": "src/__tests__/x.js"}, "read test file"),
        ("edit_file", {"target_file": "lib/x.rb", "code_edit": "..."}, "edit source file"),
        ("write_file", {"file_path": "FooTest.java", "content": "x"}, "create test file"),
        ("create_file", {"path": "docs/index.rst"}, "create doc file"),
        ("replace_in_file", {"path": "pkg/x_test.go", "diff": "..."}, "edit test file"),
        ("delete_file", {"target_file": "tmp.py"}, "delete file"),
        ("view_file", {}, "read file"),
        # short names are file tools only when given a path
        ("edit", {"path": "a.py"}, "edit source file"),
        ("read", {"document_id": "d1"}, "read"),
        # Codex apply_patch: free-form patch text, a function argument, a Responses operation
        ("apply_patch", "*** Begin Patch\n*** Update File: src/app.py\n@@\n-a\n+b\n*** End Patch",
         "edit source file"),
        ("apply_patch", {"input": "*** Begin Patch\n*** Delete File: old.py\n*** End Patch"},
         "delete file"),
        ("apply_patch", {"type": "create_file", "path": "tests/test_n.py", "diff": "+x"},
         "create test file"),
        ("apply_patch", "--- a/src/x.py\n+++ b/src/x.py\n@@ -1 +1 @@\n-a\n+b\n",
         "edit source file"),
        ("apply_patch", "--- /dev/null\n+++ b/tests/test_x.py\n@@\n+a\n", "create test file"),
        ("apply_patch", "not a patch", "apply_patch"),
    ],
)  # fmt: skip
def test_editor_tools(name: str, arguments: dict[str, Any] | str, expected: str) -> None:
    assert operation(call(name, arguments)) == expected


def test_claude_code_write_over_an_existing_file_is_an_edit() -> None:
    result = "The file /r/src/a.py has been updated. Here's the result of running `cat -n`"
    updated = call("Write", {"file_path": "/r/src/a.py", "content": "x"}, result=result)
    created = call("Write", {"file_path": "/r/src/a.py"}, result="File created successfully")
    assert (operation(updated), operation(created)) == ("edit source file", "create source file")


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("mcp__github__create_issue", {"title": "x"}, "github.create_issue"),
        ("mcp__my_server__list_items", {}, "my_server.list_items"),
        ("mcp__filesystem__read_file", {"path": "/r/tests/test_a.py"}, "read test file"),
        ("mcp__shell__run_command", {"command": "git status"}, "git status"),
        ("mcp__postgres__query", {"sql": "SELECT * FROM t"}, "sql select"),
        ("mcp__sqlite__read_query", {"query": "SELECT a, COUNT(*) FROM t GROUP BY a"},
         "sql select group by"),
        ("mcp__", {}, "mcp__"),
    ],
)  # fmt: skip
def test_mcp_tools(name: str, arguments: dict[str, Any], expected: str) -> None:
    assert operation(call(name, arguments)) == expected


# Statements from InterCode's SQL runs (gpt-4), plus the other statement kinds.
SQL = [
    ("SELECT player_name FROM poker_players ORDER BY final_tables ASC", "sql select"),
    ("SELECT COUNT(*) FROM flights WHERE airline = 'United Airlines'", "sql select"),
    ("SELECT director, COUNT(*) as c FROM cartoons GROUP BY director", "sql select group by"),
    ("SELECT s.Name FROM stadium s LEFT JOIN concert c ON s.id = c.sid", "sql select join"),
    (
        "SELECT h.name FROM highschooler h JOIN friend f ON h.ID = f.student_id GROUP BY h.ID",
        "sql select join group by",
    ),
    ("SELECT name FROM t WHERE note = 'a join b group by c'", "sql select"),
    (
        "WITH a AS ( SELECT AVG(age) AS x FROM dogs ) SELECT COUNT(*) FROM dogs JOIN a",
        "sql select join",
    ),
    ("  -- look first\n(SELECT 1)", "sql select"),
    ("SHOW TABLES", "sql show tables"),
    ("SHOW FULL COLUMNS FROM airports", "sql show columns"),
    ("SHOW DATABASES", "sql show databases"),
    ("SHOW CREATE TABLE t", "sql show create"),
    ("SHOW VARIABLES", "sql show"),
    ("DESCRIBE poker_player", "sql describe"),
    ("desc t", "sql describe"),
    ("EXPLAIN SELECT * FROM t", "sql explain"),
    ("PRAGMA table_info(t)", "sql pragma"),
    ("INSERT INTO t VALUES (1)", "sql insert"),
    ("UPDATE contestants SET votes_received = 0;", "sql update"),
    ("DELETE FROM t WHERE id = 3", "sql delete"),
    ("CREATE TABLE t (a INT)", "sql create"),
    ("DROP TABLE t", "sql drop"),
    ("ALTER TABLE course ADD COLUMN Teacher_ID INT;", "sql alter"),
    ("USE world_1;", "sql use"),
    ("BEGIN; UPDATE t SET a = 1; COMMIT;", "sql transaction"),
    ("Output: [('Asia', 67.44)] Reward: 1", "execute_sql"),
    ("", "execute_sql"),
]


@pytest.mark.parametrize(("statement", "expected"), SQL)
def test_sql_statements(statement: str, expected: str) -> None:
    assert operation(call("execute_sql", {"query": statement})) == expected


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("sql", "SELECT * FROM t", "sql select"),
        ("sql_db_query", {"query": "SHOW TABLES"}, "sql show tables"),
        ("run_sql", {"sql": "select a from t"}, "sql select"),
        ("query", {"query": "red shoes"}, "query"),
        # any tool holding a plain SQL statement, but not prose that starts like one
        ("ask_db", {"query": "SELECT name FROM users WHERE id = 1"}, "sql select"),
        ("search_flights", {"query": "select the cheapest flight from NYC"}, "search_flights"),
        ("search_flights", {"query": "Select the flights from NYC"}, "search_flights"),
    ],
)
def test_sql_tools(name: str, arguments: dict[str, Any] | str, expected: str) -> None:
    assert operation(call(name, arguments)) == expected


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("python", {"code": "import os\nfrom x import y"}, "python import"),
        ("execute_ipython_cell", {"code": "def f(x):\n    return x\nf(1)"}, "python def"),
        ("code_interpreter", {"code": "df = load()\ndf.head()", "container_id": "c"},
         "python exec"),
        ("ipython", "print(1)", "python exec"),
        ("jupyter", {"code": "!pip install pandas"}, "pip install"),
        ("python", {"code": "%%bash\ncd x\ngit log"}, "git log"),
        ("run_code", {"code": "ls", "language": "bash"}, "ls"),
        ("run_code", {"code": "console.log(1)", "language": "javascript"}, "run_code"),
        ("exec", {"code": "x = 1"}, "python exec"),
        ("exec", {"command": "git status"}, "git status"),
        ("python", {"code": "# only a comment\n"}, "python"),
        ("python", {}, "python"),
    ],
)  # fmt: skip
def test_python_tools(name: str, arguments: dict[str, Any] | str, expected: str) -> None:
    assert operation(call(name, arguments)) == expected


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("get_order_details", {"order_id": "#W123"}, "get_order_details"),
        ("cancel_pending_order", '{"order_id": "#W1"', "cancel_pending_order"),
        ("GET fhir/Patient", {"url": "x"}, "GET fhir/Patient"),
        ("think", {"thought": "run ls"}, "think"),
        # a tool of any name whose arguments plainly hold a shell command
        ("run_tool", {"command": "git diff HEAD"}, "git diff"),
        ("device_control", {"command": "restart"}, "device_control"),
        ("slash", {"command": "/review"}, "slash"),
        ("weird`name\n", {}, "weird'name"),
    ],
)
def test_other_tools_keep_their_names(
    name: str, arguments: dict[str, Any] | str, expected: str
) -> None:
    assert operation(call(name, arguments)) == expected


@pytest.mark.parametrize(
    ("name", "generic"),
    [
        ("bash", True), ("Bash", True), ("functions.bash", True), ("local_shell", True),
        ("str_replace_editor", True), ("Edit", True), ("Write", True), ("apply_patch", True),
        ("execute_sql", True), ("code_interpreter", True), ("mcp__fs__read_file", True),
        ("Glob", False), ("TodoWrite", False), ("mcp__github__create_issue", False),
        ("get_order_details", False), ("Skill", False),
    ],
)  # fmt: skip
def test_is_generic(name: str, generic: bool) -> None:
    assert is_generic(name) is generic


def run(*steps: Message | ToolCall) -> Trajectory:
    return Trajectory(id="r1", task="fix the bug", steps=list(steps))


def test_with_operations_renames_calls_and_keeps_the_rest() -> None:
    ask = Message(role="user", text="fix the failing test")
    diff = call("bash", {"command": "cd /r && git diff"}, id="c1", result="diff --git a/x")
    tests = call("bash", {"command": "pytest -x"}, error_text="1 failed", result="FAILED")
    fix = call("Edit", {"file_path": "src/a.py", "old_string": "a", "new_string": "b"})
    before = run(ask, diff, tests, fix)
    assert [c.name for c in before.tool_calls] == ["bash", "bash", "Edit"]
    after = with_operations(before)
    assert [c.name for c in after.tool_calls] == ["git diff", "pytest", "edit source file"]
    assert after.steps[0] is ask
    renamed = after.steps[2]
    assert isinstance(renamed, ToolCall)
    assert (renamed.arguments, renamed.result, renamed.error, renamed.error_text) == (
        tests.arguments, "FAILED", True, "1 failed",
    )  # fmt: skip
    assert after.steps[1].id == "c1"  # type: ignore[union-attr]
    assert [c.name for c in before.tool_calls] == ["bash", "bash", "Edit"]  # unchanged


def test_with_operations_returns_the_same_run_when_nothing_changes() -> None:
    domain = run(Message(role="user", text="cancel"), call("cancel_order", {"order_id": "1"}))
    assert with_operations(domain) is domain
    empty = run()
    assert with_operations(empty) is empty
    resolved = with_operations(run(call("bash", {"command": "ls"})))
    assert with_operations(resolved) is resolved  # an operation resolves to itself


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab -|&;<>()$'\"`\\\n#{}=*.:/2EOF")), max_size=80))
def test_shell_parsing_never_raises(command: str) -> None:
    assert valid(bash(command))
    assert valid(operation(call("shell", {"command": command.split(" ")})))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_text_gives_a_valid_operation(text: str) -> None:
    tools = ["bash", "execute_sql", "python", "apply_patch", "str_replace_editor", "x"]
    keys = ["command", "query", "code", "input", "path", "command"]
    for name, key in zip(tools, keys, strict=True):
        assert valid(operation(call(name, {key: text})))


def test_long_scripts_resolve_without_the_cache() -> None:
    body = "\n".join(f"line {i} = {i}" for i in range(2000))
    assert bash(f"cat > src/big.py <<'EOF'\n{body}\nEOF\npytest") == "write file"
    assert bash("echo x\n" * 2000 + "make test") == "make test"


def intercode_actions(kind: str) -> list[str]:
    """Every action gpt-4 wrote in InterCode's `kind` runs (bash or sql)."""
    actions: list[str] = []
    for path in sorted((INTERCODE / kind / "gpt-4").glob("*.json")):
        records = json.loads(path.read_text())
        for record in records.values() if isinstance(records, dict) else records:
            actions.extend(record["turn_history"]["actions"])
    return actions


def has_a_value(op: str) -> bool:
    """Whether an operation carries an argument value: a path, or a digit after the program."""
    words = op.split(" ")
    return "/" in op or any(re.search(r"\d", w) for w in words[1:]) or words[0].isdigit()


@pytest.mark.skipif(not INTERCODE.is_dir(), reason="the shared corpora are not here")
def test_intercode_bash_commands_share_a_small_vocabulary() -> None:
    commands = intercode_actions("bash")
    ops = Counter(bash(c) for c in commands)
    assert len(set(commands)) > 500
    assert len(ops) * 8 < len(set(commands))
    assert [op for op in ops if has_a_value(op) or not valid(op)] == []
    assert ops.most_common(1)[0][0] == "find -exec"
    assert ops["bash"] <= 3  # only prose the agent sent as a command


@pytest.mark.skipif(not INTERCODE.is_dir(), reason="the shared corpora are not here")
def test_intercode_sql_statements_share_a_small_vocabulary() -> None:
    statements = intercode_actions("sql")
    ops = Counter(operation(call("execute_sql", {"query": s})) for s in statements)
    assert len(ops) <= 15 < len(set(statements)) // 100
    assert all(op.startswith("sql ") or op == "execute_sql" for op in ops)
    assert ops["execute_sql"] < len(statements) / 100  # the "Output: ..." prose
