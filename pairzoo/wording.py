"""Counts in messages: `plural(1, "epoch")` is "1 epoch", `plural(3, "run")` "3 runs"."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and the noun in the form that count takes (`nouns`: an irregular plural)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
