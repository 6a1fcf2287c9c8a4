"""Small synthetic runs for the reliability tests: families that each make their own skill."""

from __future__ import annotations

import json
from typing import Any

# One word per family: its task words and tool names, so each family is its own cluster.
WORDS = [
    "invoice",
    "parcel",
    "ticket",
    "voucher",
    "refund",
    "booking",
    "license",
    "permit",
    "badge",
    "locker",
    "meter",
    "pallet",
    "coupon",
    "warranty",
    "rebate",
    "shipment",
    "lease",
    "payroll",
    "ledger",
    "quota",
    "visa",
    "pension",
    "tariff",
    "grant",
    "deposit",
    "claim",
]


def family(word: str, start: int = 0, count: int = 6, prefix: str = "run") -> list[dict[str, Any]]:
    """`count` runs of one task family: look the `word` up, then update it (every third fails)."""
    runs = []
    for n in range(start, start + count):
        ok = n % 3 != 2
        key = {f"{word}_id": f"{word[:2].upper()}{n:05d}"}
        runs.append(
            {
                "id": f"{prefix}-{word}-{n:06d}",
                "task": f"Find the {word} {n} for the customer and close the {word}",
                "steps": [
                    {"type": "message", "role": "user", "text": f"Please close {word} {n}."},
                    {
                        "type": "tool_call",
                        "name": f"find_{word}",
                        "arguments": key,
                        "result": '{"status": "open"}',
                    },
                    {
                        "type": "tool_call",
                        "name": f"close_{word}",
                        "arguments": {**key, "status": "closed" if ok else "done"},
                        "result": "ok" if ok else "Error: status must be one of closed, open",
                        "error": not ok,
                    },
                    {"type": "message", "role": "assistant", "text": "It is closed."},
                ],
                "outcome": {"success": ok},
            }
        )
    return runs


def lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)
