from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from answerdesk.config import ChunkingSettings
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.errors import InputError
from answerdesk.ingest.indexer import Ingestor
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.store.filters import parse_filter
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal
from tests.conftest import make_document

WHO = Principal(subject="agent")


@pytest.fixture
def retriever(tmp_path: Path) -> Iterator[HybridRetriever]:
    store = SqliteIndex(tmp_path / "kb.db")
    Ingestor(store, FakeEmbedder(), ChunkingSettings()).index(
        [
            make_document("refunds", "Annual plans are refunded pro rata within 30 days.", region="us"),
            make_document("refunds-eu", "EU customers may withdraw within 14 days for a full refund.", region="eu"),
            make_document("labels", "Print labels from Orders, then Print. Thermal printers use 4x6 labels."),
            make_document("tracking", "Tracking updates arrive every 4 hours from the carrier."),
        ]
    )
    yield HybridRetriever(store, FakeEmbedder(), IdentityReranker(), candidates=10)
    store.close()


def test_hybrid_finds_the_right_document_and_reports_timings(retriever: HybridRetriever) -> None:
    result = retriever.search("how do I print labels", principal=WHO, k=2)
    assert result.chunks[0].document_id == "labels"
    assert {"bm25", "embed", "vector", "fuse", "rerank"} <= set(result.timings)
    assert "bm25_rank" in result.chunks[0].signals and "vector_rank" in result.chunks[0].signals


def test_k_limits_and_filters_apply(retriever: HybridRetriever) -> None:
    result = retriever.search("refund", principal=WHO, k=6, filters=[parse_filter("region=eu")])
    assert [c.document_id for c in result.chunks] == ["refunds-eu"]
    assert len(retriever.search("refund labels tracking", principal=WHO, k=1).chunks) == 1


@pytest.mark.parametrize("mode", ["bm25", "vector"])
def test_single_retriever_modes(retriever: HybridRetriever, mode: str) -> None:
    result = retriever.search("tracking updates carrier", principal=WHO, mode=mode)  # type: ignore[arg-type]
    assert result.chunks[0].document_id == "tracking"


def test_weighted_fusion_also_works(tmp_path: Path) -> None:
    store = SqliteIndex(tmp_path / "w.db")
    Ingestor(store, FakeEmbedder(), ChunkingSettings()).index(
        [make_document("a", "alpha beta"), make_document("b", "gamma")]
    )
    r = HybridRetriever(store, FakeEmbedder(), IdentityReranker(), fusion="weighted", vector_weight=0.7)
    assert r.search("alpha", principal=WHO).chunks[0].document_id == "a"


@pytest.mark.parametrize(
    ("query", "k", "message"), [("   ", 6, "empty"), ("x" * 5000, 6, "limit"), ("ok", 0, "k must")]
)
def test_bad_queries_are_input_errors(retriever: HybridRetriever, query: str, k: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        retriever.search(query, principal=WHO, k=k)
