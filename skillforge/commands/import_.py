"""`skillforge import PATH...`: convert agent transcripts and result files into the inbox.

The runs of every file are written as native JSONL to one new inbox file,
`imported-<stamp>.jsonl`, which appears whole (written under a name intake ignores, then
renamed), so the daemon never reads half of it. Ids are deterministic: importing a file
again adds nothing new to the store.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from ..config import Config
from ..importers.files import Skipped, files_in, read_file
from ..importers.mapping import load_mapping
from ..output import Progress, write_line

REASONS_SHOWN = 10


def import_(
    config: Config, paths: list[Path], *, format: str | None = None, mapping: Path | None = None
) -> int:
    """Convert `paths` into the inbox and print what was imported and skipped; 1 when nothing
    could be imported but something was skipped."""
    rules = load_mapping(mapping) if mapping else None
    files = files_in(paths)
    lines: list[str] = []
    seen: set[str] = set()
    skipped: list[Skipped] = []
    with Progress(sum(p.stat().st_size for p in files), "importing") as bar:
        for path in files:
            for item in read_file(path, format, mapping=rules):
                if isinstance(item, Skipped):
                    skipped.append(item)
                elif item.id in seen:
                    skipped.append(Skipped(str(path), None, "the same run twice in this import"))
                else:
                    try:
                        lines.append(item.model_dump_json())
                    except ValueError as exc:  # e.g. a lone surrogate in untrusted text
                        reason = f"cannot be written as JSON: {str(exc)[:120]}"
                        skipped.append(Skipped(str(path), item.id, reason))
                        continue
                    seen.add(item.id)
            bar.update(path.stat().st_size)
    target = _write_inbox_file(config.inbox, lines) if lines else None
    write_line(
        f"{len(files)} files: imported {len(lines)} runs"
        + (f" into {target}" if target else "")
        + f", skipped {len(skipped)}"
    )
    _print_reasons(skipped)
    return 1 if skipped and not lines else 0


def _write_inbox_file(inbox: Path, lines: list[str]) -> Path:
    """Write the lines to a new inbox file that appears whole (temp name, fsync, rename)."""
    inbox.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = inbox / f"imported-{stamp}-{os.getpid()}.jsonl"
    temporary = inbox / f".{target.name}.part"  # intake and the watcher take only *.jsonl
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def _print_reasons(skipped: list[Skipped]) -> None:
    """Skips grouped by reason, most frequent first, each with where it first happened."""
    counts = Counter(s.reason for s in skipped)
    first = {}
    for item in skipped:
        first.setdefault(item.reason, item)
    for reason, count in counts.most_common(REASONS_SHOWN):
        where = first[reason]
        at = where.line_or_index
        place = where.source + (f":{at}" if at is not None else "")
        write_line(f"  {count} × {reason} (first: {place})")
    if len(counts) > REASONS_SHOWN:
        write_line(f"  ... and {len(counts) - REASONS_SHOWN} other reasons")
