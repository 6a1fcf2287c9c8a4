"""LLM answers cached by a hash of the prompt's evidence and version, the schema and the model.

An unchanged cluster builds the same prompt, so its second cycle is answered from here and
costs nothing. Only answers that parsed are cached; an entry that no longer parses (the
output model changed) counts as a miss.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ValidationError

from evolver.prompts import Prompt

from ..store import Store


def cache_key(prompt: Prompt, *, provider: str, model: str) -> str:
    """Equal key, equal answer: the prompt's key (or its full text), output schema and model."""
    evidence = prompt.cache_key or _sha([prompt.version, prompt.system, prompt.user])
    schema = json.dumps(prompt.output.model_json_schema(), sort_keys=True)
    return _sha([evidence, prompt.version, schema, provider, model])


def _sha(parts: list[str]) -> str:
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()


class AnswerCache:
    """Parsed answers in the store's `llm_cache` table (in memory when there is no store)."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._memory: dict[str, str] = {}

    def get(self, key: str, output: type[BaseModel]) -> BaseModel | None:
        text = self.store.llm_cache_get(key) if self.store else self._memory.get(key)
        if text is None:
            return None
        try:
            return output.model_validate_json(text)
        except ValidationError:
            return None

    def put(self, key: str, prompt: Prompt, value: BaseModel, *, provider: str, model: str) -> None:
        text = value.model_dump_json()
        if self.store is None:
            self._memory[key] = text
        else:
            self.store.llm_cache_put(
                key, text, provider=provider, model=model, role=prompt.role, version=prompt.version
            )
