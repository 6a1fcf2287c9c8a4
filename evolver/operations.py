"""Operations: what a tool call does, in a small vocabulary shared across tasks and agents.

An agent whose tools are generic (a shell, a file editor, an SQL or a Python tool) names every
step after the tool: `bash`, `bash`, `bash`. Clusters, tool graphs, procedures and pitfalls are
built over tool names, so for such tools the evolver needs the operation instead: `git diff`,
`pytest`, `edit test file`, `sql select join`. `operation()` resolves one call from its name and
arguments, `with_operations()` renames every call of a run, `is_generic()` tells which names are
resolved by their arguments. Operations never carry argument values (paths, numbers, file names),
so the same operation recurs across tasks.

Pure: no I/O, standard library only. Parsing is best effort and never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from evolver.model import ToolCall, Trajectory

# ---------------------------------------------------------------------------------------------
# Tool names
# ---------------------------------------------------------------------------------------------

_SHELL_TOOLS = frozenset(
    {
        "bash", "shell", "sh", "zsh", "terminal", "run_command", "execute_bash", "execute_command",
        "run_shell_command", "exec_command", "local_shell", "container.exec", "run_terminal_cmd",
        "shell_command", "run_bash", "bash_tool", "execute_shell", "run_in_terminal",
        "shell_exec", "terminal_exec", "run_shell", "cmd_run", "bash_code_execution",
        "bash_command",
    }
)  # fmt: skip
_PYTHON_TOOLS = frozenset(
    {
        "python", "ipython", "execute_python", "run_python", "code_interpreter", "jupyter",
        "execute_ipython_cell", "python_repl", "python_interpreter", "run_python_code",
        "execute_python_code", "run_code", "execute_code", "code_execution",
    }
)  # fmt: skip
_SQL_TOOLS = frozenset(
    {
        "sql", "query", "execute_sql", "run_sql", "execute_query", "db_query", "run_query",
        "sql_query", "query_sql", "sql_db_query", "read_query", "write_query", "query_database",
        "database_query", "execute_sql_query", "run_sql_query", "sql_execute",
    }
)  # fmt: skip
# Editors that say what they do in a "command" argument (view, create, str_replace, ...).
_EDITOR_TOOLS = frozenset(
    {
        "str_replace_editor",
        "str_replace_based_edit_tool",
        "text_editor",
        "text_editor_code_execution",
    }
)
_PATCH_TOOLS = frozenset({"apply_patch", "applypatch", "apply_diff_patch"})
# File tools whose name says the action; the path in the arguments says which kind of file.
_FILE_TOOLS: dict[str, str] = {
    **dict.fromkeys(
        ("read_file", "open_file", "view_file", "read_text_file", "read_many_files", "cat_file",
         "notebookread", "notebook_read", "read_notebook"),
        "read",
    ),
    **dict.fromkeys(
        ("edit_file", "replace_in_file", "search_replace", "apply_diff", "str_replace",
         "insert_content", "multi_edit", "multiedit", "notebookedit", "notebook_edit",
         "edit_notebook", "patch_file", "replace_file_content", "edit_block"),
        "edit",
    ),
    **dict.fromkeys(("write_file", "create_file", "write_to_file", "new_file"), "create"),
    **dict.fromkeys(("delete_file", "remove_file"), "delete"),
}  # fmt: skip
# Short names that are editors only when the arguments carry a path (else a domain tool).
_MAYBE_FILE_TOOLS = {"read": "read", "view": "read", "edit": "edit", "replace": "edit",
                     "write": "create", "create": "create", "delete": "delete"}  # fmt: skip
# Tools whose name alone says the operation.
_RENAMES: dict[str, str] = {
    **dict.fromkeys(("glob", "file_glob", "find_files", "find_file", "find_by_name"), "find files"),
    **dict.fromkeys(("grep", "grep_search", "search_file_content", "ripgrep", "search_dir",
                     "search_file"), "grep"),
    **dict.fromkeys(("ls", "list_directory", "list_dir", "list_files"), "ls"),
    **dict.fromkeys(("webfetch", "web_fetch", "fetch_url", "fetch", "read_url"), "web fetch"),
    **dict.fromkeys(("websearch", "web_search", "google_web_search", "search_web"), "web search"),
    **dict.fromkeys(("todowrite", "todo_write", "update_plan", "write_todos"), "plan"),
    "dispatch_agent": "subagent",
}  # fmt: skip
# Claude Code's own tool names, matched with their exact spelling ("task" may be a domain tool).
_CLAUDE_CODE: dict[str, tuple[str, str]] = {
    "Bash": ("shell", ""), "Read": ("read", ""), "NotebookRead": ("read", ""),
    "Edit": ("edit", ""), "MultiEdit": ("edit", ""), "NotebookEdit": ("edit", ""),
    "Write": ("write", ""), "Glob": ("rename", "find files"), "Grep": ("rename", "grep"),
    "LS": ("rename", "ls"), "WebFetch": ("rename", "web fetch"),
    "WebSearch": ("rename", "web search"), "TodoWrite": ("rename", "plan"),
    "Task": ("rename", "subagent"), "Agent": ("rename", "subagent"),
}  # fmt: skip
# Names whose "command" argument is not a shell command.
_NEVER_SNIFF = frozenset({"Skill", "SlashCommand", "skill", "slash_command", "activate_skill"})
_SNIFF_KEYS = frozenset({"command", "cmd", "script", "commands", "query", "sql"})
_PATH_KEYS = ("file_path", "path", "target_file", "absolute_path", "notebook_path", "filepath",
              "filename", "file", "relative_workspace_path", "target_path")  # fmt: skip
_NAMESPACE = re.compile(r"__|[.:/]")
_ARG_KINDS = frozenset({"shell", "python", "sql", "editor", "file", "patch", "exec", "write"})


@dataclass(frozen=True, slots=True)
class _Route:
    kind: str  # shell, python, sql, editor, file, write, patch, exec, rename, domain
    fallback: str  # the operation when the arguments say nothing usable
    extra: str = ""  # rename: the operation; file: read/edit/create/delete
    needs_path: bool = False  # a short name that is a file tool only when given a path


def _clean(name: str) -> str:
    """A name safe as an operation: no backtick or newline, 1..200 characters."""
    if "`" in name or "\n" in name or "\r" in name:
        name = " ".join(name.replace("`", "'").split())
    return name[:200] or "tool"


def _tail_route(tail: str, fallback: str) -> _Route | None:
    """The route of a lowercased tool name without namespace, or None for a domain tool."""
    if tail in _SHELL_TOOLS:
        return _Route("shell", fallback)
    if tail in _PYTHON_TOOLS:
        return _Route("python", fallback)
    if tail in _SQL_TOOLS:
        return _Route("sql", fallback)
    if tail in _EDITOR_TOOLS:
        return _Route("editor", fallback)
    if tail in _PATCH_TOOLS:
        return _Route("patch", fallback)
    if tail in _FILE_TOOLS:
        return _Route("file", fallback, _FILE_TOOLS[tail])
    if tail in _RENAMES:
        return _Route("rename", fallback, _RENAMES[tail])
    if tail == "exec":
        return _Route("exec", fallback)
    return None


@lru_cache(maxsize=8192)
def _route(name: str) -> _Route:
    """How a tool name is resolved (cached: a corpus has few distinct tool names)."""
    if name in _CLAUDE_CODE:
        kind, op = _CLAUDE_CODE[name]
        if kind == "rename":
            return _Route("rename", op, op)
        if kind in ("read", "edit"):
            return _Route("file", name.lower(), kind)
        return _Route(kind, name.lower())
    if name in _NEVER_SNIFF:
        return _Route("rename", _clean(name), _clean(name))
    lower = name.strip().lower()
    if lower.startswith("mcp__"):
        server, sep, tool = name.strip()[5:].partition("__")
        if sep and server and tool:
            fallback = _clean(f"{server}.{tool}")
            tail = _NAMESPACE.split(tool.lower())[-1]
            return _tail_route(tail, fallback) or _Route("domain", fallback)
    fallback = _clean(lower)
    route = _tail_route(lower, fallback) or _tail_route(_NAMESPACE.split(lower)[-1], fallback)
    if route:
        return route
    tail = _NAMESPACE.split(lower)[-1]
    if tail in _MAYBE_FILE_TOOLS:
        return _Route("file", _clean(name), _MAYBE_FILE_TOOLS[tail], needs_path=True)
    return _Route("domain", _clean(name))


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------

_TEST_DIRS = frozenset({"tests", "test", "spec", "__tests__"})
_TEST_FILE = re.compile(
    r"test_.*\.py|.*_test\.(?:py|go|rb|rs)|conftest\.py|tests?\.py|.*_spec\.rb"
    r"|.*\.(?:test|spec)\.[cm]?[jt]sx?|.*Tests?\.(?:java|kt|cs|php|swift)"
)
_DOC_NAME = re.compile(r"(?:README|CHANGELOG|CHANGES|HISTORY|CONTRIBUTING|NEWS)\b.*", re.I)
_DOC_EXT = (".md", ".rst", ".adoc", ".markdown")


@lru_cache(maxsize=16384)
def _file_kind(path: str) -> str:
    """'test', 'doc' or 'source': which kind of file a path names."""
    parts = path.replace("\\", "/").strip().strip("/").split("/")
    base = parts[-1]
    if _TEST_FILE.fullmatch(base) or any(p in _TEST_DIRS for p in parts[:-1]):
        return "test"
    if (
        _DOC_NAME.fullmatch(base)
        or base.lower().endswith(_DOC_EXT)
        or any(p in ("docs", "doc") for p in parts[:-1])
    ):
        return "doc"
    return "source"


def _file_op(action: str, path: Any) -> str:
    """`read file`, `edit test file`, `create source file`, `delete file`, `write file`..."""
    if action == "delete":
        return "delete file"
    if not isinstance(path, str) or not path.strip():
        return "read file" if action == "read" else f"{action} file"
    kind = _file_kind(path)
    if action in ("read", "write"):
        return f"{action} test file" if kind == "test" else f"{action} file"
    return f"{action} {kind} file"


def _path_of(args: dict[str, Any]) -> str | None:
    """The file path a file tool's arguments name, if any."""
    for key in _PATH_KEYS:
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


# ---------------------------------------------------------------------------------------------
# Shell: a small lexer (quotes, $(...), heredocs, redirections, operators), then a classifier
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cmd:
    """One simple command: its words, the files its output goes to, its heredoc text."""

    words: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    stdin: bool = False  # fed by a heredoc or here-string
    body: str = ""


_OPERATORS = ("&&", "||", ";;", "|&", "&>>", "&>", ">>", ">|", ">&", "<<<", "<<-", "<<", "<&",
              "<>", ";", "&", "|", "(", ")", ">", "<")  # fmt: skip
_SEPARATORS = frozenset({"&&", "||", ";;", "|&", ";", "&", "|", "(", ")"})
_OUTPUTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&"})
_NOT_FILES = frozenset({"/dev/null", "/dev/stderr", "/dev/stdout", "/dev/tty", "-"})


def _closing(s: str, i: int, open_c: str, close_c: str) -> int:
    """The index just past the bracket that closes the one at s[i] (len(s) if never closed)."""
    depth, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c in "'\"":
            end = s.find(c, i + 1)
            i = n if end < 0 else end + 1
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


class _Lexer:
    """Splits a script into simple commands. Unbalanced quotes run to the end; never raises."""

    def __init__(self, script: str) -> None:
        self.s = script
        self.cmds: list[_Cmd] = []
        self.cmd = _Cmd()
        self.word: list[str] = []
        self.in_word = False
        self.redirect: str | None = None
        self.heredocs: list[tuple[str, _Cmd]] = []

    def end_word(self) -> None:
        """Ends the current word: a command word, or the target of a pending redirection."""
        if not self.in_word:
            return
        text = "".join(self.word)
        self.word.clear()
        self.in_word = False
        redirect, self.redirect = self.redirect, None
        if redirect is None:
            self.cmd.words.append(text)
        elif redirect in ("<<", "<<-"):
            self.heredocs.append((text.strip(), self.cmd))
            self.cmd.stdin = True
        elif redirect == "<<<":
            self.cmd.stdin = True
        elif redirect in _OUTPUTS and not (redirect == ">&" and (text.isdigit() or text == "-")):
            self.cmd.writes.append(text)

    def end_command(self) -> None:
        """Ends the current simple command (at ;, &&, ||, |, a newline or a parenthesis)."""
        self.end_word()
        self.redirect = None
        if self.cmd.words or self.cmd.writes or self.cmd.stdin:
            self.cmds.append(self.cmd)
        self.cmd = _Cmd()

    def heredoc_bodies(self, i: int) -> int:
        """Reads the pending heredocs' lines from s[i]; returns where the script resumes."""
        s = self.s
        for delimiter, cmd in self.heredocs:
            lines = []
            while i < len(s):
                end = s.find("\n", i)
                end = len(s) if end < 0 else end
                line = s[i:end]
                i = end + 1
                if line.strip() == delimiter:
                    break
                lines.append(line)
            cmd.body = (cmd.body + "\n" + "\n".join(lines)) if cmd.body else "\n".join(lines)
        self.heredocs.clear()
        return i

    def double_quoted(self, i: int) -> int:
        """Reads a "..." string opening at s[i] into the word; returns the index after it."""
        s, n = self.s, len(self.s)
        i += 1
        while i < n:
            c = s[i]
            if c == '"':
                return i + 1
            if c == "\\" and i + 1 < n:
                if s[i + 1] != "\n":
                    self.word.append(s[i + 1] if s[i + 1] in '"\\$`' else s[i : i + 2])
                i += 2
            elif c == "$" and i + 1 < n and s[i + 1] == "(":
                end = _closing(s, i + 1, "(", ")")
                self.word.append(s[i:end])
                i = end
            elif c == "`":
                end = s.find("`", i + 1)
                end = n if end < 0 else end + 1
                self.word.append(s[i:end])
                i = end
            else:
                self.word.append(c)
                i += 1
        return n

    def run(self) -> list[_Cmd]:
        """The script's simple commands in order."""
        s, n, i = self.s, len(self.s), 0
        while i < n:
            c = s[i]
            nxt = s[i + 1] if i + 1 < n else ""
            if c in " \t\r":
                self.end_word()
                i += 1
            elif c == "\n":
                self.end_command()
                i = self.heredoc_bodies(i + 1) if self.heredocs else i + 1
            elif c == "#" and not self.in_word:
                end = s.find("\n", i)
                i = n if end < 0 else end
            elif c == "\\":
                if nxt and nxt != "\n":
                    self.word.append(nxt)
                    self.in_word = True
                i += 2
            elif c == "'":
                end = s.find("'", i + 1)
                end = n if end < 0 else end
                self.word.append(s[i + 1 : end])
                self.in_word = True
                i = end + 1
            elif c == '"':
                self.in_word = True
                i = self.double_quoted(i)
            elif c == "$" and nxt in "({":
                end = _closing(s, i + 1, nxt, ")" if nxt == "(" else "}")
                self.word.append(s[i:end])
                self.in_word = True
                i = end
            elif c == "$" and nxt == "'":
                end = i + 2
                while end < n and s[end] != "'":
                    end += 2 if s[end] == "\\" else 1
                self.word.append(s[i + 2 : end])
                self.in_word = True
                i = end + 1
            elif c == "`":
                end = s.find("`", i + 1)
                end = n if end < 0 else end + 1
                self.word.append(s[i:end])
                self.in_word = True
                i = end
            elif c in "<>" and nxt == "(" and not self.in_word:  # process substitution
                end = _closing(s, i + 1, "(", ")")
                self.word.append(s[i:end])
                self.in_word = True
                i = end
            elif c == "(" and self.in_word and self.word and self.word[-1].endswith("="):
                end = _closing(s, i, "(", ")")  # an array assignment: a=(x y)
                self.word.append(s[i:end])
                i = end
            elif c in ";&|()<>":
                if c in "<>" and self.in_word and "".join(self.word).isdigit():
                    self.word.clear()  # a file descriptor: the 2 of 2>&1
                    self.in_word = False
                self.end_word()
                op = next(o for o in _OPERATORS if s.startswith(o, i))
                i += len(op)
                if op in _SEPARATORS:
                    self.end_command()
                else:
                    self.redirect = op
            else:
                self.word.append(c)
                self.in_word = True
                i += 1
        self.end_command()
        return self.cmds


# How strongly a command claims to be the call's operation: prose, noise (cd, echo), the real one.
_INVALID, _WEAK, _STRONG = 1, 2, 3

_OPENERS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})
_CLOSERS = frozenset({"fi", "done", "esac", "}", "]]"})
_HEADERS = frozenset({"for", "case", "select", "function"})
_NOISE: dict[str, str] = {
    **{p: p for p in ("cd", "pushd", "popd", "export", "source", "set", "unset", "shopt", "trap",
                      "ulimit", "umask", "alias", "unalias", "hash", "local", "declare",
                      "typeset", "readonly", "true", "false", "sleep", "exit", "return", "clear",
                      "wait", "shift", "echo", "printf", "test", "let", "history",
                      "mkdir")},
    ".": "source", ":": "true", "[": "test", "[[": "test",
}  # fmt: skip
# Wrappers run the command that follows them: options taking a value, positionals to skip.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-p", "-C", "-D", "-h", "-r", "-t", "-U", "-T", "--user",
                        "--group", "--prompt", "--chdir"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p"}), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "exec": (frozenset({"-a"}), 0),
    "xvfb-run": (frozenset({"-n", "-s", "-f", "-e", "-p", "-w", "--server-args"}), 0),
    "npx": (frozenset({"-p", "--package"}), 0),
    "bunx": (frozenset({"-p", "--package"}), 0),
    "pnpx": (frozenset(), 0),
    "uvx": (frozenset({"--from", "--with", "-p", "--python"}), 0),
    **dict.fromkeys(("nohup", "builtin", "unbuffer", "chronic", "caffeinate"), (frozenset(), 0)),
}  # fmt: skip
# `<program> <sub>` pairs that run the command after them, with options taking a value.
_RUNNERS: dict[tuple[str, str], frozenset[str]] = {
    ("uv", "run"): frozenset({"--with", "--python", "-p", "--project", "--directory", "--package",
                              "--extra", "--group", "--env-file", "--index", "--from"}),
    ("conda", "run"): frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    ("mamba", "run"): frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    ("micromamba", "run"): frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    **dict.fromkeys(
        (("poetry", "run"), ("pipenv", "run"), ("pdm", "run"), ("hatch", "run"), ("rye", "run"),
         ("bundle", "exec"), ("npm", "exec"), ("pnpm", "exec"), ("pnpm", "dlx"), ("yarn", "dlx"),
         ("yarn", "exec"), ("uv", "tool")),
        frozenset(),
    ),
}  # fmt: skip
# Programs with subcommands: the options before the subcommand that take a value.
_SUBCOMMANDS: dict[str, frozenset[str]] = {
    "git": frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace"}),
    "pip": frozenset({"--log", "--proxy", "--retries", "--timeout", "--cache-dir", "--python"}),
    "uv": frozenset({"--directory", "--project", "--cache-dir", "--color", "--config-file"}),
    "npm": frozenset({"--prefix", "-C", "-w", "--workspace"}),
    "yarn": frozenset({"--cwd"}),
    "pnpm": frozenset({"-C", "--dir", "--filter", "-F"}),
    "bun": frozenset({"--cwd"}),
    "docker": frozenset({"-H", "--host", "-c", "--context", "--config", "-l", "--log-level"}),
    "kubectl": frozenset({"-n", "--namespace", "--context", "--cluster", "--kubeconfig", "-s",
                          "--server", "--user"}),
    "helm": frozenset({"-n", "--namespace", "--kube-context", "--kubeconfig"}),
    "cargo": frozenset({"-C", "-Z", "--config"}),
    "go": frozenset({"-C"}),
    "apt": frozenset({"-o", "-c", "-t"}),
    "apt-get": frozenset({"-o", "-c", "-t"}),
    "gh": frozenset({"-R", "--repo"}),
    "poetry": frozenset({"-C", "--directory", "-P", "--project"}),
    "mvn": frozenset({"-f", "--file", "-pl", "--projects", "-P", "--activate-profiles", "-s",
                      "--settings", "-rf", "-T", "--threads", "-gs", "-t", "-b", "-l"}),
    "gradle": frozenset({"-p", "--project-dir", "-b", "--build-file", "-c", "-g", "-I",
                         "--init-script", "-x", "--exclude-task"}),
    "systemctl": frozenset({"-H", "--host", "-M", "--machine", "-p", "--property", "-t",
                            "--type", "-n", "--lines", "-o", "--output", "--state"}),
    "aws": frozenset({"--profile", "--region", "--output", "--endpoint-url", "--query",
                      "--ca-bundle", "--color", "--cli-read-timeout", "--cli-connect-timeout"}),
    "gcloud": frozenset({"--project", "--account", "--configuration"}),
    "hg": frozenset({"-R", "--repository", "--cwd"}),
    "composer": frozenset({"-d", "--working-dir"}),
    "django-admin": frozenset({"--settings", "--pythonpath"}),
    "flask": frozenset({"--app", "-A", "-e", "--env-file"}),
    "alembic": frozenset({"-c", "--config", "-n", "--name", "-x"}),
    **dict.fromkeys(
        ("conda", "mamba", "micromamba", "yum", "dnf", "brew", "dotnet", "terraform", "svn", "az",
         "rustup", "pre-commit", "coverage", "gem", "bundle", "swift", "pyenv", "nvm", "jupyter",
         "pipx", "pipenv", "pdm", "hatch", "rye", "snap", "deno", "rails", "mix", "tmux",
         "openssl", "ip", "zypper", "apk", "pacman", "port", "sfdx",
         "firebase", "heroku", "vercel", "wrangler", "ansible-galaxy", "bazel", "buck", "pants"),
        frozenset(),
    ),
}  # fmt: skip
# `<program> <sub> <sub>`: the options between the two subcommands that take a value.
_TWO_LEVEL: dict[tuple[str, str], frozenset[str]] = {
    **{("git", s): frozenset() for s in ("stash", "remote", "submodule", "worktree", "bisect")},
    **{("docker", s): frozenset() for s in ("container", "image", "network", "volume", "system",
                                           "buildx")},
    ("docker", "compose"): frozenset({"-f", "--file", "-p", "--project-name", "--env-file",
                                      "--profile", "--project-directory", "--ansi"}),
    **dict.fromkeys((("go", "mod"), ("go", "work"), ("conda", "env"), ("mamba", "env"),
                     ("kubectl", "config"), ("kubectl", "rollout"), ("poetry", "env")),
                    frozenset()),
}  # fmt: skip
_ALWAYS_TWO_LEVEL = frozenset({"gh"})
_SUB_ALIASES = {
    "npm": {"i": "install", "t": "test", "tst": "test", "run-script": "run", "add": "install"},
    "pnpm": {"i": "install", "t": "test"},
}  # fmt: skip
_SUBWORD = re.compile(r"[a-z][a-z_-]{0,31}")
_AWS_SERVICE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_MAKE_TARGET = re.compile(r"[A-Za-z][A-Za-z_-]{0,31}")
# Test runners: the program (or `python -m` module) and its operation.
_TEST_RUNNERS = {"pytest": "pytest", "py.test": "pytest", "unittest": "unittest",
                 "nosetests": "nose", "nose": "nose", "nose2": "nose", "tox": "tox",
                 "nox": "nox", "doctest": "doctest"}  # fmt: skip
# `python -m X` for these is the X program.
_MODULE_PROGRAMS = frozenset(
    {"pip", "mypy", "black", "ruff", "flake8", "pylint", "isort", "coverage", "pyright", "twine",
     "pre_commit", "poetry", "uv"}
)  # fmt: skip
_INTERPRETERS = {"node": "-e", "ruby": "-e", "perl": "-e", "php": "-r"}
_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "fish"})
_SCRIPT_EXTENSIONS = {".py": "python", ".sh": "shell", ".bash": "shell", ".js": "node",
                      ".mjs": "node", ".rb": "ruby", ".pl": "perl", ".php": "php"}  # fmt: skip
# SWE-agent's own commands, as the first word of an action.
_SWE_AGENT = {"open": "read", "create": "create", "find_file": "find files",
              "search_dir": "grep", "search_file": "grep", "edit": "edit file"}  # fmt: skip
_ALIASES = {"egrep": "grep", "fgrep": "grep", "gradlew": "gradle", "mvnw": "mvn",
            "nodejs": "node", "pypy": "python", "applypatch": "apply_patch"}  # fmt: skip
_KNOWN_WORDS = """
    ls cat head tail wc grep rg ag ack find fd sed awk gawk sort uniq cut tr xargs tee diff cmp
    comm patch cp mv rm mkdir rmdir touch ln chmod chown chgrp stat file du df tar gzip gunzip zip
    unzip bzip2 xz zcat curl wget ssh scp rsync ps kill pkill pgrep top htop free uname whoami id
    hostname date cal printenv which whereis type pwd tree less more nl od xxd hexdump strings
    md5sum sha1sum sha256sum sha512sum md5 base64 jq yq make cmake gcc g++ cc clang clang++ javac
    java node python pytest ruby perl php go cargo rustc dotnet mvn gradle git docker kubectl helm
    terraform aws gcloud az systemctl service journalctl apt apt-get yum dnf brew conda mamba uv
    poetry pipenv pdm black ruff flake8 mypy pylint isort pyright eslint prettier tsc jest mocha
    vitest phpunit rspec ctest sqlite3 psql mysql redis-cli mongo tmux split join paste column rev
    fold fmt expand seq yes basename dirname realpath readlink mktemp watch crontab bc expr shuf
    iconv locale lsof netstat ss ifconfig ping dig nslookup traceroute mount umount lsblk useradd
    usermod groupadd passwd su w who uptime dmesg lscpu nproc vmstat getent install dd truncate
    shred sync nc telnet openssl gpg ssh-keygen env sudo timeout nohup npm npx yarn pnpm bun deno
    pip tox nox coverage gh hg svn rustup pre-commit gem bundle composer swift pyenv jupyter
    ipython pipx bash sh zsh fish tput stty sum cksum lsattr chattr getfacl setfacl find_file
    search_dir search_file open create edit submit apply_patch sqlite mongosh vim vi nano emacs
    diff3 sdiff colordiff wdiff django-admin flask alembic uvicorn gunicorn celery docker-compose
    killall rename unlink groups last lastlog finger chsh chfn visudo locate updatedb man info
    apropos whatis export source cd echo printf test true false sleep set unset read py.test
    Rscript
"""
_KNOWN_PROGRAMS = frozenset(_KNOWN_WORDS.split())
_PROGRAM = re.compile(r"[A-Za-z_][\w.+-]{0,63}")
_VERSION_SUFFIX = re.compile(r"[-.]?\d+(?:\.\d+)*$")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*\+?=")


def _program(word: str) -> str:
    """The program a command word runs: basename, aliases and version suffixes resolved."""
    if "$" in word or "`" in word:
        lowered = word.lower()
        return "python" if "python" in lowered else ""
    base = word.rstrip("/").rsplit("/", 1)[-1]
    if base in _ALIASES:
        return _ALIASES[base]
    if base in _KNOWN_PROGRAMS:
        return base
    bare = _VERSION_SUFFIX.sub("", base)
    if bare in ("python", "pypy", "pip", "node", "ruby", "perl", "php", "gcc", "g++", "clang",
                "clang++", "java", "javac", "go", "pytest", "tox"):  # fmt: skip
        return {"pypy": "python"}.get(bare, bare)
    return base


def _options(
    args: Sequence[str], takes_value: frozenset[str] | set[str], skip: int = 0
) -> Sequence[str]:
    """The arguments left after leading options (and their values) and `skip` positionals."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return args[i + 1 :]
        if a.startswith("-") and len(a) > 1:
            i += 2 if a in takes_value else 1
        elif skip and not _ASSIGNMENT.match(a):
            skip -= 1
            i += 1
        else:
            return args[i:]
    return args[i:]


def _clusters(args: Sequence[str], takes_value: str, stop: str = "") -> set[str]:
    """The single-letter flags among args (`-rn` gives r and n); values of flags are skipped."""
    flags: set[str] = set()
    skip_next = False
    for a in args:
        if skip_next:
            skip_next = False
            continue
        if a == "--":
            break
        if not a.startswith("-") or a.startswith("--") or len(a) < 2:
            if a.startswith("--"):
                flags.add(a.split("=", 1)[0])
            continue
        for j, ch in enumerate(a[1:], 1):
            flags.add(ch)
            if ch in stop:
                break
            if ch in takes_value:
                skip_next = j == len(a) - 1
                break
    return flags


def _script_file(path: str, interpreter: str) -> str:
    """`python script`, `python test script`, `shell script`... for a script a command runs."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    test = _file_kind(path) == "test" or base.startswith(("runtests", "run_tests"))
    return f"{interpreter} test script" if test else f"{interpreter} script"


def _python(args: Sequence[str], cmd: _Cmd, depth: int) -> tuple[str, int]:
    """The operation of a `python ...` command."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-m" or (a.startswith("-m") and a[2:3].isalpha()):
            module = a[2:] or (args[i + 1] if i + 1 < len(args) else "")
            rest = args[i + 2 :] if a == "-m" else args[i + 1 :]
            return _module(module, rest, cmd, depth)
        if a in ("-W", "-X", "--check-hash-based-pycs"):
            i += 2
            continue
        if a == "-" or re.match(r"-[bBdEiIOPqsSuvx]*c", a):
            return "python -c", _STRONG
        if a.startswith("-"):
            i += 1
            continue
        if a.replace("\\", "/").rsplit("/", 1)[-1] == "manage.py" and "test" in args[i + 1 : i + 2]:
            return "django test", _STRONG
        return _script_file(a, "python"), _STRONG
    return ("python -c" if cmd.stdin else "python"), _STRONG


def _module(module: str, rest: Sequence[str], cmd: _Cmd, depth: int) -> tuple[str, int]:
    """The operation of `python -m <module> ...`."""
    if module in _TEST_RUNNERS:
        return _TEST_RUNNERS[module], _STRONG
    if module in _MODULE_PROGRAMS:
        return _words([module.replace("_", "-"), *rest], cmd, depth) or (module, _STRONG)
    if re.fullmatch(r"[A-Za-z_][A-Za-z_.]{0,63}", module):
        return f"python -m {module}", _STRONG
    return "python -m", _STRONG


def _subcommand(program: str, args: Sequence[str], cmd: _Cmd, depth: int) -> tuple[str, int]:
    """`git diff`, `pip install`, `docker compose up`, `make test`, `aws s3`..."""
    rest = [a for a in _options(args, _SUBCOMMANDS[program]) if not a.startswith("+")]
    if program in ("mvn", "gradle"):
        goals = [g.split(":")[-1 if program == "gradle" else 0] for g in rest if "=" not in g]
        goals = [g for g in goals if not g.startswith("-")]
        if len(goals) > 1 and goals[0] == "clean":
            goals = goals[1:]
        rest = goals
    if not rest:
        return program, _STRONG
    sub = _SUB_ALIASES.get(program, {}).get(rest[0], rest[0])
    valid = _AWS_SERVICE if program == "aws" else _SUBWORD
    if not valid.fullmatch(sub):
        return program, _STRONG
    if (program, sub) in _RUNNERS:
        inner = _options(rest[1:], _RUNNERS[program, sub])
        if program == "hatch" and inner and ":" in inner[0]:
            return f"{program} {sub}", _STRONG
        found = _words(list(inner), cmd, depth) if inner else None
        if found and found[1] >= _WEAK:
            return found
        return f"{program} {sub}", _STRONG
    if program == "uv" and sub == "pip":
        return _subcommand("pip", rest[1:], cmd, depth)
    if program == "coverage" and sub == "run":
        return _python(rest[1:], cmd, depth)
    if program in ("conda", "mamba") and sub in ("activate", "deactivate"):
        return f"{program} {sub}", _WEAK
    if program in ("npm", "pnpm", "yarn", "bun") and sub == "run" and len(rest) > 1:
        script = rest[1]
        if script == "test":
            return f"{program} test", _STRONG
        if _SUBWORD.fullmatch(script):
            return f"{program} run {script}", _STRONG
    if (program, sub) in _TWO_LEVEL or program in _ALWAYS_TWO_LEVEL:
        takes_value = _TWO_LEVEL.get((program, sub), frozenset())
        second = [a for a in _options(rest[1:], takes_value) if not a.startswith("-")]
        if second and _SUBWORD.fullmatch(second[0]):
            return f"{program} {sub} {second[0]}", _STRONG
    return f"{program} {sub}", _STRONG


def _make(args: Sequence[str]) -> str:
    """`make` and its first target, when the target is a plain word."""
    takes_value = {"-C", "-f", "-I", "-o", "-W", "--directory", "--file", "--makefile"}
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in takes_value:
            skip = True
        elif a.startswith("-") or "=" in a or a.isdigit():
            continue
        else:
            return f"make {a}" if _MAKE_TARGET.fullmatch(a) else "make"
    return "make"


def _write(target: str) -> str:
    """`write file` or `write test file`: output sent to a file by cat, echo, printf, tee."""
    return "write test file" if _file_kind(target) == "test" else "write file"


def _words(words: list[str], cmd: _Cmd, depth: int) -> tuple[str, int] | None:
    """The operation of one simple command and how strongly it claims the call (None: skip)."""
    while words and (words[0] in _OPENERS or words[0] in _CLOSERS):
        words = words[1:]
    if words and words[0] in _HEADERS:
        return None
    assignments = []
    while words and _ASSIGNMENT.match(words[0]):
        assignments.append(words[0])
        words = words[1:]
    if words and words[0] == "read":
        return None  # the `read` of `while read line; do ...`
    writes = [w for w in cmd.writes if w not in _NOT_FILES and not w.startswith("&")]
    if not words:
        if writes:
            return _write(writes[0]), _STRONG
        return _assigned(assignments, depth) if assignments else None
    program = _program(words[0])
    args = words[1:]
    if program in _WRAPPERS or (program == "command" and args and args[0] not in ("-v", "-V")):
        takes_value, skip = _WRAPPERS.get(program, (frozenset(), 0))
        inner = [a for a in _options(args, takes_value, skip) if a]
        while inner and _ASSIGNMENT.match(inner[0]):
            inner = inner[1:]
        if inner:
            return _words(inner, cmd, depth)
        return program, _WEAK
    if program == "command":
        return "which", _STRONG
    if program in _SHELLS or program == "eval":
        return _shell(program, args, cmd, depth)
    if program == "apply_patch":
        op = _patch(args[0] if args else cmd.body)
        return (op, _STRONG) if op else ("apply_patch", _STRONG)
    if program == "python":
        return _python(args, cmd, depth)
    if program in _TEST_RUNNERS:
        return _TEST_RUNNERS[program], _STRONG
    if program == "docker-compose":
        return _subcommand("docker", ["compose", *args], cmd, depth)
    if program == "make":
        return _make(args), _STRONG
    if program in _SUBCOMMANDS:
        return _subcommand(program, args, cmd, depth)
    if program in _INTERPRETERS:
        inline = _INTERPRETERS[program]
        for a in args:
            if a in (inline, "-e"):
                return f"{program} {inline}", _STRONG
            if not a.startswith("-"):
                return _script_file(a, program), _STRONG
        return program, _STRONG
    if program in ("cat", "echo", "printf") and writes:
        return _write(writes[0]), _STRONG
    if program == "tee":
        targets = [a for a in args if not a.startswith("-") and a not in _NOT_FILES]
        return (_write(targets[0]) if targets else "tee"), _STRONG
    if program == "sed":
        flags = _clusters(args, takes_value="efl", stop="i")
        return ("sed -i" if "i" in flags or "--in-place" in flags else "sed"), _STRONG
    if program == "grep":
        flags = _clusters(args, takes_value="efmABCdD")
        recursive = flags & {"r", "R", "--recursive", "--dereference-recursive"}
        return ("grep -r" if recursive else "grep"), _STRONG
    if program == "rm":
        flags = _clusters(args, takes_value="")
        return ("rm -r" if flags & {"r", "R", "--recursive"} else "rm"), _STRONG
    if program == "find":
        if "-delete" in args:
            return "find -delete", _STRONG
        if any(a in ("-exec", "-execdir", "-ok", "-okdir") for a in args):
            return "find -exec", _STRONG
        return "find", _STRONG
    if program in _NOISE:
        return _NOISE[program], _WEAK
    if program in _SWE_AGENT:
        action = _SWE_AGENT[program]
        if action in ("read", "create"):
            return _file_op(action, args[0] if args else None), _STRONG
        return action, _STRONG
    if program in _KNOWN_PROGRAMS:
        return program, _STRONG
    return _unknown(words[0], program)


def _assigned(assignments: list[str], depth: int) -> tuple[str, int]:
    """`x=$(cmd)` is what cmd does; any other assignment is noise."""
    for assignment in assignments:
        value = assignment.split("=", 1)[1]
        if value.startswith("$(") and value.endswith(")") and depth <= 4:
            found = _script(value[2:-1], depth + 1)
            if found and found[1] == _STRONG:
                return found
    return "set variable", _WEAK


def _unknown(word: str, program: str) -> tuple[str, int]:
    """An unknown program: a script run by path, a plain program name, or prose (invalid)."""
    extension = "." + program.rsplit(".", 1)[-1] if "." in program[1:] else ""
    if extension in _SCRIPT_EXTENSIONS:
        return _script_file(word, _SCRIPT_EXTENSIONS[extension]), _STRONG
    if not _PROGRAM.fullmatch(program) or program[0].isupper():
        return program, _INVALID  # prose such as "Great! The task is done."
    if "/" in word or extension:
        return _script_file(word, "run"), _STRONG
    return program, _STRONG


def _shell(program: str, args: Sequence[str], cmd: _Cmd, depth: int) -> tuple[str, int]:
    """`bash -c "..."` and `eval "..."` run their script; `bash x.sh` runs a script file."""
    if depth > 4:
        return program, _STRONG
    if program == "eval":
        found = _script(" ".join(args), depth + 1)
        return found or ("eval", _STRONG)
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "-O", "+o", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a.startswith(("-", "+")):
            if not a.startswith("--") and "c" in a[1:]:
                found = _script(args[i + 1], depth + 1) if i + 1 < len(args) else None
                return found or (program, _STRONG)
            i += 1
            continue
        return _script_file(a, "shell"), _STRONG
    if cmd.body:
        found = _script(cmd.body, depth + 1)
        if found:
            return found
    return program, _STRONG


def _script(script: str, depth: int = 0) -> tuple[str, int] | None:
    """The first significant command of a script; a weak one (cd, echo) if none is."""
    weak: tuple[str, int] | None = None
    for cmd in _Lexer(script).run():
        found = _words(cmd.words, cmd, depth)
        if found is None or found[1] == _INVALID:
            continue
        if found[1] == _STRONG:
            return found
        weak = weak or found
    return weak


_CACHED_LENGTH = 4096  # longer texts (file contents in heredocs, patches) are rarely repeated
_Key = TypeVar("_Key", str, tuple[str, ...])
_Result = TypeVar("_Result")


def _cached(function: Callable[[_Key], _Result]) -> Callable[[_Key], _Result]:
    """`function` with its results cached for short inputs: the commands that recur across runs."""
    cached = lru_cache(maxsize=32768)(function)

    def call(key: _Key) -> _Result:
        size = len(key) if isinstance(key, str) else sum(map(len, key))
        return cached(key) if size <= _CACHED_LENGTH else function(key)

    return call


# A command sent inside a Markdown fence, as models without tool calling often write it:
# "```bash\nls -la\n```", "```BASH find . -name x" or "```ls -R" on one line.
_FENCED = re.compile(
    r"\A\s*```(?:[ \t]*(?:(?:ba|z)?sh|shell|console|terminal)(?![\w-]))?[ \t]*\n?(.*?)(?:```|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_TICKED = re.compile(r"\A\s*`[^`\n]+`\s*\Z")
_BRACKETED = re.compile(r"\A\s*(?:execute|run|bash|shell)\[(.*)\]\s*\Z", re.DOTALL)  # ReAct


@_cached
def _script_op(script: str) -> tuple[str, int] | None:
    """`_script` for a command string (a fenced one read inside its fence); never raises."""
    fenced = _FENCED.match(script)
    if fenced:
        script = fenced.group(1)
    elif _TICKED.match(script):  # "`awk '{print $NF}' f`": the command meant, inside the ticks
        script = script.strip()[1:-1]
    elif bracketed := _BRACKETED.match(script):  # a ReAct agent's "execute[ls -la]"
        script = bracketed.group(1)
    try:
        return _script(script)
    except Exception:  # best effort on arbitrary agent text: an odd script must not stop a run
        return None


@_cached
def _argv_op(argv: tuple[str, ...]) -> tuple[str, int] | None:
    """The operation of an argv list such as Codex's ["bash", "-lc", "..."]; never raises."""
    if len(argv) <= 1:
        return _script_op(argv[0]) if argv else None
    try:
        found = _words(list(argv), _Cmd(), 0)
    except Exception:  # best effort, as for scripts
        return None
    return found if found and found[1] != _INVALID else None


# ---------------------------------------------------------------------------------------------
# Patches, SQL, Python code
# ---------------------------------------------------------------------------------------------

_PATCH_HEADER = re.compile(r"^\*\*\* (Update|Add|Delete) File:\s*(.+?)\s*$", re.M)
_DIFF_FILES = re.compile(r"^--- (?:a/)?(\S+).*\n\+\+\+ (?:b/)?(\S+)", re.M)
_PATCH_ACTIONS = {"Update": "edit", "Add": "create", "Delete": "delete", "update_file": "edit",
                  "create_file": "create", "delete_file": "delete"}  # fmt: skip


def _patch(text: Any) -> str | None:
    """The operation of a patch: its first file section (Codex format, or a unified diff)."""
    if not isinstance(text, str) or not text.strip():
        return None
    header = _PATCH_HEADER.search(text)
    if header:
        return _file_op(_PATCH_ACTIONS[header.group(1)], header.group(2))
    diff = _DIFF_FILES.search(text)
    if diff:
        old, new = diff.groups()
        if new == "/dev/null":
            return "delete file"
        return _file_op("create" if old == "/dev/null" else "edit", new)
    return None


def _patch_args(args: dict[str, Any] | str) -> str | None:
    """The operation of an apply_patch call: patch text, or a Responses `operation` object."""
    if isinstance(args, str):
        return _patch(args)
    kind = args.get("type")
    if isinstance(kind, str) and kind in _PATCH_ACTIONS:
        return _file_op(_PATCH_ACTIONS[kind], args.get("path"))
    for key in ("input", "patch", "patch_text", "diff", "content"):
        op = _patch(args.get(key))
        if op:
            return op
    command = args.get("command") or args.get("cmd")
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        found = _argv_op(tuple(command))
        return found[0] if found else None
    return None


_SQL_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_SQL_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/|^\s*#[^\n]*", re.S | re.M)
_SQL_KINDS = {
    "insert": "insert", "replace": "insert", "upsert": "insert", "update": "update",
    "delete": "delete", "truncate": "delete", "create": "create", "drop": "drop",
    "alter": "alter", "rename": "alter", "describe": "describe", "desc": "describe",
    "explain": "explain", "pragma": "pragma", "use": "use", "begin": "transaction",
    "commit": "transaction", "rollback": "transaction", "start": "transaction",
    "savepoint": "transaction", "release": "transaction", "end": "transaction", "set": "set",
    "grant": "grant", "revoke": "grant", "analyze": "maintenance", "vacuum": "maintenance",
    "optimize": "maintenance", "reindex": "maintenance", "call": "call", "exec": "call",
    "execute": "call", "copy": "copy", "merge": "merge", "attach": "attach", "detach": "attach",
}  # fmt: skip
_SHOW = {"tables": "tables", "databases": "databases", "schemas": "databases",
         "columns": "columns", "fields": "columns", "create": "create", "index": "index",
         "indexes": "index", "indices": "index", "keys": "index"}  # fmt: skip
_SQL_SHAPE = re.compile(
    r"""\(*\s*(?:select\s.+?\sfrom\s|select\s+(?:\*|count\s*\(|distinct\s|\d)
    |with\s+(?:recursive\s+)?\w+\s*(?:\([^)]*\)\s*)?as\s*\(|insert\s+(?:or\s+\w+\s+)?into\s
    |update\s+\S+\s+set\s|delete\s+from\s
    |create\s+(?:or\s+replace\s+)?(?:temp\w*\s+)?(?:unique\s+)?(?:table|view|index|database|schema|trigger)\s
    |drop\s+(?:table|view|index|database|schema)\s|alter\s+table\s
    |show\s+(?:full\s+)?(?:tables|databases|schemas|columns|create|index)|(?:describe|desc)\s+\S
    |pragma\s+\w|explain\s+(?:select|query)\s)""",
    re.I | re.S | re.X,
)
_SQL_SIGNS = re.compile(r"[*=,;()]|\b(?:where|limit|order\s+by|join|group\s+by|having)\b", re.I)


def _looks_sql(text: str) -> bool:
    """Whether a string is plainly an SQL statement (not prose such as "select one from...")."""
    head = text.lstrip(" \t\n(")
    if not _SQL_SHAPE.match(head):
        return False
    return head.split(None, 1)[0].isupper() or bool(_SQL_SIGNS.search(head))


@_cached
def _sql_op(text: str) -> str | None:
    """`sql <kind>`: select [join] [group by], show tables, describe, insert... (None: not SQL).

    A select says `join` when it joins tables and `group by` when it aggregates by groups; the
    other statements are named by their verb (truncate counts as delete, replace as insert,
    begin/commit/rollback as transaction). Table and column names never appear.
    """
    code = _SQL_COMMENTS.sub(" ", text[:20000])
    code = _SQL_STRINGS.sub("''", code).strip().lstrip("(").strip()
    words = re.findall(r"[A-Za-z_]+", code[:200].split(";", 1)[0])
    if not words:
        return None
    verb = words[0].lower()
    if verb in ("select", "with", "values", "table"):
        statement = code.split(";", 1)[0]
        if verb == "with":
            final = re.search(r"\)\s*(insert|update|delete)\b", statement, re.I)
            if final:
                return f"sql {final.group(1).lower()}"
        kind = "sql select"
        if re.search(r"\bjoin\b", statement, re.I):
            kind += " join"
        if re.search(r"\bgroup\s+by\b", statement, re.I):
            kind += " group by"
        return kind
    if verb == "show":
        rest = [w.lower() for w in words[1:3] if w.lower() not in ("full", "extended")]
        return f"sql show {_SHOW[rest[0]]}" if rest and rest[0] in _SHOW else "sql show"
    if verb in _SQL_KINDS:
        if verb in ("explain", "desc", "describe") and len(words) > 1:
            if words[1].lower() in ("select", "with", "update", "delete", "insert", "query"):
                return "sql explain"
            return "sql describe"
        return f"sql {_SQL_KINDS[verb]}"
    return None


def _sql_text(args: dict[str, Any] | str) -> str | None:
    """The statement an SQL tool was given."""
    if isinstance(args, str):
        return args
    for key in ("query", "sql", "statement", "sql_query", "q", "command", "input", "code"):
        value = args.get(key)
        if isinstance(value, str):
            return value
    return None


_MAGIC_SHELL = re.compile(r"%%(?:bash|sh|script\s+(?:bash|sh))\b")


@_cached
def _python_code_op(code: str) -> str | None:
    """`python import`, `python def` or `python exec`; `!cmd` and `%pip` lines are shell."""
    lines = [line for line in code.splitlines() if line.strip() and line.lstrip()[:1] != "#"]
    if not lines:
        return None
    first = lines[0].strip()
    if _MAGIC_SHELL.match(first):
        found = _script_op("\n".join(lines[1:]))
        return found[0] if found else "python exec"
    if first.startswith(("!", "%pip", "%conda", "%sh ", "%system ")):
        found = _script_op(first.lstrip("!%"))
        return found[0] if found else "python exec"
    if all(line.lstrip().startswith(("import ", "from ")) for line in lines):
        return "python import"
    if any(re.match(r"(?:async\s+def|def|class)\s", line) for line in lines):
        return "python def"
    return "python exec"


def _code_text(args: dict[str, Any] | str) -> str | None:
    """The code a Python tool was given."""
    if isinstance(args, str):
        return args
    for key in ("code", "source", "cell", "input", "script", "command", "python_code"):
        value = args.get(key)
        if isinstance(value, str):
            return value
    return None


# ---------------------------------------------------------------------------------------------
# Resolving one call
# ---------------------------------------------------------------------------------------------


def _as_dict(args: dict[str, Any] | str) -> dict[str, Any] | str:
    """Arguments that arrived as a JSON object in a string, as a dict; else unchanged."""
    if isinstance(args, str) and args.lstrip().startswith("{"):
        try:
            parsed = json.loads(args)
        except ValueError:
            return args
        if isinstance(parsed, dict):
            return parsed
    return args


# Where a shell tool's command is; "keystrokes" is what Terminus (Harbor) types into tmux.
_SHELL_KEYS = ("command", "cmd", "script", "commands", "argv", "code", "input", "action")
_SHELL_KEYS += ("keystrokes",)


def _shell_found(args: dict[str, Any] | str) -> tuple[str, int] | None:
    """The operation a shell tool's arguments hold: a command string, an argv, a command list."""
    if isinstance(args, str):
        return _script_op(args)
    for key in _SHELL_KEYS:
        value = args.get(key)
        if isinstance(value, str):
            return _script_op(value)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            if key == "commands":
                return _script_op("\n".join(value))
            return _argv_op(tuple(value))
        if key == "action" and isinstance(value, dict):
            return _shell_found(value)
    return None


def _sniffed(args: dict[str, Any], fallback: str) -> str:
    """A tool of any name whose arguments plainly hold a shell command or an SQL statement."""
    for key in ("command", "cmd", "script", "commands"):
        value = args.get(key)
        if isinstance(value, str | list):
            found = _shell_found({key: value})
            head = found[0].split(" ", 1)[0] if found else ""
            if found and found[1] == _STRONG and (head in _KNOWN_PROGRAMS or head in _OP_HEADS):
                return found[0]
    for key in ("query", "sql"):
        value = args.get(key)
        if isinstance(value, str) and _looks_sql(value):
            return _sql_op(value) or fallback
    return fallback


_OP_HEADS = frozenset({"python", "pytest", "unittest", "nose", "doctest", "write", "shell",
                       "django", "node"})  # fmt: skip


def _editor(args: dict[str, Any] | str, fallback: str) -> str:
    """str_replace_editor and kin: `command` says view, create, str_replace, insert, undo_edit."""
    if not isinstance(args, dict):
        return fallback
    command = args.get("command")
    path = _path_of(args)
    if command == "view":
        base = (path or "").rsplit("/", 1)[-1]
        directory = base in ("", ".", "..") or ("." not in base and base.islower())
        if path and directory and "view_range" not in args:
            return "ls"  # a directory: SWE-agent's first look at the repository
        return _file_op("read", path)
    if command in ("create", "write"):
        return _file_op("create", path)
    if command in ("str_replace", "insert", "undo_edit", "edit", "replace", "append"):
        return _file_op("edit", path)
    if command is None and ("old_str" in args or "new_str" in args):
        return _file_op("edit", path)
    if command is None and "file_text" in args:
        return _file_op("create", path)
    return fallback


def _file_tool(route: _Route, args: dict[str, Any] | str) -> str:
    """Read/Edit/Write-style tools: the action from the name, the kind of file from the path."""
    path = _path_of(args) if isinstance(args, dict) else None
    if route.needs_path and path is None:
        return route.fallback
    return _file_op(route.extra, path)


def _written(call: ToolCall, args: dict[str, Any] | str) -> str:
    """Claude Code's Write: creates a file, unless its result says it replaced one."""
    path = _path_of(args) if isinstance(args, dict) else None
    head = (call.result or "")[:300]
    action = "edit" if "has been updated" in head or "overwritten" in head else "create"
    return _file_op(action, path)


def _language_shell(args: dict[str, Any]) -> bool:
    """Whether a code tool was told its code is a shell script."""
    language = args.get("language") or args.get("lang")
    return isinstance(language, str) and language.lower() in ("bash", "sh", "shell", "zsh")


def _other_language(args: dict[str, Any]) -> bool:
    """Whether a code tool was told its code is neither Python nor shell (kept as the tool)."""
    language = args.get("language") or args.get("lang")
    return isinstance(language, str) and language.lower() not in ("python", "python3", "py", "")


def _resolve(route: _Route, call: ToolCall) -> str:
    """The operation of a call whose name needs its arguments."""
    args = _as_dict(call.arguments)
    kind = route.kind
    if kind == "exec" and isinstance(args, dict):
        kind = "python" if ("code" in args and not _language_shell(args)) else "shell"
    if kind == "python" and isinstance(args, dict) and _language_shell(args):
        kind = "shell"
    if kind == "shell":
        found = _shell_found(args)
        return found[0] if found else route.fallback
    if kind == "python":
        if isinstance(args, dict) and _other_language(args):
            return route.fallback
        code = _code_text(args)
        return (_python_code_op(code) if code else None) or route.fallback
    if kind == "sql":
        text = _sql_text(args)
        return (_sql_op(text) if text else None) or route.fallback
    if kind == "editor":
        return _editor(args, route.fallback)
    if kind == "file":
        return _file_tool(route, args)
    if kind == "write":
        return _written(call, args)
    if kind == "patch":
        return _patch_args(args) or route.fallback
    return route.fallback


def operation(call: ToolCall) -> str:
    """The operation a call performs (`git diff`, `pytest`, `edit test file`, `sql select`...).

    Shell, editor, patch, SQL and Python tools are resolved from their arguments; MCP tools
    `mcp__server__tool` become `server.tool`; any other tool keeps its name, unless its
    arguments plainly hold a shell command or an SQL statement.
    """
    route = _route(call.name)
    if route.kind == "domain":
        args = call.arguments
        if isinstance(args, dict) and args and not _SNIFF_KEYS.isdisjoint(args):
            return _sniffed(args, route.fallback)
        return route.fallback
    if route.kind == "rename":
        return route.extra
    return _resolve(route, call)


def is_generic(name: str) -> bool:
    """Whether a tool name is one that operation() resolves by its arguments (shell, editor...)."""
    return _route(name).kind in _ARG_KINDS


def with_operations(run: Trajectory) -> Trajectory:
    """The run with each tool call named by its operation; the same object if none changes."""
    steps: list[Any] | None = None
    for i, step in enumerate(run.steps):
        if isinstance(step, ToolCall):
            op = operation(step)
            if op != step.name:
                if steps is None:
                    steps = list(run.steps)
                steps[i] = step.model_copy(update={"name": op})
    return run if steps is None else run.model_copy(update={"steps": steps})
