from __future__ import annotations

import itertools

from answerdesk.embed.fake import WhitespaceTokenCounter
from answerdesk.ingest.chunking import chunk_document, embed_window
from answerdesk.types import Document, DocumentMeta, Section

COUNTER = WhitespaceTokenCounter()


def doc(*sections: tuple[tuple[str, ...], str], title: str = "Guide") -> Document:
    return Document("d", "kb/d.md", tuple(Section(h, t) for h, t in sections), DocumentMeta(title=title), "0")


def words(n: int, stem: str = "w") -> str:
    return " ".join(f"{stem}{i}." for i in range(n))


def test_no_chunk_exceeds_the_size_and_nothing_is_lost() -> None:
    text = "\n\n".join(words(37, f"p{j}_") for j in range(9))
    chunks = chunk_document(doc((("Guide",), text)), COUNTER, size=50, overlap=10, embed_tokens=40)
    assert all(len(c.text.split()) <= 50 for c in chunks)
    seen = {w for c in chunks for w in c.text.split()}
    assert seen == set(text.split())
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.id == f"d::{c.ordinal}" for c in chunks)


def test_consecutive_chunks_overlap_within_a_section() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(60))
    chunks = chunk_document(doc((("A",), text)), COUNTER, size=40, overlap=10, embed_tokens=40)
    assert len(chunks) > 2
    for a, b in itertools.pairwise(chunks):
        shared = set(a.text.split()[-10:]) & set(b.text.split()[:10])
        assert shared, "the next chunk should start with the end of the previous one"


def test_chunks_keep_their_heading_path_and_sections_are_not_mixed() -> None:
    chunks = chunk_document(
        doc(
            (("Refunds", "Monthly"), words(30, "m")),
            (("Refunds", "Annual"), words(30, "a")),
        ),
        COUNTER,
        size=40,
        overlap=5,
        embed_tokens=40,
    )
    assert [c.heading_path for c in chunks] == [("Refunds", "Monthly"), ("Refunds", "Annual")]
    assert all(w.startswith("a") for w in chunks[1].text.split())


def test_small_sections_are_packed_together() -> None:
    chunks = chunk_document(
        doc((("FAQ", "Q1"), "Short answer one."), (("FAQ", "Q2"), "Short answer two.")),
        COUNTER,
        size=100,
        overlap=10,
        embed_tokens=100,
    )
    assert len(chunks) == 1
    assert "one." in chunks[0].text and "two." in chunks[0].text


def test_long_table_is_split_by_rows_and_repeats_its_header() -> None:
    header = "| Plan | Window |\n| --- | --- |"
    rows = "\n".join(f"| plan{i} | {i} days |" for i in range(40))
    chunks = chunk_document(doc((("T",), f"{header}\n{rows}")), COUNTER, size=60, overlap=0, embed_tokens=60)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith("| Plan | Window |\n| --- | --- |")


def test_a_single_huge_word_run_is_cut_into_windows() -> None:
    chunks = chunk_document(doc(((), "x " * 1000)), COUNTER, size=100, overlap=0, embed_tokens=50)
    assert len(chunks) == 10
    assert all(c.token_count <= 100 for c in chunks)


def test_embed_window_leads_with_title_and_heading_and_is_cut() -> None:
    text = embed_window("Refund policy", ("Refund policy", "Annual"), words(500), COUNTER, 20)
    assert text.startswith("Refund policy > Annual\n")
    assert len(text.split()) == 20


def test_empty_document_gives_no_chunks() -> None:
    assert chunk_document(doc((("A",), "   \n\n ")), COUNTER, size=10, overlap=2, embed_tokens=10) == []
