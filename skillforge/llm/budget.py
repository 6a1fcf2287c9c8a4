"""Hard per-cycle limits on LLM use: requests, input and output tokens, and estimated cost.

A request is granted only if its upper-bound cost fits what is neither spent nor reserved by
requests in flight, so the limits hold even with concurrent callers. The input estimate is
an upper bound (see `estimate_input_tokens`); the output is bounded by the `max_tokens` the
grant allows, which is capped to what is left.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass

from ..errors import BudgetExhaustedError

# A reply capped below this is useless for a structured answer, so it is not requested.
MIN_OUTPUT_TOKENS = 256
# Message framing, special tokens, and the system prompt a provider adds for tool use
# (Anthropic documents about 350 tokens for a forced tool; 1024 leaves room for framing).
OVERHEAD_TOKENS = 1024


def estimate_input_tokens(*texts: str) -> int:
    """An upper bound on the input tokens of a request made of these texts.

    One UTF-8 byte per token plus `OVERHEAD_TOKENS`: the Claude and GPT tokenizers (and the
    byte-level BPE and SentencePiece-with-byte-fallback ones that vLLM and Ollama serve) never
    make a token of less than one byte, so this is never below the real count. It is about
    three to four times the typical count; the surplus is reserved only while a request is
    in flight and is given back when the reply reports its real usage.
    """
    return sum(len(t.encode("utf-8")) for t in texts) + OVERHEAD_TOKENS


@dataclass(frozen=True)
class Usage:
    """What LLM requests used; addable, and `Usage()` is zero."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Grant:
    """A reservation for one request: its input estimate and the `max_tokens` it may ask for."""

    id: int
    input_tokens: int
    max_output_tokens: int
    cost_usd: float


class Budget:
    """Hard per-cycle limits; thread-safe; never exceeded when input estimates are upper bounds."""

    def __init__(
        self,
        *,
        max_calls: int,
        max_input_tokens: int,
        max_output_tokens: int,
        max_cost_usd: float,
        usd_per_mtok_in: float,
        usd_per_mtok_out: float,
    ) -> None:
        self.max_calls = max_calls
        self.max_input_tokens = max_input_tokens
        self.max_output_tokens = max_output_tokens
        self.max_cost_usd = max_cost_usd
        self.usd_per_mtok_in = usd_per_mtok_in
        self.usd_per_mtok_out = usd_per_mtok_out
        self._lock = threading.Lock()
        self._spent = Usage()
        self._held: dict[int, Grant] = {}
        self._ids = itertools.count(1)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Estimated USD for this many tokens at the configured prices."""
        return (input_tokens * self.usd_per_mtok_in + output_tokens * self.usd_per_mtok_out) / 1e6

    def spent(self) -> Usage:
        with self._lock:
            return self._spent

    def reserve(self, input_tokens: int, max_output_tokens: int) -> Grant:
        """Reserve one request of at most `input_tokens` in; the grant caps its output.

        Raises `BudgetExhaustedError` naming the limit when even a reply of
        `min(max_output_tokens, MIN_OUTPUT_TOKENS)` would not fit.
        """
        with self._lock:
            held = Usage(
                len(self._held),
                sum(g.input_tokens for g in self._held.values()),
                sum(g.max_output_tokens for g in self._held.values()),
                sum(g.cost_usd for g in self._held.values()),
            )
            used = self._spent + held
            if used.calls + 1 > self.max_calls:
                raise BudgetExhaustedError(
                    f"budget exhausted (calls {used.calls}/{self.max_calls})"
                )
            if used.input_tokens + input_tokens > self.max_input_tokens:
                raise BudgetExhaustedError(
                    f"budget exhausted (input tokens {used.input_tokens:,}/"
                    f"{self.max_input_tokens:,} used or reserved; this prompt needs up to"
                    f" {input_tokens:,})"
                )
            floor = min(max_output_tokens, MIN_OUTPUT_TOKENS)
            room_out = self.max_output_tokens - used.output_tokens
            if room_out < floor:
                raise BudgetExhaustedError(
                    f"budget exhausted (output tokens {used.output_tokens:,}/"
                    f"{self.max_output_tokens:,} used or reserved)"
                )
            room_cost = self.max_cost_usd - used.cost_usd - self.cost(input_tokens, 0)
            if self.usd_per_mtok_out > 0:
                # a tiny epsilon so float rounding never grants a token over the limit
                room_out = min(room_out, math.floor(room_cost * 1e6 / self.usd_per_mtok_out - 1e-6))
            if room_cost < 0 or room_out < floor:
                raise BudgetExhaustedError(
                    f"budget exhausted (cost ${used.cost_usd:.4f}/${self.max_cost_usd:.2f}"
                    f" used or reserved; this prompt needs up to"
                    f" ${self.cost(input_tokens, floor):.4f})"
                )
            out = min(max_output_tokens, room_out)
            grant = Grant(next(self._ids), input_tokens, out, self.cost(input_tokens, out))
            self._held[grant.id] = grant
            return grant

    def settle(self, grant: Grant, used: Usage | None) -> Usage:
        """Replace a reservation with what the request really used (None: all it could have)."""
        if used is None:
            used = Usage(1, grant.input_tokens, grant.max_output_tokens, grant.cost_usd)
        with self._lock:
            if self._held.pop(grant.id, None) is None:
                raise ValueError(f"grant {grant.id} was already settled")
            self._spent = self._spent + used
        return used
