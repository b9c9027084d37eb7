"""The one place a lineage blob store is chosen by ``lineage.kind``."""

from __future__ import annotations

from answerdesk.config import LineageSettings
from answerdesk.errors import ConfigError
from answerdesk.lineage.base import BlobStore
from answerdesk.lineage.local import LocalBlobStore

KNOWN_KINDS = ("local",)


def build_blob_store(settings: LineageSettings) -> BlobStore:
    """Raises :class:`ConfigError` for an unknown kind, naming the known ones."""
    if settings.kind == "local":
        return LocalBlobStore(settings.path)
    raise ConfigError(f"lineage.kind '{settings.kind}' is unknown; known kinds: {', '.join(KNOWN_KINDS)}")
