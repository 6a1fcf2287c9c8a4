"""Which LLM client a cycle gets from the configuration and environment, if any (else offline).

`llm_provider = "auto"` picks Anthropic when ANTHROPIC_API_KEY is set, else OpenAI when
OPENAI_API_KEY or `llm_base_url` is set, else offline. A local OpenAI-compatible server
(vLLM, Ollama) needs only `llm_base_url`. Each call makes a fresh budget: one per cycle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..config import Config
from ..errors import ConfigError
from ..store import Store
from .budget import Budget
from .cache import AnswerCache
from .client import LLMClient

DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1"}
_KEY_VARS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
_MODEL_VARS = {"anthropic": "ANTHROPIC_MODEL", "openai": "OPENAI_MODEL"}
# Local servers ignore the key, but the SDKs refuse to start without one.
_NO_KEY = "no-key-needed"


def resolve_provider(config: Config, environ: Mapping[str, str]) -> str:
    """anthropic, openai or offline, as `llm_provider` and the environment say."""
    if config.llm_provider != "auto":
        return config.llm_provider
    if config.llm_api_key:
        return "anthropic" if config.llm_api_key.startswith("sk-ant-") else "openai"
    if environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    if environ.get("OPENAI_API_KEY") or config.llm_base_url:
        return "openai"
    return "offline"


def client_from_config(
    config: Config, store: Store | None, *, environ: Mapping[str, str] | None = None
) -> LLMClient | None:
    """A client with a fresh per-cycle budget, or None for offline mode."""
    environ = os.environ if environ is None else environ
    provider = resolve_provider(config, environ)
    if provider == "offline":
        return None
    key = config.llm_api_key or environ.get(_KEY_VARS[provider]) or None
    if key is None and not config.llm_base_url:
        raise ConfigError(
            f"llm_provider is {provider} but there is no API key: set {_KEY_VARS[provider]}"
            " (or llm_api_key), or llm_provider = \"offline\""
        )
    model = config.llm_model or environ.get(_MODEL_VARS[provider]) or DEFAULT_MODELS[provider]
    # The SDKs are imported only now: an offline cycle never pays seconds of imports.
    if provider == "anthropic":
        from .anthropic_backend import AnthropicBackend as backend_type
    else:
        from .openai_backend import OpenAIBackend as backend_type  # type: ignore[assignment]
    backend = backend_type(
        model=model,
        api_key=key or _NO_KEY,
        base_url=config.llm_base_url,
        timeout=config.llm_timeout_seconds,
        retries=config.llm_retries,
    )
    budget = Budget(
        max_calls=config.llm_max_calls,
        max_input_tokens=config.llm_max_input_tokens,
        max_output_tokens=config.llm_max_output_tokens,
        max_cost_usd=config.llm_max_cost_usd,
        usd_per_mtok_in=config.llm_usd_per_mtok_in,
        usd_per_mtok_out=config.llm_usd_per_mtok_out,
    )
    return LLMClient(backend, budget, AnswerCache(store))
