"""Resolves the configured embedder ``kind`` to a backend, in one place."""

from __future__ import annotations

from answerdesk.config import EmbedderSettings
from answerdesk.embed.base import Embedder
from answerdesk.errors import ConfigError

KNOWN_KINDS = ("local", "fake")


def build_embedder(settings: EmbedderSettings) -> Embedder:
    """The configured backend, behind the query-vector cache unless ``query_cache_size`` is 0. Raises
    :class:`ConfigError` for an unknown kind, listing the known ones."""
    embedder = _backend(settings)
    if settings.query_cache_size > 0:
        from answerdesk.embed.cache import CachedEmbedder

        return CachedEmbedder(embedder, max_entries=settings.query_cache_size)
    return embedder


def _backend(settings: EmbedderSettings) -> Embedder:
    if settings.kind == "local":
        from answerdesk.embed.local import LocalEmbedder

        return LocalEmbedder(
            settings.model,
            batch_size=settings.batch_size,
            max_seq_length=settings.max_seq_length,
            threads=settings.threads,
            query_threads=settings.query_threads,
            runtime=settings.runtime,
            cache_dir=settings.cache_dir,
            query_precision=settings.query_precision,
        )
    if settings.kind == "fake":
        from answerdesk.embed.fake import FakeEmbedder

        return FakeEmbedder()
    raise ConfigError(f"embedder.kind '{settings.kind}' is unknown; known kinds: {', '.join(KNOWN_KINDS)}")
