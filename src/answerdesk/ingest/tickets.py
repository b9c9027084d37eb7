"""Ticket exports (Zendesk-style CSV or JSONL): one document per resolved ticket.

Columns are matched case-insensitively: id (``id``/``ticket_id``), subject, body, resolution, comments, plus
any known metadata key and ``tags``. A bad row is reported on its own; the rest of the file is ingested.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator, Mapping

from answerdesk.errors import IngestError
from answerdesk.ingest.cleaning import normalize_text
from answerdesk.ingest.loaders import SourceFile, build_document, check_layers, relative_id
from answerdesk.ingest.metadata import canonical_key, merge_meta, parse_meta
from answerdesk.types import KNOWN_META_KEYS, Document, IngestFailure, Section

_TICKET_FIELDS = {
    "id": ("id", "ticket_id"),
    "subject": ("subject", "title"),
    "body": ("body", "description", "question"),
    "resolution": ("resolution", "answer", "solution"),
    "comments": ("comments",),
}
_TICKET_SECTIONS = (("Question", "body"), ("Resolution", "resolution"), ("Comments", "comments"))
# "title" is read as the subject; every other known metadata key may be a column of its own.
_TICKET_META_COLUMNS = (frozenset(KNOWN_META_KEYS) | {"tags"}) - {"title"}
_Row = tuple[int, dict[str, object] | None, str | None]  # (row number, record, or why it is unreadable)


def _pick(record: Mapping[str, object], field: str) -> object:
    for alias in _TICKET_FIELDS[field]:
        value = record.get(alias)
        if value is not None and value != "":
            return value
    return None


def _ticket_text(record: Mapping[str, object], field: str) -> str:
    value = _pick(record, field)
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if field == "comments" and isinstance(value, list):
        return "\n\n".join(_comment_text(item) for item in value)
    raise ValueError(f"'{field}' must be text, got {type(value).__name__}")


def _comment_text(item: object) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        text = item.get("body", item.get("text"))
        if isinstance(text, str):
            return text
    raise ValueError("'comments' must be text, or a list of strings or of objects with 'body' or 'text'")


def _csv_rows(text: str, where: str) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise IngestError(where, "CSV has no readable header row") from exc
    if not any(alias in header for field in ("subject", "body") for alias in _TICKET_FIELDS[field]):
        accepted = ", ".join(_TICKET_FIELDS["subject"] + _TICKET_FIELDS["body"])
        raise IngestError(where, f"CSV header has no subject or body column (one of: {accepted}); got: {header}")
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader resumes at the next line, so one broken row does not cost the rest of the file.
            number += 1
            yield number, None, f"row {number} (line {reader.line_num}) is not readable CSV: {exc}"
            continue
        if not any(c.strip() for c in cells):
            continue  # a blank line is not a row
        number += 1
        if len(cells) > len(header):
            yield (
                number,
                None,
                (
                    f"row {number} has {len(cells)} cells but the header has {len(header)}; "
                    "is a comma inside a cell left unquoted?"
                ),
            )
        else:
            yield number, dict(zip(header, cells, strict=False)), None


def _jsonl_rows(text: str) -> Iterator[_Row]:
    # Split on "\n" only: JSON strings may hold U+2028 and friends that str.splitlines() would cut.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
            continue
        if isinstance(obj, dict):
            yield number, {str(k).strip().lower(): v for k, v in obj.items()}, None
        else:
            yield number, None, f"line {number} is not a JSON object but {type(obj).__name__}"


def _ticket(
    source: SourceFile, number: int, record: Mapping[str, object], layers: list[tuple[str, Mapping[str, object]]]
) -> Document:
    """One ticket as a document; raises ValueError or IngestError saying what is wrong with the row."""
    subject = " ".join(_ticket_text(record, "subject").split())
    if not subject and not _ticket_text(record, "body").strip():
        raise ValueError("row has neither a subject nor a body")
    sections = []
    for heading, field in _TICKET_SECTIONS:
        text = normalize_text(_ticket_text(record, field))
        if text:
            sections.append(Section((heading,), text))
    if not sections:
        raise ValueError("ticket has no body, resolution or comments")
    ticket_id = " ".join(_ticket_text(record, "id").split())
    row_meta = {k: v for k, v in record.items() if canonical_key(k) in _TICKET_META_COLUMNS}
    check_layers(source.display, [("the ticket's columns", row_meta)])  # the file's layers are checked once
    merged = merge_meta({"doc_type": "ticket"}, row_meta, *(layer for _, layer in layers))
    _, meta = parse_meta(merged, where=source.display)
    return build_document(
        doc_id=f"ticket-{ticket_id}" if ticket_id else f"{relative_id(source)}#row-{number}",
        source=source.display,
        sections=sections,
        meta=dataclasses.replace(meta, title=subject),
        fallback_title=f"Ticket {ticket_id}" if ticket_id else f"{source.path.stem} row {number}",
    )


def load_tickets(
    source: SourceFile, text: str, layers: list[tuple[str, Mapping[str, object]]]
) -> tuple[list[Document], list[IngestFailure]]:
    for label, layer in layers:
        fixed = {canonical_key(k) for k in layer} & {"id", "title"}
        if fixed:
            raise IngestError(
                source.display,
                f"{label} sets {sorted(fixed)} for a whole ticket export; each ticket takes its id and "
                "title from its own row",
            )
    check_layers(source.display, layers)
    is_csv = source.path.suffix.lower() == ".csv"
    rows = _csv_rows(text, source.display) if is_csv else _jsonl_rows(text)
    documents: list[Document] = []
    failures: list[IngestFailure] = []
    seen: dict[str, int] = {}
    for number, record, problem in rows:
        where = f"{source.display}#row-{number}"
        if record is None:
            failures.append(IngestFailure(where, problem or "unreadable row"))
            continue
        try:
            document = _ticket(source, number, record, layers)
        except (ValueError, IngestError) as exc:
            reason = exc.reason if isinstance(exc, IngestError) else str(exc)
            failures.append(IngestFailure(where, reason))
            continue
        if document.id in seen:
            failures.append(IngestFailure(where, f"ticket id '{document.id}' repeats row {seen[document.id]}"))
            continue
        seen[document.id] = number
        documents.append(document)
    if not documents and not failures:
        raise IngestError(source.display, "no tickets found")
    return documents, failures
