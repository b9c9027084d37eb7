"""Builds the guardrails from settings: the one place the edges (CLI, service) wire them."""

from __future__ import annotations

from pathlib import Path

from answerdesk.config import GuardSettings
from answerdesk.embed.base import Embedder
from answerdesk.guard.audit import SqliteAuditLog
from answerdesk.guard.guardrails import Guardrails
from answerdesk.guard.policy import PolicySource


def build_guardrails(settings: GuardSettings, *, embedder: Embedder | None, store_path: Path) -> Guardrails | None:
    """The guardrails ``settings`` ask for, auditing into the store at ``store_path``; ``None`` when disabled.
    Raises :class:`ConfigError` for a policy file that is missing or does not validate."""
    if not settings.enabled:
        return None
    audit = SqliteAuditLog(store_path) if settings.audit else None
    return Guardrails(PolicySource(settings.policy), embedder=embedder, audit=audit)
