"""The configured ingestor: chunking, batching, the file size limit and sentence vectors from the settings."""

from __future__ import annotations

from answerdesk.config import Settings
from answerdesk.embed.base import Embedder
from answerdesk.ingest.indexer import Ingestor
from answerdesk.store.base import DocumentStore


def build_ingestor(store: DocumentStore, embedder: Embedder, settings: Settings) -> Ingestor:
    ingest = settings.ingest
    return Ingestor(
        store,
        embedder,
        settings.chunking,
        batch_chunks=ingest.batch_chunks,
        max_file_bytes=int(ingest.max_file_mb * 1024 * 1024),
        sentence_vectors=ingest.sentence_vectors,
    )
