"""One small client over either backend: ask a `Prompt`, get a parsed `Answer` or a reason.

Every ask is answered from the cache when it can be; otherwise it is redacted again (defence
in depth), reserved in the budget before it is sent (so the limits are never exceeded),
parsed into the prompt's output model, and retried once with the parse error. It never
raises for API or budget trouble: the answer is then `None` with a note, and the caller keeps
its offline result. After the API fails hard, later asks are refused at once.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from evolver.prompts import Prompt
from evolver.redact import redact

from ..errors import BudgetExhaustedError, LLMRequestRejected, LLMUnavailableError
from .backend import TIMED_OUT, Backend, Reply
from .budget import Budget, Grant, Usage, estimate_input_tokens
from .cache import AnswerCache, cache_key

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store

# How often one ask may change how it is sent after a 400 (unsupported option or schema).
MAX_ADAPTATIONS = 3


@dataclass(frozen=True)
class Answer:
    """A parsed reply (`value`), or None and a `note` saying why; what the ask cost."""

    value: BaseModel | None
    usage: Usage
    cached: bool
    note: str


class LLMClient:
    """Asks prompts of one model within one cycle's budget; use it from one thread at a time
    (its cache lives in the store, whose SQLite connection belongs to one thread)."""

    def __init__(self, backend: Backend, budget: Budget, cache: AnswerCache) -> None:
        self.backend = backend
        self.budget = budget
        self.cache = cache
        self.provider = backend.provider
        self.model = backend.model
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._down = ""  # why the API is considered unavailable for the rest of the cycle

    def spent(self) -> Usage:
        return self.budget.spent()

    def close(self) -> None:
        """Close the SDK's connections; call it when the cycle is done."""
        self.backend.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def calls(self) -> list[dict[str, Any]]:
        """One entry per ask: role, skill, version, calls, tokens, cost, cached, note."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def ask(self, prompt: Prompt) -> Answer:
        """The prompt's answer parsed into `prompt.output`, or None and why."""
        key = cache_key(prompt, provider=self.provider, model=self.model)
        hit = self.cache.get(key, prompt.output)
        if hit is not None:
            return self._logged(prompt, Answer(hit, Usage(), True, ""))
        if self._down:
            note = f"{self._down}; not asked again this cycle"
            return self._logged(prompt, Answer(None, Usage(), False, note))
        value, used, note = self._send(prompt)
        if value is not None:
            self.cache.put(key, prompt, value, provider=self.provider, model=self.model)
        return self._logged(prompt, Answer(value, used, False, note))

    def _send(self, prompt: Prompt) -> tuple[BaseModel | None, Usage, str]:
        system, user = redact(prompt.system), redact(prompt.user)
        schema = prompt.output.model_json_schema()
        name = re.sub(r"[^A-Za-z0-9_-]", "_", prompt.role)[:64] or "answer"
        schema_text = json.dumps(schema)
        used, adaptations, problem = Usage(), 0, ""
        message = user
        while True:
            estimate = estimate_input_tokens(system, message, schema_text)
            try:
                grant = self.budget.reserve(estimate, prompt.max_output_tokens)
            except BudgetExhaustedError as exc:
                return None, used, _joined(problem, f"retry: {exc}" if problem else str(exc))
            try:
                reply = self.backend.send(
                    system, message, name=name, schema=schema, max_tokens=grant.max_output_tokens
                )
            except LLMRequestRejected as exc:
                used += self.budget.settle(grant, Usage(calls=1))
                if adaptations < MAX_ADAPTATIONS and self.backend.adapt(exc):
                    adaptations += 1
                    continue
                return None, used, _joined(problem, str(exc))
            except LLMUnavailableError as exc:
                # a timed-out request may still have been processed: count all it could use
                timed_out = TIMED_OUT in str(exc)
                used += self.budget.settle(grant, None if timed_out else Usage(calls=1))
                with self._lock:
                    self._down = str(exc)
                return None, used, _joined(problem, str(exc))
            used += self.budget.settle(grant, self._usage(grant, reply))
            value, error = _parsed(prompt.output, reply)
            if value is not None:
                return value, used, ""
            if problem:
                return None, used, f"reply did not parse twice: {error}"
            problem = f"reply did not parse: {error}"
            message = user + _retry_text(error)

    def _usage(self, grant: Grant, reply: Reply) -> Usage:
        """What the request used as the server reported it; the grant's bound where it did not."""
        tokens_in = grant.input_tokens if reply.input_tokens is None else reply.input_tokens
        tokens_out = grant.max_output_tokens if reply.output_tokens is None else reply.output_tokens
        return Usage(1, tokens_in, tokens_out, self.budget.cost(tokens_in, tokens_out))

    def _logged(self, prompt: Prompt, answer: Answer) -> Answer:
        entry = {
            "provider": self.provider,
            "model": self.model,
            "role": prompt.role,
            "skill": prompt.skill,
            "version": prompt.version,
            "calls": answer.usage.calls,
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
            "cost_usd": answer.usage.cost_usd,
            "cached": answer.cached,
            "note": answer.note,
        }
        with self._lock:
            self._log.append(entry)
        return answer


def _parsed(output: type[BaseModel], reply: Reply) -> tuple[BaseModel | None, str]:
    """The reply as the output model, or None and what is wrong (model input not echoed)."""
    if reply.problem:
        return None, reply.problem
    try:
        return output.model_validate(reply.data), ""
    except ValidationError as exc:
        return None, "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )[:1000]


def _retry_text(error: str) -> str:
    return (
        "\n\nYour previous reply was rejected: "
        f"{redact(error)}\nReply again with one answer that matches the schema exactly."
    )


def _joined(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def client_from_config(
    config: Config, store: Store | None, *, environ: Mapping[str, str] | None = None
) -> LLMClient | None:
    """A client with a fresh per-cycle budget, or None for offline mode (see `factory`)."""
    from .factory import client_from_config as build  # factory builds clients: import late

    return build(config, store, environ=environ)
