"""Resolves the configured embedder ``kind`` to a backend, in one place."""

from __future__ import annotations

from answerdesk.config import EmbedderSettings
from answerdesk.embed.base import Embedder
from answerdesk.errors import ConfigError

KNOWN_KINDS = ("local", "fake")


def build_embedder(settings: EmbedderSettings) -> Embedder:
    """Raises :class:`ConfigError` for an unknown kind, listing the known ones."""
    if settings.kind == "local":
        from answerdesk.embed.local import LocalEmbedder

        return LocalEmbedder(
            settings.model,
            batch_size=settings.batch_size,
            max_seq_length=settings.max_seq_length,
            threads=settings.threads,
            query_threads=settings.query_threads,
        )
    if settings.kind == "fake":
        from answerdesk.embed.fake import FakeEmbedder

        return FakeEmbedder()
    raise ConfigError(f"embedder.kind '{settings.kind}' is unknown; known kinds: {', '.join(KNOWN_KINDS)}")
