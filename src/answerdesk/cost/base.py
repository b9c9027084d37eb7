"""The counter store behind rate limits, budgets and the usage ledger.

One Protocol, kept small so that a Redis backend (``WATCH``/``MULTI`` or a script) can implement it: read some
counters, decide from them with a pure function, and add to them, all in one atomic step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Increment:
    """Add ``amount`` to the counter ``name``; the counter may be dropped after ``expires_at`` (Unix seconds)."""

    name: str
    amount: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One admitted request as billed: who, which tags, which model, how many tokens, what it cost."""

    request_id: str
    created_at: str
    tenant: str | None
    key_id: str
    endpoint: str
    outcome: str
    route: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    tags: Mapping[str, str] = field(default_factory=dict)


class CounterStore(Protocol):
    """Counters that many requests (and many processes) update at once."""

    async def update(self, names: Sequence[str], decide: Callable[[Mapping[str, float]], Sequence[Increment]]) -> None:
        """Atomically read the counters ``names`` (a missing one is 0), pass them to ``decide`` and add the
        increments it returns. When ``decide`` raises, nothing is written and its exception propagates."""
        ...

    async def record(self, increments: Sequence[Increment], entry: LedgerEntry | None = None) -> None:
        """Add ``increments`` and write ``entry`` to the usage ledger, in one transaction."""
        ...

    async def purge(self, now: float) -> int:
        """Drop counters expired at ``now``; returns how many."""
        ...
