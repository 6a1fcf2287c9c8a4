"""Garbage-collector settings for skillforge's own long-running processes (`serve`, `ingest`).

Intake allocates many short-lived objects and almost no reference cycles; with CPython's
default first threshold (700 allocations) the collector re-scans everything alive many times
per batch, about a fifth of intake's time at 10k runs (bench/intake.py). A higher threshold
leaves collection for real garbage; what is alive at start-up is frozen out of every scan.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 50, 50)


def tune() -> None:
    """Apply the settings to this process (call once, at start-up)."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
