"""Loaders: files, folders and globs in; cleaned documents, or a clear reason why not, out."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from pypdf import PdfWriter

from answerdesk.errors import IngestError
from answerdesk.ingest.loaders import SUPPORTED_EXTENSIONS, SourceFile, discover, load
from answerdesk.types import Document, IngestFailure, Section


@pytest.fixture
def kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small knowledge base folder, with the working directory at its parent."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "kb"
    (root / "billing").mkdir(parents=True)
    (root / ".drafts").mkdir()
    (root / "billing" / "refunds.md").write_text("# Refunds\nRefunds take 5 days.\n", encoding="utf-8")
    (root / "billing" / "refunds.md.meta.json").write_text('{"owner": "ann"}', encoding="utf-8")
    (root / "faq.html").write_text("<h1>FAQ</h1><p>Answers.</p>", encoding="utf-8")
    (root / "notes.txt").write_text("Plain notes.", encoding="utf-8")
    (root / "logo.png").write_bytes(b"\x89PNG")
    (root / ".hidden.md").write_text("# Hidden\nsecret", encoding="utf-8")
    (root / ".drafts" / "draft.md").write_text("# Draft\nnot yet", encoding="utf-8")
    return root


def _source(path: Path, root: Path | None = None) -> SourceFile:
    return SourceFile(path=path, root=root or path.parent, display=path.name)


def _load_one(path: Path, *, cli_meta: dict[str, str] | None = None) -> Document:
    documents, failures = load(_source(path), cli_meta=cli_meta or {})
    assert failures == []
    assert len(documents) == 1
    return documents[0]


def make_pdf(text: str, *, title: str | None = None) -> bytes:
    """A minimal valid one-page PDF showing ``text`` in Helvetica, with correct xref offsets."""
    stream = b"BT /F1 12 Tf 72 712 Td (" + text.encode("latin-1") + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title is not None:
        objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info %d 0 R" % len(objects) if title is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref_at)
    return bytes(out)


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# -- discover -----------------------------------------------------------------------------------------------


def test_discover_walks_folder_sorted_skipping_hidden_sidecars_and_unsupported(kb: Path) -> None:
    sources, failures = discover(["kb"])
    assert failures == []
    assert [s.display for s in sources] == ["kb/billing/refunds.md", "kb/faq.html", "kb/notes.txt"]
    assert all(s.root == kb for s in sources)


def test_discover_file_argument_has_its_folder_as_root(kb: Path) -> None:
    sources, failures = discover(["kb/billing/refunds.md"])
    assert failures == []
    assert sources == [SourceFile(kb / "billing" / "refunds.md", kb / "billing", "kb/billing/refunds.md")]


def test_discover_glob_roots_at_deepest_plain_folder(kb: Path) -> None:
    sources, failures = discover(["kb/**/*.md"])
    assert failures == []
    assert [(s.display, s.root) for s in sources] == [("kb/billing/refunds.md", kb)]


def test_discover_reports_missing_paths_and_empty_globs(kb: Path) -> None:
    sources, failures = discover(["kb/missing.md", "kb/*.docx", "kb/notes.txt"])
    assert [s.display for s in sources] == ["kb/notes.txt"]
    assert failures == [
        IngestFailure("kb/missing.md", "no such file or folder"),
        IngestFailure("kb/*.docx", "no such file or folder matches this pattern"),
    ]


def test_discover_rejects_unsupported_file_listing_supported_types(kb: Path) -> None:
    _, failures = discover(["kb/logo.png"])
    assert len(failures) == 1
    assert failures[0].source == "kb/logo.png"
    assert "unsupported file type ('.png')" in failures[0].reason
    assert all(ext in failures[0].reason for ext in SUPPORTED_EXTENSIONS)


def test_discover_lists_each_file_once(kb: Path) -> None:
    sources, _ = discover(["kb/notes.txt", "kb", "./kb/notes.txt"])
    assert [s.display for s in sources].count("kb/notes.txt") == 1


def test_discover_shows_paths_outside_cwd_as_absolute(kb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(kb / "billing")
    sources, _ = discover([os.fspath(kb / "notes.txt")])
    assert sources[0].display == (kb / "notes.txt").as_posix()


# -- documents from files -----------------------------------------------------------------------------------


def test_markdown_document_id_is_path_relative_to_root(kb: Path) -> None:
    sources, _ = discover(["kb"])
    documents, failures = load(sources[0])
    assert failures == []
    [document] = documents
    assert document.id == "billing/refunds.md"
    assert document.source == "kb/billing/refunds.md"
    assert document.meta.title == "Refunds"
    assert document.sections == (Section(("Refunds",), "Refunds take 5 days."),)


def test_metadata_layers_front_matter_then_sidecar_then_cli(tmp_path: Path) -> None:
    page = tmp_path / "refunds.md"
    page.write_text(
        "---\nid: refund-policy\nowner: ann\nregion: us\nplan: pro\ntags: [billing]\n---\n# Refunds\nText.\n",
        encoding="utf-8",
    )
    (tmp_path / "refunds.md.meta.json").write_text(
        json.dumps({"owner": "bob", "region": "eu", "tags": ["refunds"]}), encoding="utf-8"
    )
    document = _load_one(page, cli_meta={"region": "uk", "tags": "urgent"})
    assert document.id == "refund-policy"
    assert document.meta.plan == "pro"  # only front matter sets it
    assert document.meta.owner == "bob"  # sidecar beats front matter
    assert document.meta.region == "uk"  # --meta beats both
    assert document.meta.tags == ("billing", "refunds", "urgent")


def test_bad_sidecar_value_names_sidecar_and_key(tmp_path: Path) -> None:
    page = tmp_path / "refunds.md"
    page.write_text("# Refunds\nText.", encoding="utf-8")
    (tmp_path / "refunds.md.meta.json").write_text('{"tenant": 7}', encoding="utf-8")
    with pytest.raises(IngestError, match=r"refunds\.md\.meta\.json: metadata 'tenant' must be a string, got 7"):
        load(_source(page))


def test_malformed_front_matter_names_the_yaml_problem(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text("---\ntitle: Refunds\ntags: [billing\n---\n# Refunds\n", encoding="utf-8")
    with pytest.raises(IngestError) as caught:
        load(_source(page))
    assert caught.value.source == "broken.md"
    assert "front matter is not valid YAML" in caught.value.reason
    assert "line" in caught.value.reason


def test_sidecar_that_is_not_json_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "a.md"
    page.write_text("Text.", encoding="utf-8")
    (tmp_path / "a.md.meta.json").write_text("{owner: ann}", encoding="utf-8")
    with pytest.raises(IngestError, match=r"a\.md\.meta\.json is not valid JSON"):
        load(_source(page))


def test_same_input_gives_same_hash_and_metadata_change_changes_it(tmp_path: Path) -> None:
    page = tmp_path / "refunds.md"
    page.write_text("# Refunds\nRefunds take 5 days.", encoding="utf-8")
    first = _load_one(page)
    assert _load_one(page).sha256 == first.sha256
    assert _load_one(page, cli_meta={"region": "eu"}).sha256 != first.sha256
    page.write_text("# Refunds\nRefunds take 7 days.", encoding="utf-8")
    assert _load_one(page).sha256 != first.sha256


def test_html_file_loads_title_and_clean_text(tmp_path: Path) -> None:
    page = tmp_path / "faq.htm"
    page.write_text(
        "<html><head><title>FAQ</title></head><body><nav>Home</nav><main><p>Answers here.</p></main></body></html>",
        encoding="utf-8",
    )
    document = _load_one(page)
    assert document.meta.title == "FAQ"
    assert document.text == "Answers here."


def test_plain_text_title_falls_back_to_file_name(tmp_path: Path) -> None:
    page = tmp_path / "shipping-times.txt"
    page.write_text("Orders ship in 2 days.", encoding="utf-8")
    document = _load_one(page)
    assert document.meta.title == "shipping-times"
    assert document.sections == (Section((), "Orders ship in 2 days."),)


def test_pdf_with_text_loads_page_text_and_title(tmp_path: Path) -> None:
    pdf = tmp_path / "refunds.pdf"
    pdf.write_bytes(make_pdf("Refunds take 5 days", title="Refund policy"))
    document = _load_one(pdf)
    assert document.text == "Refunds take 5 days"
    assert document.meta.title == "Refund policy"


def test_pdf_without_title_uses_file_name(tmp_path: Path) -> None:
    pdf = tmp_path / "refunds.pdf"
    pdf.write_bytes(make_pdf("Refunds take 5 days"))
    assert _load_one(pdf).meta.title == "refunds"


def test_pdf_without_extractable_text_is_an_error(tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(blank_pdf())
    with pytest.raises(IngestError, match="PDF has no extractable text"):
        load(_source(pdf))


def test_truncated_pdf_is_a_clean_error(tmp_path: Path) -> None:
    data = make_pdf("Refunds take 5 days")
    pdf = tmp_path / "broken.pdf"
    pdf.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="could not read PDF"):
        load(_source(pdf))


# -- files that cannot be ingested --------------------------------------------------------------------------


def test_file_over_size_limit_names_size_and_limit(tmp_path: Path) -> None:
    page = tmp_path / "big.txt"
    page.write_text("x" * 2048, encoding="utf-8")
    with pytest.raises(IngestError, match=r"file is 2,048 bytes .* over the limit of 1,024 bytes"):
        load(_source(page), max_bytes=1024)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "empty.md"
    page.write_bytes(b"")
    with pytest.raises(IngestError, match="file is empty"):
        load(_source(page))


def test_invalid_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    page = tmp_path / "latin1.txt"
    page.write_bytes("Café prices".encode("latin-1"))
    with pytest.raises(IngestError, match=r"not valid UTF-8 text: byte 0xe9 at offset 3"):
        load(_source(page))


def test_binary_data_is_not_text(tmp_path: Path) -> None:
    page = tmp_path / "image.md"
    page.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(IngestError, match=r"not valid UTF-8 text: NUL byte at offset 4"):
        load(_source(page))


def test_file_with_nothing_left_after_cleaning_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<html><body><nav>Home</nav><script>x()</script>\u200b</body></html>", encoding="utf-8")
    with pytest.raises(IngestError, match="no text left after cleaning"):
        load(_source(page))


# -- ticket exports -----------------------------------------------------------------------------------------

TICKETS_CSV = """Ticket_ID,Subject,Description,Resolution,Tags,Region,Requester
101,Refund not received,"I was promised a refund
last week.",Refund re-sent via bank transfer.,"billing,refunds",eu,jane@example.com
102,,,,,,
103,Cannot log in,Password reset mail never arrives.,,login,us,joe@example.com
104,Too many cells,a,b,c,d,e,f
"""


def test_csv_tickets_become_documents_and_bad_rows_failures(tmp_path: Path) -> None:
    export = tmp_path / "tickets.csv"
    export.write_text(TICKETS_CSV, encoding="utf-8-sig")  # as spreadsheet programs save it, with a BOM
    documents, failures = load(_source(export), cli_meta={"tenant": "acme"})
    assert [d.id for d in documents] == ["ticket-101", "ticket-103"]
    refund = documents[0]
    assert refund.meta.title == "Refund not received"
    assert refund.meta.doc_type == "ticket"
    assert refund.meta.tenant == "acme"
    assert refund.meta.region == "eu"
    assert refund.meta.tags == ("billing", "refunds")
    assert "jane@example.com" not in str(refund)  # unknown columns are not carried along
    assert refund.sections == (
        Section(("Question",), "I was promised a refund\nlast week."),
        Section(("Resolution",), "Refund re-sent via bank transfer."),
    )
    assert documents[1].sections == (Section(("Question",), "Password reset mail never arrives."),)
    assert failures == [
        IngestFailure("tickets.csv#row-2", "row has neither a subject nor a body"),
        IngestFailure(
            "tickets.csv#row-4", "row 4 has 8 cells but the header has 7; is a comma inside a cell left unquoted?"
        ),
    ]


def test_csv_without_subject_or_body_column_fails_whole_file(tmp_path: Path) -> None:
    export = tmp_path / "tickets.csv"
    export.write_text("id,status\n1,open\n", encoding="utf-8")
    with pytest.raises(IngestError, match="CSV header has no subject or body column"):
        load(_source(export))


def test_jsonl_tickets_with_comments_and_a_bad_line(tmp_path: Path) -> None:
    export = tmp_path / "tickets.jsonl"
    lines = [
        json.dumps(
            {
                "id": 7,
                "title": "Card declined",
                "question": "My card is declined at checkout.",
                "answer": "Ask the bank to allow online payments.",
                "comments": [{"body": "Tried another card."}, {"text": "Works now."}, "Closing."],
                "updated_at": "2024-06-01",
            }
        ),
        "{not json",
        json.dumps({"subject": "Invoice copy", "body": "Where is my invoice?", "tags": ["billing"]}),
        "",
        json.dumps({"id": 9, "subject": "Bad date", "body": "x", "updated_at": "soon"}),
    ]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    documents, failures = load(_source(export))
    assert [d.id for d in documents] == ["ticket-7", "tickets.jsonl#row-3"]
    card = documents[0]
    assert card.meta.title == "Card declined"
    assert str(card.meta.updated_at) == "2024-06-01"
    assert card.sections[-1] == Section(("Comments",), "Tried another card.\n\nWorks now.\n\nClosing.")
    assert documents[1].meta.tags == ("billing",)
    assert len(failures) == 2
    assert failures[0].source == "tickets.jsonl#row-2"
    assert failures[0].reason.startswith("line 2 is not valid JSON")
    assert failures[1].source == "tickets.jsonl#row-5"
    assert "metadata 'updated_at' must be a date" in failures[1].reason


def test_repeated_ticket_id_is_a_failure_not_an_overwrite(tmp_path: Path) -> None:
    export = tmp_path / "tickets.ndjson"
    row = {"id": 1, "subject": "Same", "body": "text"}
    export.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    documents, failures = load(_source(export))
    assert [d.id for d in documents] == ["ticket-1"]
    assert failures == [IngestFailure("tickets.ndjson#row-2", "ticket id 'ticket-1' repeats row 1")]


def test_ticket_export_rejects_one_id_for_every_ticket(tmp_path: Path) -> None:
    export = tmp_path / "tickets.jsonl"
    export.write_text('{"subject": "a", "body": "b"}\n', encoding="utf-8")
    with pytest.raises(IngestError, match="sets \\['id'\\] for a whole ticket export"):
        load(_source(export), cli_meta={"id": "everything"})
