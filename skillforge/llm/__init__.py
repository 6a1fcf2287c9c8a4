"""The LLM path: Anthropic and OpenAI backends behind one small client, within a hard budget.

`LLMClient.ask(prompt)` sends an `evolver.prompts.Prompt`, parses the reply into the prompt's
output model (retrying once with the parse error), and answers from the cache when the
same prompt was answered before. It never exceeds its `Budget`; when the budget or the API
runs out it returns `None` and says why, and the caller keeps the offline result.
"""

from .budget import Budget, Usage
from .client import Answer, LLMClient, client_from_config

__all__ = ["Answer", "Budget", "LLMClient", "Usage", "client_from_config"]
