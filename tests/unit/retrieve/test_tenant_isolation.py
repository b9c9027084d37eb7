"""Property: whatever the corpus, query, filters and k, a tenant never receives another tenant's chunks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from answerdesk.config import ChunkingSettings
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.ingest.indexer import Ingestor
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.store.filters import parse_filter
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal
from tests.conftest import make_document

WORDS = ["refund", "invoice", "label", "parcel", "tracking", "plan", "return", "vat", "password", "carrier"]
TENANTS = [None, "acme", "globex", "initech"]

documents = st.lists(
    st.tuples(
        st.sampled_from(TENANTS),
        st.sampled_from([None, "eu", "us"]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=30),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=documents,
    who=st.sampled_from(TENANTS),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    region_filter=st.sampled_from([None, "region=eu", "region:in=eu,us", "region:ne=us"]),
    k=st.integers(min_value=1, max_value=20),
    mode=st.sampled_from(["hybrid", "bm25", "vector"]),
)
def test_a_tenant_never_sees_another_tenants_chunks(
    docs: list[tuple[str | None, str | None, list[str]]],
    who: str | None,
    query: str,
    region_filter: str | None,
    k: int,
    mode: str,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteIndex(Path(tmp) / "kb.db")
        embedder = FakeEmbedder()
        owner = {}
        corpus = []
        for i, (tenant, region, words) in enumerate(docs):
            doc_id = f"doc{i}"
            owner[doc_id] = tenant
            corpus.append(make_document(doc_id, " ".join(words), tenant=tenant, region=region))
        Ingestor(
            store, embedder, ChunkingSettings.model_construct(size_tokens=8, overlap_tokens=2, embed_tokens=8)
        ).index(corpus)
        retriever = HybridRetriever(store, embedder, IdentityReranker())
        principal = Principal(subject="p", tenant=who)
        filters = [parse_filter(region_filter)] if region_filter else []
        result = retriever.search(query, principal=principal, filters=filters, k=k, mode=mode)  # type: ignore[arg-type]
        for chunk in result.chunks:
            assert owner[chunk.document_id] in (None, who), (
                f"{who!r} received {chunk.document_id} of tenant {owner[chunk.document_id]!r}"
            )
        # Everything the caller may read and that matches is reachable: isolation is not over-blocking.
        readable = {d for d, t in owner.items() if t in (None, who)}
        if mode == "vector" and not filters and readable:
            assert len(result.chunks) == min(k, store.counts()["chunks"] - _foreign_chunks(store, who))
        store.close()


def _foreign_chunks(store: SqliteIndex, who: str | None) -> int:
    return sum(d.chunk_count for d in store.documents() if d.meta.get("tenant") not in (None, who))
