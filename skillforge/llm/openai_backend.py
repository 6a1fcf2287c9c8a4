"""The OpenAI Chat Completions backend, for OpenAI and compatible servers (vLLM, Ollama).

Structured output is asked for with `response_format` json_schema (strict off: pydantic
schemas have optional keys, which strict mode forbids; the client validates anyway). A
server that rejects that is asked once more with `json_object` and the schema in the prompt,
and the backend keeps that mode; one that rejects `temperature` or `max_completion_tokens`
gets the request without them.
"""

from __future__ import annotations

import json
from typing import Any

import openai

from ..errors import LLMRequestRejected
from .backend import TIMED_OUT, Reply, schema_instruction, translate


class OpenAIBackend:
    """Sends a prompt as a system and a user message; the reply is one JSON object."""

    provider = "openai"

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
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=retries
        )
        self.json_schema = True  # False: `json_object` with the schema in the prompt
        self.temperature: float | None = 0.0
        # OpenAI's own API wants max_completion_tokens; compatible servers know max_tokens.
        self.tokens_field = "max_tokens" if base_url else "max_completion_tokens"
        self._tokens_switched = False

    def send(
        self, system: str, user: str, *, name: str, schema: dict[str, Any], max_tokens: int
    ) -> Reply:
        params: dict[str, Any] = {self.tokens_field: max_tokens}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.json_schema:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": False},
            }
        else:
            params["response_format"] = {"type": "json_object"}
            user += schema_instruction(name, schema)
        tries = self.retries + 1
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                **params,
            )
        except openai.APIStatusError as exc:
            raise translate(exc.status_code, exc.message, tries) from exc
        except openai.APITimeoutError as exc:
            raise translate(None, f"{TIMED_OUT} after {self.timeout:g}s", tries) from exc
        except openai.APIConnectionError as exc:
            raise translate(None, str(exc), tries) from exc
        except openai.OpenAIError as exc:  # anything else the SDK raises: unusable reply
            raise translate(None, f"{type(exc).__name__}: {exc}", 1) from exc

        if not isinstance(completion, openai.types.chat.ChatCompletion):  # e.g. an HTML page
            raise translate(None, f"not a Chat Completions reply: {str(completion)[:80]!r}", 1)

        usage = completion.usage
        input_tokens = usage.prompt_tokens if usage is not None else None
        output_tokens = usage.completion_tokens if usage is not None else None
        if not completion.choices:
            return Reply(None, "", input_tokens, output_tokens, "the reply has no choices")
        choice = completion.choices[0]
        message = choice.message
        if choice.finish_reason == "length":
            cut = f"cut at max_tokens ({max_tokens})"
            return Reply(None, message.content or "", input_tokens, output_tokens, cut)
        if getattr(message, "refusal", None):
            return Reply(None, "", input_tokens, output_tokens, f"refused: {message.refusal}")
        text = message.content or ""
        if not text and message.tool_calls:  # some servers answer with a tool call instead
            text = getattr(getattr(message.tool_calls[0], "function", None), "arguments", "")
        try:
            return Reply(json.loads(_unfenced(text)), text, input_tokens, output_tokens)
        except json.JSONDecodeError as exc:
            return Reply(None, text, input_tokens, output_tokens, f"the reply is not JSON: {exc}")

    def adapt(self, error: LLMRequestRejected) -> bool:
        message = str(error).lower()
        if "temperature" in message and self.temperature is not None:
            self.temperature = None
        elif self.tokens_field in message and not self._tokens_switched:
            self._tokens_switched = True
            self.tokens_field = {"max_tokens": "max_completion_tokens"}.get(
                self.tokens_field, "max_tokens"
            )
        elif self.json_schema:
            self.json_schema = False
        else:
            return False
        return True

    def close(self) -> None:
        self._client.close()


def _unfenced(text: str) -> str:
    """The JSON inside a ```json fence, which json_object-mode models sometimes add."""
    text = text.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text
