"""Ingestion run: discover sources, load and clean them, skip what has not changed, chunk, embed, write.

Documents are embedded in batches that span documents (the embedder is far faster on full batches) and each
batch is written in one transaction, so a crash leaves every document either at its old version or its new
one. The embedder is only asked for vectors when something changed: re-ingesting an unchanged corpus reads
and hashes the files and never loads the model.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from answerdesk.config import ChunkingSettings
from answerdesk.embed.base import Embedder
from answerdesk.errors import IngestError
from answerdesk.generate.sentences import chunk_sentences
from answerdesk.ingest.chunking import chunk_document
from answerdesk.ingest.loaders import SourceFile, discover, load
from answerdesk.store.base import DocumentStore, IndexedDocument
from answerdesk.types import Chunk, Document, IngestFailure, IngestReport


@dataclass(slots=True)
class Progress:
    """Running totals handed to the progress callback after every file and every batch written."""

    sources_total: int = 0
    sources_done: int = 0
    documents: int = 0
    chunks: int = 0
    started: float = field(default_factory=time.perf_counter)


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class _Pending:
    document: Document
    chunks: list[Chunk]
    fingerprint: str
    is_new: bool


@dataclass(slots=True)
class _Run:
    """Mutable bookkeeping of one ingest run."""

    progress: Progress
    on_progress: ProgressCallback | None
    counts: dict[str, int] = field(default_factory=lambda: {"added": 0, "updated": 0, "unchanged": 0, "chunks": 0})
    seen: dict[str, str] = field(default_factory=dict)
    failures: list[IngestFailure] = field(default_factory=list)

    def tick(self) -> None:
        if self.on_progress:
            self.on_progress(self.progress)

    def report(self, *, failures: Sequence[IngestFailure], deleted: int) -> IngestReport:
        return IngestReport(
            added=self.counts["added"],
            updated=self.counts["updated"],
            unchanged=self.counts["unchanged"],
            deleted=deleted,
            chunks_written=self.counts["chunks"],
            failures=tuple(failures),
            seconds=time.perf_counter() - self.progress.started,
        )


#: Bumped when what is stored beside the chunk vectors changes, so that the next ingest fills it in.
SENTENCE_VECTORS = "sentences-1"


def fingerprint(document: Document, embedder_name: str, chunking: ChunkingSettings, *, sentences: bool = True) -> str:
    """Changes when the content or anything that shapes its chunks or vectors changes."""
    basis = (
        f"{document.sha256}|{embedder_name}|{chunking.size_tokens}|{chunking.overlap_tokens}|{chunking.embed_tokens}"
        + (f"|{SENTENCE_VECTORS}" if sentences else "")
    )
    return hashlib.sha256(basis.encode()).hexdigest()


class Ingestor:
    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        chunking: ChunkingSettings,
        *,
        batch_chunks: int = 128,
        max_file_bytes: int = 50 * 1024 * 1024,
        sentence_vectors: bool = True,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._chunking = chunking
        self._batch_chunks = batch_chunks
        self._max_file_bytes = max_file_bytes
        self._sentence_vectors = sentence_vectors

    def run(
        self,
        paths: Sequence[str],
        *,
        cli_meta: Mapping[str, str] | None = None,
        prune: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest files, folders and globs. Per-source problems land in ``report.failures``; the rest
        is ingested. Store failures raise :class:`StoreError`."""
        sources, failures = discover(paths)
        progress = Progress(sources_total=len(sources))
        failed_sources: set[str] = {f.source for f in failures}

        def loaded() -> Iterator[list[Document]]:
            for source in sources:
                documents, problems = self._load(source, cli_meta or {})
                failures.extend(problems)
                if problems and not documents:
                    failed_sources.add(source.display)
                yield documents
                progress.sources_done += 1

        run = _Run(progress, on_progress)
        self._index(loaded(), run)
        deleted = self._prune(paths, set(run.seen), failed_sources) if prune else 0
        return run.report(failures=[*failures, *run.failures], deleted=deleted)

    def index(self, documents: Iterable[Document], *, on_progress: ProgressCallback | None = None) -> IngestReport:
        """Index documents that are already loaded (an upload, a connector, a benchmark corpus)."""
        run = _Run(Progress(), on_progress)
        self._index(([d] for d in documents), run)
        return run.report(failures=run.failures, deleted=0)

    def _index(self, groups: Iterable[list[Document]], run: _Run) -> None:
        pending: list[_Pending] = []
        for documents in groups:
            known = self._store.fingerprints(d.id for d in documents)
            for document in documents:
                if document.id in run.seen:
                    run.failures.append(
                        IngestFailure(
                            document.source,
                            f"document id '{document.id}' is also used by {run.seen[document.id]}; ids must be unique",
                        )
                    )
                    continue
                run.seen[document.id] = document.source
                fp = fingerprint(document, self._embedder.name, self._chunking, sentences=self._sentence_vectors)
                if known.get(document.id) == fp:
                    run.counts["unchanged"] += 1
                    run.progress.documents += 1
                    continue
                chunks = self._chunk(document)
                if not chunks:
                    run.failures.append(
                        IngestFailure(document.source, f"document '{document.id}' has no text to index")
                    )
                    continue
                pending.append(_Pending(document, chunks, fp, document.id not in known))
                if sum(len(p.chunks) for p in pending) >= self._batch_chunks:
                    self._flush(pending, run)
            run.tick()
        if pending:
            self._flush(pending, run)

    def _flush(self, pending: list[_Pending], run: _Run) -> None:
        texts = [chunk.embed_text for p in pending for chunk in p.chunks]
        # The sentences that can hold an answer, embedded with the chunks (the answerability gate compares the
        # question with each one; computed here, they cost nothing when a question is asked).
        chunks = [chunk for p in pending for chunk in p.chunks]
        sentences = [chunk_sentences(chunk.text) if self._sentence_vectors else [] for chunk in chunks]
        flat = [s for group in sentences for s in group]
        vectors = self._embedder.embed_passages(texts + flat)
        chunk_vectors, sentence_vectors = vectors[: len(texts)], vectors[len(texts) :]
        per_chunk, start = [], 0
        for group in sentences:
            per_chunk.append(sentence_vectors[start : start + len(group)])
            start += len(group)
        items = []
        offset = 0
        for p in pending:
            end = offset + len(p.chunks)
            stored = per_chunk[offset:end] if self._sentence_vectors else None
            items.append(IndexedDocument(p.document, p.chunks, chunk_vectors[offset:end], p.fingerprint, stored))
            offset = end
        self._store.write(items)
        for p in pending:
            run.counts["added" if p.is_new else "updated"] += 1
            run.counts["chunks"] += len(p.chunks)
        run.progress.documents += len(pending)
        run.progress.chunks += len(texts)
        pending.clear()
        run.tick()

    def _load(self, source: SourceFile, cli_meta: Mapping[str, str]) -> tuple[list[Document], list[IngestFailure]]:
        try:
            return load(source, cli_meta=cli_meta, max_bytes=self._max_file_bytes)
        except IngestError as exc:
            return [], [IngestFailure(exc.source, exc.reason)]
        except (OSError, ValueError, RecursionError, MemoryError) as exc:
            # A parser choking on a hostile file must not stop the run; the file is reported instead.
            return [], [IngestFailure(source.display, f"could not be read: {type(exc).__name__}: {exc}")]

    def _chunk(self, document: Document) -> list[Chunk]:
        c = self._chunking
        return chunk_document(
            document,
            self._embedder.tokenizer,
            size=c.size_tokens,
            overlap=c.overlap_tokens,
            embed_tokens=c.embed_tokens,
        )

    def _prune(self, paths: Sequence[str], seen: set[str], failed_sources: set[str]) -> int:
        """Delete documents under the given folders that this run no longer found."""
        doomed: list[str] = []
        for raw in paths:
            folder = Path(raw)
            if not folder.is_dir():
                continue
            prefix = display_path(folder).rstrip("/") + "/"
            for stored in self._store.documents(source_prefix=prefix):
                if stored.id not in seen and stored.source not in failed_sources:
                    doomed.append(stored.id)
        return len(self._store.delete(ids=doomed)) if doomed else 0


def display_path(path: Path) -> str:
    """A path as the user would write it: relative to the working directory when under it, POSIX style."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()
