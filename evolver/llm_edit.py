"""Apply an editor's minimal edits to a skill's managed block, strictly.

Each `find` must occur exactly once in the block as it stands when that edit applies, or
the whole answer is refused: a fuzzy match could change text nobody meant to change. The
Evidence section is always the offline one, so figures and fingerprint stay exact. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from evolver.prompts.editor import Edit
from evolver.prompts.writer import block_section
from evolver.skilldoc import (
    BLOCK_BEGIN,
    BLOCK_END,
    find_managed_block,
    is_managed,
    parse,
    render,
    replace_managed_block,
)

__all__ = ["EditRejected", "apply_edits", "edited_skill", "managed_text"]


class EditRejected(ValueError):
    """An edit that cannot be applied exactly (not found, ambiguous, or touching a marker)."""


def managed_text(body: str) -> str:
    """The text between the skillforge markers of `body` ("" when it has none)."""
    span = find_managed_block(body)
    if span is None:
        return ""
    return body[span[0] + len(BLOCK_BEGIN) : span[1] - len(BLOCK_END)].strip("\n") + "\n"


def apply_edits(block: str, edits: Sequence[Edit]) -> str:
    """`block` with each edit applied in order; EditRejected says which edit failed and why."""
    for n, edit in enumerate(edits, 1):
        if BLOCK_BEGIN in edit.replace or BLOCK_END in edit.replace:
            raise EditRejected(f"edit {n} writes a skillforge marker")
        found = block.count(edit.find)
        if found != 1:
            where = "does not occur" if found == 0 else f"occurs {found} times"
            raise EditRejected(f"edit {n}: its text {where} in the managed block")
        block = block.replace(edit.find, edit.replace, 1)
    return block


def _with_evidence(block: str, evidence: str) -> str:
    """`block` with its `## Evidence` section replaced by `evidence` (appended if missing)."""
    old = block_section(block, "Evidence")
    if old:
        return block.replace(old, evidence, 1)
    return block.rstrip("\n") + "\n\n" + evidence


def edited_skill(current: str, offline: str, edits: Sequence[Edit]) -> str:
    """The SKILL.md after `edits`: the offline change's frontmatter (for a skillforge skill with
    the current description kept: only the trigger role rewrites it), the current body with its
    managed block edited (the offline block when it has none yet) and the offline Evidence.

    `current` is the skill in the library, `offline` the offline evolver's new version."""
    current_fm, body = parse(current)
    offline_fm, offline_body = parse(offline)
    offline_block = managed_text(offline_body)
    block = apply_edits(managed_text(body) or offline_block, edits)
    block = _with_evidence(block, block_section(offline_block, "Evidence"))
    new_body = replace_managed_block(body, block)
    if is_managed(offline_fm):
        kept = current_fm.get("description") or offline_fm.get("description")
        return render({**offline_fm, "description": kept}, new_body)
    head = offline.replace("\r\n", "\n")
    return head[: len(head) - len(offline_body)] + new_body  # a person's frontmatter, verbatim
