"""Ingest stores, beside each chunk's vector, one vector per sentence that can hold an answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from answerdesk.config import ChunkingSettings, IngestSettings, Settings
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.generate.sentences import chunk_sentences
from answerdesk.ingest.factory import build_ingestor
from answerdesk.ingest.indexer import Ingestor
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal
from tests.conftest import make_document

TEXT = "Annual plans are refunded within 30 days. After that, refunds are prorated. Short.\nContact billing."


def test_each_chunk_gets_its_sentence_vectors(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    index = SqliteIndex(tmp_path / "kb.db")
    try:
        report = Ingestor(index, embedder, ChunkingSettings()).index([make_document("refunds", TEXT, title="Refunds")])
        assert not report.failures
        chunk = index.lexical("annual plans refunded", principal=Principal(subject="agent"))[0]
        stored = index.sentence_vectors([chunk.chunk_id])[chunk.chunk_id]
        sentences = chunk_sentences(chunk.text)
        assert sentences == ["Annual plans are refunded within 30 days.", "After that, refunds are prorated."]
        np.testing.assert_allclose(stored, embedder.embed_passages(sentences), rtol=1e-6)
    finally:
        index.close()


def test_without_sentence_vectors_nothing_is_stored_and_turning_them_on_reindexes(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "kb.db")
    doc = make_document("refunds", TEXT, title="Refunds")
    try:
        Ingestor(index, FakeEmbedder(), ChunkingSettings(), sentence_vectors=False).index([doc])
        chunk = index.lexical("annual plans refunded", principal=Principal(subject="agent"))[0]
        assert index.sentence_vectors([chunk.chunk_id]) == {}
        again = Ingestor(index, FakeEmbedder(), ChunkingSettings()).index([doc])
        assert again.unchanged == 0  # the fingerprint says what was stored: the document is indexed again
        assert chunk.chunk_id in index.sentence_vectors([chunk.chunk_id])
    finally:
        index.close()


def test_the_configured_ingestor_follows_the_sentence_vectors_setting(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "kb.db")
    settings = Settings(ingest=IngestSettings(sentence_vectors=False))
    try:
        build_ingestor(index, FakeEmbedder(), settings).index([make_document("refunds", TEXT, title="Refunds")])
        chunk = index.lexical("annual plans refunded", principal=Principal(subject="agent"))[0]
        assert index.sentence_vectors([chunk.chunk_id]) == {}
    finally:
        index.close()
