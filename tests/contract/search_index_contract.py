"""The contract every store backend must pass (SQLite today, Postgres + pgvector next).

A backend's test module subclasses :class:`SearchIndexContract` and provides an ``index`` fixture that
returns an empty store implementing both ``DocumentStore`` and ``SearchIndex`` with ``FakeEmbedder`` dims.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from answerdesk.embed.fake import FakeEmbedder
from answerdesk.errors import InputError
from answerdesk.store.base import IndexedDocument
from answerdesk.store.filters import parse_filter
from answerdesk.types import Chunk, Document, FilterClause, Principal
from tests.conftest import make_document

EMBEDDER = FakeEmbedder(dim=64)
ANYONE = Principal(subject="agent")
ACME = Principal(subject="a", tenant="acme")
GLOBEX = Principal(subject="g", tenant="globex")


def indexed(doc: Document, pieces: list[str] | None = None, fingerprint: str = "fp1") -> IndexedDocument:
    texts = pieces or [doc.text]
    chunks = [
        Chunk(f"{doc.id}::{i}", doc.id, i, t, t, doc.sections[0].heading_path, len(t.split()))
        for i, t in enumerate(texts)
    ]
    return IndexedDocument(doc, chunks, EMBEDDER.embed_passages(texts), fingerprint)


def query_vector(text: str) -> Any:
    return EMBEDDER.embed_queries([text])[0]


class SearchIndexContract:
    @pytest.fixture
    def index(self) -> Any:  # pragma: no cover - overridden by each backend
        raise NotImplementedError

    def test_write_then_find_by_words_and_by_vector(self, index: Any) -> None:
        index.write(
            [
                indexed(make_document("refunds", "Refunds reach the original card within five business days.")),
                indexed(make_document("labels", "Print shipping labels from the Orders page.")),
            ]
        )
        lexical = index.lexical("refund card", principal=ANYONE)
        assert lexical and lexical[0].document_id == "refunds"
        assert lexical[0].signals["bm25"] > 0
        vector = index.vector(query_vector("print shipping labels"), principal=ANYONE)
        assert vector[0].document_id == "labels"
        assert -1.0 <= vector[0].signals["cosine"] <= 1.0001

    def test_sentence_vectors_come_back_as_written(self, index: Any) -> None:
        doc = make_document("refunds", "Refunds take five days. Labels print from Orders.")
        item = indexed(doc, ["Refunds take five days.", "Labels print from Orders."])
        sentences = [
            EMBEDDER.embed_passages(["Refunds take five days.", "Refunds reach the card."]),
            EMBEDDER.embed_passages([]),
        ]
        index.write([IndexedDocument(item.document, item.chunks, item.vectors, "fp1", sentences)])
        index.write([indexed(make_document("labels", "Print shipping labels from the Orders page."))])
        got = index.sentence_vectors(["refunds::0", "refunds::1", "labels::0", "nope::0"])
        assert set(got) == {"refunds::0", "refunds::1"}  # written without them: left out
        np.testing.assert_allclose(got["refunds::0"], sentences[0], rtol=1e-6)
        assert got["refunds::1"].shape == (0, EMBEDDER.dim)
        assert index.sentence_vectors([]) == {}

    def test_results_carry_what_a_citation_needs(self, index: Any) -> None:
        doc = make_document(
            "eu-returns",
            "Return labels are free in the EU.",
            heading=("Returns", "EU"),
            title="Returns",
            region="eu",
            url="https://help.example/returns",
            tags=("returns",),
        )
        index.write([indexed(doc)])
        hit = index.lexical("return labels", principal=ANYONE)[0]
        assert (hit.chunk_id, hit.title, hit.source, hit.url) == (
            "eu-returns::0",
            "Returns",
            "kb/eu-returns.md",
            "https://help.example/returns",
        )
        assert hit.heading_path == ("Returns", "EU")
        assert hit.meta["region"] == "eu" and hit.meta["tags"] == ["returns"]

    def test_fingerprints_and_replace_in_place(self, index: Any) -> None:
        doc = make_document("faq", "Old answer about passwords.")
        index.write([indexed(doc, fingerprint="v1")])
        assert index.fingerprints(["faq", "missing"]) == {"faq": "v1"}
        new = make_document("faq", "New answer about two factor authentication.")
        index.write([indexed(new, ["New answer about two", "factor authentication."], fingerprint="v2")])
        assert index.fingerprints(["faq"]) == {"faq": "v2"}
        assert index.lexical("passwords", principal=ANYONE) == []
        assert index.documents()[0].chunk_count == 2
        hits = index.vector(query_vector("Old answer about passwords."), principal=ANYONE, limit=10)
        assert {h.chunk_id for h in hits} == {"faq::0", "faq::1"}

    def test_delete_by_prefix_reaches_chunks_vectors_and_lexical(self, index: Any) -> None:
        index.write(
            [
                indexed(make_document("a", "alpha parcel", source="kb/billing/a.md")),
                indexed(make_document("b", "beta parcel", source="kb/billing/b.md")),
                indexed(make_document("c", "gamma parcel", source="kb/shipping/c.md")),
            ]
        )
        assert sorted(index.delete(source_prefix="kb/billing/")) == ["a", "b"]
        assert [d.id for d in index.documents()] == ["c"]
        assert {h.document_id for h in index.lexical("parcel", principal=ANYONE)} == {"c"}
        assert {h.document_id for h in index.vector(query_vector("parcel"), principal=ANYONE)} == {"c"}
        assert index.delete(ids=["c", "nope"]) == ["c"]
        assert index.lexical("parcel", principal=ANYONE) == []
        assert index.vector(query_vector("parcel"), principal=ANYONE) == []

    def test_empty_prefix_is_refused(self, index: Any) -> None:
        with pytest.raises(InputError):
            index.delete(source_prefix="")
        with pytest.raises(InputError):
            index.delete()

    def test_filters_eq_in_ne_prefix_tag_and_date_range(self, index: Any) -> None:
        index.write(
            [
                indexed(
                    make_document(
                        "eu",
                        "returns policy",
                        region="eu",
                        tags=("returns", "vat"),
                        updated_at=_date("2026-03-01"),
                    )
                ),
                indexed(
                    make_document(
                        "us", "returns policy", region="us", tags=("returns",), updated_at=_date("2025-06-01")
                    )
                ),
                indexed(make_document("any", "returns policy", source="kb/global/any.md")),
            ]
        )

        def ids(*exprs: str) -> set[str]:
            clauses = [parse_filter(e) for e in exprs]
            lex = {h.document_id for h in index.lexical("returns policy", principal=ANYONE, filters=clauses)}
            vec = {h.document_id for h in index.vector(query_vector("returns"), principal=ANYONE, filters=clauses)}
            assert lex == vec, "lexical and vector search must apply the same filters"
            return lex

        assert ids("region=eu") == {"eu"}
        assert ids("region:in=eu,us") == {"eu", "us"}
        assert ids("region:ne=eu") == {"us", "any"}
        assert ids("tag=vat") == {"eu"}
        assert ids("updated_at:gte=2026-01-01") == {"eu"}
        assert ids("updated_at:lt=2026-01-01") == {"us"}
        assert ids("source:prefix=kb/global/") == {"any"}
        assert ids("region=eu", "tag=returns") == {"eu"}

    def test_unknown_operator_is_an_error_not_equality(self, index: Any) -> None:
        index.write([indexed(make_document("eu", "returns", region="eu"))])
        bad = FilterClause("region", "like", "eu")
        with pytest.raises(InputError, match="unknown operator 'like'"):
            index.lexical("returns", principal=ANYONE, filters=[bad])
        with pytest.raises(InputError, match="unknown operator 'like'"):
            index.vector(query_vector("returns"), principal=ANYONE, filters=[bad])

    def test_tenant_isolation_and_shared_documents(self, index: Any) -> None:
        index.write(
            [
                indexed(make_document("shared", "invoice help")),
                indexed(make_document("acme-only", "invoice help acme", tenant="acme")),
                indexed(make_document("globex-only", "invoice help globex", tenant="globex")),
            ]
        )
        for who, expected in (
            (ANYONE, {"shared"}),
            (ACME, {"shared", "acme-only"}),
            (GLOBEX, {"shared", "globex-only"}),
        ):
            lex = {h.document_id for h in index.lexical("invoice", principal=who)}
            vec = {h.document_id for h in index.vector(query_vector("invoice help"), principal=who)}
            assert lex == expected and vec == expected

    def test_a_tenant_finds_its_few_matches_behind_many_better_ones_of_another(self, index: Any) -> None:
        # Another tenant's documents outrank the caller's on every word; the caller still gets its own, best first.
        strong = [make_document(f"g{i}", "refund " * 8 + f"policy {i}", tenant="globex") for i in range(60)]
        weak = [make_document(f"a{i}", "refund " + "note " * (12 - 3 * i), tenant="acme") for i in range(3)]
        index.write([indexed(d) for d in strong + weak])
        hits = index.lexical("refund", principal=ACME, limit=5)
        assert [h.document_id for h in hits] == ["a2", "a1", "a0"]

    def test_tenant_cannot_be_widened_by_filters(self, index: Any) -> None:
        with pytest.raises(InputError, match="identity"):
            index.lexical("x", principal=ACME, filters=[FilterClause("tenant", "eq", "globex")])

    def test_compliance_scope_needs_the_scope(self, index: Any) -> None:
        index.write([indexed(make_document("pci", "card vault procedure", compliance_scope="pci"))])
        assert index.lexical("card vault", principal=ANYONE) == []
        assert index.vector(query_vector("card vault"), principal=ANYONE) == []
        cleared = Principal(subject="s", compliance_scopes=frozenset({"pci"}))
        assert index.lexical("card vault", principal=cleared)[0].document_id == "pci"

    def test_query_syntax_is_not_interpreted(self, index: Any) -> None:
        index.write([indexed(make_document("q", 'What does NEAR mean? Quotes "and" stars*'))])
        for hostile in ('NEAR(" a', "*", '"', "a OR", "(x", "col:umn", "-", "😀"):
            index.lexical(hostile, principal=ANYONE)  # must not raise

    def test_limit_and_order(self, index: Any) -> None:
        index.write([indexed(make_document(f"d{i}", "parcel " * (i + 1) + "word")) for i in range(10)])
        hits = index.lexical("parcel", principal=ANYONE, limit=3)
        assert len(hits) == 3
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        vec = index.vector(query_vector("parcel"), principal=ANYONE, limit=4)
        assert len(vec) == 4 and [h.score for h in vec] == sorted((h.score for h in vec), reverse=True)

    def test_wrong_vector_size_is_an_input_error(self, index: Any) -> None:
        index.write([indexed(make_document("a", "alpha"))])
        with pytest.raises(InputError):
            index.vector(np.zeros(7, dtype=np.float32), principal=ANYONE)


def _date(text: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(text)
