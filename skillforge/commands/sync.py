"""`skillforge sync`: clone or fast-forward the library into the folder an agent reads."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..output import write_line
from ..sync import project_hint, sync, target_dir


def sync_skills(
    config: Config,
    *,
    to: Path | None = None,
    agent: str | None = None,
    project: Path | None = None,
    remote: str | None = None,
) -> int:
    target = target_dir(to, agent, project)
    source = remote or config.remote_url
    result = sync(target, source)
    if result.action == "cloned":
        write_line(f"cloned {source} into {target}: {len(result.added)} skills")
    elif result.action == "up-to-date":
        write_line(f"{target} is up to date with {source} ({result.head[:10]})")
    else:
        write_line(f"updated {target} from {source} to {result.head[:10]}")
    if result.action != "cloned":
        for word, names in (
            ("added", result.added),
            ("updated", result.updated),
            ("removed", result.removed),
        ):
            for name in names:
                write_line(f"  {word:<8} {name}")
    hint = project_hint(project, target) if project is not None else None
    if hint:
        write_line(f"note: {hint}")
    write_line(f"later: `skillforge sync` again, or plain `git -C {target} pull`")
    return 0
