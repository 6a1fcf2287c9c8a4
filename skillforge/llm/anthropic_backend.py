"""The Anthropic Messages API backend: structured output through one forced tool."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from ..errors import LLMRequestRejected
from .backend import TIMED_OUT, Reply, translate


class AnthropicBackend:
    """Sends a prompt as one user turn and forces the reply into the tool `name`'s schema."""

    provider = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
    ) -> None:
        self.model = model
        self.retries = retries
        self.timeout = timeout
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=retries
        )

    def send(
        self, system: str, user: str, *, name: str, schema: dict[str, Any], max_tokens: int
    ) -> Reply:
        tries = self.retries + 1
        try:
            message = self._client.messages.create(
                model=self.model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": user}],
                tools=[
                    {
                        "name": name,
                        "description": f"Submit the {name} answer.",
                        "input_schema": schema,
                    }
                ],
                tool_choice={"type": "tool", "name": name},
            )
        except anthropic.APIStatusError as exc:
            raise translate(exc.status_code, exc.api_message or str(exc), tries) from exc
        except anthropic.APITimeoutError as exc:
            raise translate(None, f"{TIMED_OUT} after {self.timeout:g}s", tries) from exc
        except anthropic.APIConnectionError as exc:
            raise translate(None, str(exc), tries) from exc
        except anthropic.AnthropicError as exc:  # anything else the SDK raises: unusable reply
            raise translate(None, f"{type(exc).__name__}: {exc}", 1) from exc
        if not isinstance(message, anthropic.types.Message):  # e.g. a proxy's HTML error page
            raise translate(None, f"not a Messages API reply: {str(message)[:80]!r}", 1)

        usage = message.usage
        input_tokens = None
        if usage is not None:
            input_tokens = (
                usage.input_tokens
                + (usage.cache_creation_input_tokens or 0)
                + (usage.cache_read_input_tokens or 0)
            )
        output_tokens = usage.output_tokens if usage is not None else None
        tool = next((b for b in message.content if b.type == "tool_use" and b.name == name), None)
        text = "".join(getattr(b, "text", "") for b in message.content if b.type == "text")
        if message.stop_reason == "max_tokens":
            cut = f"cut at max_tokens ({max_tokens})"
            return Reply(None, text, input_tokens, output_tokens, cut)
        if message.stop_reason == "refusal":
            return Reply(None, text, input_tokens, output_tokens, f"refused: {text[:200]}")
        if tool is not None:
            return Reply(tool.input, json.dumps(tool.input), input_tokens, output_tokens)
        try:  # a server that ignored tool_choice may still have answered in JSON
            return Reply(json.loads(text), text, input_tokens, output_tokens)
        except json.JSONDecodeError:
            problem = f"no `{name}` tool call in the reply and its text is not JSON"
            return Reply(None, text, input_tokens, output_tokens, problem)

    def adapt(self, error: LLMRequestRejected) -> bool:
        return False  # the Messages API has one way to ask for a structured answer

    def close(self) -> None:
        self._client.close()
