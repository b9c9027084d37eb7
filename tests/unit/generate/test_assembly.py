from __future__ import annotations

import numpy as np

from answerdesk.generate.assembly import assemble, drop_unknown_citations, sentences_needing_vectors
from answerdesk.types import ScoredChunk

SOURCES = [
    ScoredChunk("refunds::0", "refunds", "Annual plans can be refunded within 30 days.", 1.0, title="Refunds",
                source="kb/refunds.md"),
    ScoredChunk("labels::0", "labels", "Print labels from the Orders page.", 0.9, title="Labels"),
]  # fmt: skip


def test_unknown_citations_are_dropped_and_reported() -> None:
    text, dropped = drop_unknown_citations("Refunds take 30 days [1, 7]. See also [9].", {1, 2})
    assert text == "Refunds take 30 days [1]. See also."
    assert dropped == (7, 9)


def test_support_is_checked_against_the_cited_source() -> None:
    result = assemble(
        "Annual plans are refunded within 30 days [1]. Labels print from the Orders page [1]. Hello.", SOURCES
    )
    first, second, third = result.sentences
    assert first.supported and first.cited == (1,)
    assert not second.supported  # true, but not what source 1 says
    assert third.cited == () and not third.supported
    assert [c.document_id for c in result.citations] == ["refunds"]
    assert result.citations[0].source == "kb/refunds.md"
    assert result.citation_coverage == 2 / 3


def test_citation_after_the_full_stop_belongs_to_the_sentence() -> None:
    result = assemble("Annual plans can be refunded within 30 days. [1]", SOURCES)
    assert len(result.sentences) == 1 and result.sentences[0].supported


def test_embedding_similarity_settles_an_unsure_sentence() -> None:
    text = "Yearly subscriptions get money back within 30 days [1]."
    unsure = sentences_needing_vectors(text, SOURCES)
    assert unsure == ["Yearly subscriptions get money back within 30 days."]
    vec = np.ones(4, dtype=np.float32) / 2
    result = assemble(text, SOURCES, sentence_vectors={unsure[0]: vec}, chunk_vectors={"refunds::0": vec})
    assert result.sentences[0].supported and result.sentences[0].semantic == 1.0
