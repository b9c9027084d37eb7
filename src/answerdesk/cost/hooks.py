"""The request hooks of one service process, built from settings: rate limits, spend budgets with the
usage ledger, and lineage, in that order (a refusal by a limit is cheap and writes no lineage)."""

from __future__ import annotations

from answerdesk.config import Settings
from answerdesk.cost.budgets import BudgetHooks
from answerdesk.cost.sqlite import SqliteCounterStore
from answerdesk.lineage.factory import build_blob_store
from answerdesk.lineage.hooks import LineageHooks
from answerdesk.security.ratelimit import RateLimitHooks
from answerdesk.serve.base import CompositeHooks, RequestHooks


def service_hooks(settings: Settings) -> RequestHooks:
    """Raises :class:`~answerdesk.errors.ConfigError` for an unknown lineage store kind."""
    counters = SqliteCounterStore(settings.store.path)
    hooks: list[RequestHooks] = [RateLimitHooks(settings.limits, counters), BudgetHooks(settings.budgets, counters)]
    if settings.lineage.enabled:
        hooks.append(LineageHooks(settings.lineage, build_blob_store(settings.lineage)))
    return CompositeHooks(hooks)
