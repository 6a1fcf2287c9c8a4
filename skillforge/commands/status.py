"""`skillforge status`: intake, quarantine, cycles, proposals and the library at a glance."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..daemon import daemon_alive, lock_path
from ..library import LibraryRepo
from ..output import write_line
from ..stores import open_store


def status(config: Config) -> int:
    with open_store(config.store_location) as store:
        total = store.count("trajectories")
        succeeded = store.count("trajectories", "success = 1")
        failed = store.count("trajectories", "success = 0")
        files = store.count("files")
        quarantined = store.quarantined_lines()  # a summary row stands for many lines
        pending = store.stored_after(store.evolved_high_water())
        late = store.outcomes_high_water() - store.evolved_outcomes()
        last = store.last_cycle()
        state = store.state()
        open_proposals = store.proposals("open")
        recent_bad = store.quarantine(limit=5)
        usage = store.skill_usage()
        duplicates = store.counter("duplicates")
        spend = store.llm_spend()
    write_line(f"store        {config.store_display}")
    unknown = total - succeeded - failed
    write_line(
        f"ingested     {total} trajectories ({succeeded} succeeded, {failed} failed"
        + (f", {unknown} unknown" if unknown else "")
        + f") from {files} files; {duplicates} duplicates ignored"
    )
    if unknown:  # lessons are tested on runs with an outcome only
        write_line(
            "  lessons are learned from runs with an outcome: give the others theirs with "
            "`skillforge label`, or import them again once a report has it"
        )
    write_line(
        f"quarantined  {quarantined} lines"
        + (f" (see {config.quarantine_file})" if quarantined else "")
    )
    for row in recent_bad:
        write_line(f"  {row['file']}:{row['line']}: {row['reason']}")
    write_line(
        f"not evolved  {pending} trajectories"
        + (f", {late} outcomes that arrived after their runs" if late > 0 else "")
    )
    if last:
        write_line(
            f"last cycle   {last['id']} {last['status']} at {last['started_at']}"
            + (f" ({last['error']})" if last.get("error") else "")
        )
    else:
        write_line("last cycle   none yet")
    _llm_spend(spend)
    write_line(f"daemon       {_daemon(config, state)}")
    write_line(f"proposals    {len(open_proposals)} open")
    for row in open_proposals:
        write_line(f"  {row['id']}  {row['branch']}  (skillforge review show {row['id']})")
    if config.library_path.exists():
        skills = LibraryRepo(config.library_path, config.remote_url).skills("main")
        write_line(f"library      {len(skills)} skills on main ({config.library_path})")
        width = max((len(s.name) for s in skills), default=0) + 2
        for skill in skills:
            write_line(f"  {skill.name:<{width}} used in {usage.get(skill.name, 0)} runs")
    else:
        write_line("library      not created yet (it is on the first serve or evolve)")
    return 0


def _llm_spend(spend: dict[str, dict[str, Any]], last: int = 5) -> None:
    """The LLM pass's spend in the last cycles that used it: calls, tokens, estimated cost."""
    if not spend:
        write_line("llm spend    none (offline cycles only)")
        return
    cost = sum(row["cost_usd"] or 0.0 for row in spend.values())
    write_line(
        f"llm spend    ~${cost:.4f} in {len(spend)} cycles; the last {min(last, len(spend))}:"
    )
    for cycle, row in list(spend.items())[-last:]:
        write_line(
            f"  {cycle}  {row['calls']} calls, {row['input_tokens']:,} in / "
            f"{row['output_tokens']:,} out tokens, ~${row['cost_usd'] or 0.0:.4f}; "
            f"{row['cached']} of {row['asks']} asks cached, {row['noted']} with a note"
        )


def _daemon(config: Config, state: dict[str, str | None]) -> str:
    """Whether a daemon serves the store: the pid it stored is only a claim (a SIGKILLed
    daemon leaves it behind), its lock file held is the proof."""
    pid, next_cycle = state.get("pid"), state.get("next_cycle") or "not scheduled"
    if not pid:
        return f"not running; next cycle {next_cycle}"
    path = lock_path(config)
    if daemon_alive(path) or (not path.exists() and _pid_is_skillforge(pid)):
        return f"running (pid {pid}); next cycle {next_cycle}"
    try:
        seen = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        seen = "an unknown time"
    return (
        f"not running (last seen pid {pid}, stopped uncleanly at about {seen}); "
        "next cycle not scheduled"
    )


def _pid_is_skillforge(pid: str) -> bool:
    """A daemon from before the lock file: is `pid` alive and running skillforge?"""
    try:
        return b"skillforge" in Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
