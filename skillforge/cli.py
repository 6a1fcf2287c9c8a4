"""The command line: parse, load the configuration, dispatch, inside one error boundary."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import config as config_module
from .commands.eval import eval_library
from .commands.evolve import evolve
from .commands.history import history
from .commands.ingest import ingest
from .commands.review import review_accept, review_list, review_reject, review_show
from .commands.schema import schema
from .commands.serve import serve
from .commands.status import status
from .errors import SkillforgeError
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

    ingest_p = commands.add_parser("ingest", help="take trajectory files or folders in once")
    ingest_p.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    commands.add_parser("evolve", help="run one evolution cycle now")
    eval_p = commands.add_parser("eval", help="score a skill library against held-out trajectories")
    eval_p.add_argument(
        "--library", type=Path, required=True, help="folder of <name>/SKILL.md skills"
    )
    eval_p.add_argument(
        "trajectories",
        nargs="+",
        type=Path,
        metavar="TRAJECTORIES",
        help="held-out runs: .jsonl or .json files, or folders of them",
    )
    eval_p.add_argument("--json", action="store_true", help="print the report as JSON")
    eval_p.add_argument(
        "--threshold", type=float, help="compliance that counts as compliant (default 0.5)"
    )
    commands.add_parser("status", help="what was ingested, cycles, proposals, the library")
    commands.add_parser("schema", help="print the trajectory JSON Schema")
    history_p = commands.add_parser("history", help="a skill's changes across cycles and its runs")
    history_p.add_argument("skill")

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
            args.library, args.trajectories, as_json=args.json, threshold=args.threshold
        )
    overrides = {
        "home": args.home,
        "inbox": args.inbox,
        "evolve_every_minutes": getattr(args, "evolve_every_minutes", None),
        "evolve_after": getattr(args, "evolve_after", None),
        "polling": getattr(args, "polling", None),
    }
    config = config_module.load(args.config, overrides=overrides)
    if args.command == "serve":
        return serve(config)
    if args.command == "ingest":
        return ingest(config, args.paths)
    if args.command == "evolve":
        return evolve(config)
    if args.command == "status":
        return status(config)
    if args.command == "history":
        return history(config, args.skill)
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
