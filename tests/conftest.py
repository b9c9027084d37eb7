"""Fixtures and builders shared by every tier."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from answerdesk.types import Document, DocumentMeta, Section

REPO = Path(__file__).resolve().parents[1]


def make_document(
    doc_id: str,
    text: str,
    *,
    source: str | None = None,
    heading: tuple[str, ...] = (),
    **meta: object,
) -> Document:
    """A cleaned document as the loaders would produce it."""
    doc_meta = DocumentMeta(**meta)  # type: ignore[arg-type]
    sections = (Section(heading, text),)
    digest = hashlib.sha256(json.dumps([doc_id, text, repr(doc_meta)]).encode()).hexdigest()
    return Document(id=doc_id, source=source or f"kb/{doc_id}.md", sections=sections, meta=doc_meta, sha256=digest)


@pytest.fixture
def repo() -> Path:
    return REPO
