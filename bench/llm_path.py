"""LLM path benchmark (not yet measured): calls and tokens per cycle as the history grows,
against the loopback server that speaks the real wire format (tests/llm_server.py).

The hook: implement `run(quick, say) -> dict` here once the LLM path has landed (run cycles
at growing history sizes with the LLM configured against the loopback server; report calls,
input and output tokens per cycle and their growth exponent), and bench/run.py reports it.
Until then it reports that it was skipped, so the results file says so rather than omit it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REASON = "not measured yet: the LLM path is being built (see bench/llm_path.py)"


def run(quick: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    say(f"llm: skipped, {REASON}")
    return {"skipped": REASON}
