"""Where lineage records live: a blob store of keys such as ``responses/acme/2026-12-02/<request id>.json``.

Small on purpose, so that an S3 backend maps onto ``PutObject``/``GetObject``/``ListObjectsV2``/
``DeleteObject`` one to one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BlobStore(Protocol):
    """Immutable blobs by key (``/``-separated). Writes replace a blob whole: a reader sees the old bytes or
    the new, never a part."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key``. Raises :class:`~answerdesk.errors.StoreError` when it cannot."""
        ...

    def get(self, key: str) -> bytes:
        """The blob at ``key``; raises :class:`~answerdesk.errors.NotFound` when there is none."""
        ...

    def names(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix``, in sorted order."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob at ``key`` (no error when it is already gone)."""
        ...
