"""`skillforge history SKILL`: the skill's ledger across cycles, and how its runs did."""

from __future__ import annotations

from ..config import Config
from ..output import write_line
from ..stores import open_store


def history(config: Config, skill: str) -> int:
    with open_store(config.store_location) as store:
        entries = store.ledger(skill)
        versions = store.skill_versions(skill)
    if not entries and not versions:
        write_line(f"no history for {skill!r}: never proposed, and no run reported loading it")
        return 0
    write_line(f"{skill}: {len(entries)} proposed change{'' if len(entries) == 1 else 's'}")
    for e in entries:
        figures = f"{e['successes']}/{e['runs']} runs succeeded" if e["runs"] else "no runs"
        decided = f" ({e['decision_reason']})" if e["decision_reason"] else ""
        version = f" -> version {e['version']}" if e["version"] else ""
        write_line(
            f"  {e['created_at']}  {e['proposal']}  {e['action']}{version}  {e['status']}{decided}"
        )
        write_line(f"      {e['summary']}; evidence {e['fingerprint']}, {figures}")
    if versions:
        write_line("runs that had it loaded, by version:")
        write_line(f"  {'VERSION':<10} {'RUNS':>5} {'SUCCESS':>8}  SEEN")
        for v in versions:
            known = (v["successes"] or 0) + (v["failures"] or 0)
            rate = f"{(v['successes'] or 0) / known:.0%}" if known else "-"
            write_line(
                f"  {v['version'] or '?':<10} {v['runs']:>5} {rate:>8}  "
                f"{v['first_seen']} .. {v['last_seen']}"
            )
    return 0
