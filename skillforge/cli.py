"""The command line: parse, load the configuration, dispatch, inside one error boundary."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import config as config_module
from .commands.eval import eval_library
from .commands.evolve import evolve
from .commands.history import history
from .commands.hook import hook, print_settings
from .commands.import_ import import_
from .commands.ingest import ingest
from .commands.label import label
from .commands.publish_plugin import publish_plugin
from .commands.rebuild import rebuild
from .commands.review import review_accept, review_list, review_reject, review_show
from .commands.rollback import rollback
from .commands.schema import schema
from .commands.serve import serve
from .commands.status import status
from .commands.sync import sync_skills
from .errors import SkillforgeError
from .importers.files import FORMATS
from .output import write_line
from .store import utcnow


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skillforge",
        description="A self-evolving skill library: agent trajectories in, reviewed skills out.",
    )
    parser.add_argument(
        "--config", type=Path, help="configuration file (default ./skillforge.toml)"
    )
    parser.add_argument("--home", type=Path, help="state folder (default ./var)")
    parser.add_argument("--inbox", type=Path, help="trajectory inbox (default ./trajectories)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_p = commands.add_parser("serve", help="watch the inbox and evolve on a schedule")
    serve_p.add_argument(
        "--every", type=float, dest="evolve_every_minutes", help="cycle interval in minutes"
    )
    serve_p.add_argument(
        "--evolve-after", type=int, help="new trajectories that start a cycle early"
    )
    serve_p.add_argument(
        "--polling", action="store_true", default=None, help="poll instead of inotify"
    )
    serve_p.add_argument(
        "--http", metavar="HOST:PORT", help="also take trajectories over HTTP, e.g. 127.0.0.1:8765"
    )

    ingest_p = commands.add_parser("ingest", help="take trajectory files or folders in once")
    ingest_p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    import_p = commands.add_parser(
        "import", help="convert transcripts and result files of other formats into the inbox"
    )
    import_p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    how = import_p.add_mutually_exclusive_group()
    how.add_argument("--format", choices=FORMATS, help="read every file as this format")
    how.add_argument("--mapping", type=Path, metavar="FILE", help="a format mapping (TOML/JSON)")

    hook_p = commands.add_parser(
        "hook", help="a Claude Code SessionEnd hook: import the session's transcript"
    )
    hook_p.add_argument(
        "--settings",
        action="store_true",
        help="print the entry to merge into ~/.claude/settings.json instead",
    )

    label_p = commands.add_parser(
        "label", help="set the outcome of stored runs whose outcome is unknown"
    )
    label_p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    verdict = label_p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--success", action="store_true", help="the runs succeeded")
    verdict.add_argument("--failure", action="store_true", help="the runs failed")
    label_p.add_argument("--reason", metavar="TEXT", help="why, kept as the outcome's reason")

    commands.add_parser("evolve", help="run one evolution cycle now")
    commands.add_parser(
        "rebuild", help="recompute the per-cluster state from the stored runs and their clusters"
    )
    eval_p = commands.add_parser("eval", help="score a skill library against held-out trajectories")
    eval_p.add_argument(
        "--library", type=Path, required=True, help="folder of <name>/SKILL.md skills"
    )
    eval_p.add_argument(
        "trajectories",
        nargs="+",
        type=Path,
        metavar="TRAJECTORIES",
        help="held-out runs: files or folders in any format `skillforge import` reads",
    )
    eval_p.add_argument("--json", action="store_true", help="print the report as JSON")
    eval_p.add_argument(
        "--threshold", type=float, help="compliance that counts as compliant (default 0.5)"
    )
    eval_p.add_argument(
        "--prefix",
        type=int,
        metavar="K",
        help="score each run on its first K tool calls only (runs with fewer are left out)",
    )
    commands.add_parser("status", help="what was ingested, cycles, proposals, the library")
    commands.add_parser("schema", help="print the trajectory JSON Schema")
    history_p = commands.add_parser("history", help="a skill's changes across cycles and its runs")
    history_p.add_argument("skill")
    rollback_p = commands.add_parser(
        "rollback", help="propose putting a skill back to an earlier version (reviewed)"
    )
    rollback_p.add_argument("skill")
    rollback_p.add_argument(
        "--to", metavar="VERSION", help="version to restore (default: the previous one)"
    )
    sync_p = commands.add_parser("sync", help="clone or fast-forward the library for an agent")
    where = sync_p.add_mutually_exclusive_group()
    where.add_argument("--to", type=Path, metavar="DIR", help="the folder to sync")
    where.add_argument(
        "--agent", choices=["claude", "agents", "codex"], help="its skills folder (default agents)"
    )
    sync_p.add_argument("--project", type=Path, metavar="PATH", help="a project's folder, not HOME")
    sync_p.add_argument("--remote", metavar="URL", help="library remote (default: configured)")
    commands.add_parser("publish-plugin", help="propose a Claude Code plugin marketplace file")

    review_p = commands.add_parser("review", help="list, show, accept or reject proposals")
    actions = review_p.add_subparsers(dest="action", required=True, metavar="ACTION")
    list_p = actions.add_parser("list", help="proposals and their status")
    list_p.add_argument("--status", choices=["open", "accepted", "rejected", "superseded"])
    show_p = actions.add_parser("show", help="the description and the diff of a proposal")
    show_p.add_argument("id")
    accept_p = actions.add_parser("accept", help="merge a proposal into main and push")
    accept_p.add_argument("id")
    reject_p = actions.add_parser("reject", help="reject a proposal, with the reason")
    reject_p.add_argument("id")
    reject_p.add_argument("--reason", required=True)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "schema":
        return schema()
    if args.command == "eval":
        return eval_library(
            args.library,
            args.trajectories,
            as_json=args.json,
            threshold=args.threshold,
            prefix=args.prefix,
        )
    overrides = {
        "home": args.home,
        "inbox": args.inbox,
        "evolve_every_minutes": getattr(args, "evolve_every_minutes", None),
        "evolve_after": getattr(args, "evolve_after", None),
        "polling": getattr(args, "polling", None),
        "http": getattr(args, "http", None),
    }
    config = config_module.load(args.config, overrides=overrides)
    if args.command == "serve":
        return serve(config)
    if args.command == "ingest":
        return ingest(config, args.paths)
    if args.command == "import":
        return import_(config, args.paths, format=args.format, mapping=args.mapping)
    if args.command == "hook":
        return print_settings(config) if args.settings else hook(config)
    if args.command == "label":
        return label(config, args.run_ids, success=args.success, reason=args.reason)
    if args.command == "evolve":
        return evolve(config)
    if args.command == "rebuild":
        return rebuild(config)
    if args.command == "status":
        return status(config)
    if args.command == "history":
        return history(config, args.skill)
    if args.command == "rollback":
        return rollback(config, args.skill, args.to)
    if args.command == "sync":
        return sync_skills(
            config, to=args.to, agent=args.agent, project=args.project, remote=args.remote
        )
    if args.command == "publish-plugin":
        return publish_plugin(config)
    if args.action == "list":
        return review_list(config, args.status)
    if args.action == "show":
        return review_show(config, args.id)
    if args.action == "accept":
        return review_accept(config, args.id)
    return review_reject(config, args.id, args.reason)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: expected errors exit 1, Ctrl-C 130, bugs 3 with a crash log."""
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except SkillforgeError as exc:
        write_line(f"error: {exc}", stream=sys.stderr)
        return 1
    except KeyboardInterrupt:
        write_line("interrupted (^C)", stream=sys.stderr)
        return 130
    except BrokenPipeError:  # `skillforge status | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:
        log = Path(args.home or "var") / "log" / f"crash-{utcnow():%Y%m%d-%H%M%S}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc(), encoding="utf-8")
        write_line(
            f"an unexpected error occurred (a bug); the traceback is in {log}", stream=sys.stderr
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
