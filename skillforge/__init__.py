"""skillforge: a self-evolving skill library daemon, and the client agents record runs with.

The client names are imported on first use, so `import skillforge` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import TrajectoryRecorder, from_anthropic_messages, from_openai_messages, record

__all__ = ["TrajectoryRecorder", "from_anthropic_messages", "from_openai_messages", "record"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'skillforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
