"""`skillforge ingest PATH...`: take files or folders in once, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from .. import gc_tuning
from ..config import Config
from ..intake import IngestResult, expand, ingest_file, pending_bytes, quarantine_file_sink
from ..output import Progress, write_line
from ..stores import open_store


def ingest(config: Config, paths: list[Path]) -> int:
    gc_tuning.tune()
    files = expand(paths)
    sink = quarantine_file_sink(config.quarantine_file)
    total = IngestResult()
    with (
        open_store(config.store_location) as store,
        Progress(pending_bytes(store, files), "ingesting") as bar,
    ):
        for path in files:
            total.add(
                ingest_file(
                    store,
                    path,
                    max_line_bytes=config.max_line_bytes,
                    on_quarantine=sink,
                    on_progress=bar.update,
                )
            )
    for note in total.notes:
        write_line(note)
    write_line(
        f"{total.files} files, {total.lines} lines: {total.stored} trajectories stored, "
        f"{total.duplicates} already stored, {total.quarantined} quarantined"
        + (f", {total.outcomes} outcomes of stored runs set" if total.outcomes else "")
        + (f"; {total.waiting} runs not finished yet, taken once they are" if total.waiting else "")
    )
    if total.quarantined:
        write_line(
            f"quarantined lines and reasons: {config.quarantine_file} (or `skillforge status`)"
        )
    return 0
