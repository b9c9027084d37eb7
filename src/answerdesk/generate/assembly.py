"""Answer assembly: parse citations, drop the ones that point nowhere, check each sentence's support.

Pure functions over the model's text and the numbered sources it was given. Support is lexical first (the
share of a sentence's content words found in the sources it cites); sentences that lexical matching cannot
settle are checked by embedding similarity against the cited chunks, when vectors are given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from answerdesk.generate.sentences import citation_numbers, content_words, split_sentences, strip_citations
from answerdesk.types import Citation, ScoredChunk

_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
#: A sentence whose cited sources hold this share of its content words is supported outright.
LEXICAL_SUPPORTED = 0.6
#: Below this share, lexical matching says "unsupported" unless the embedding check says otherwise.
LEXICAL_UNSURE = 0.3
SEMANTIC_SUPPORTED = 0.6


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    text: str
    cited: tuple[int, ...]
    lexical: float
    semantic: float | None
    supported: bool


@dataclass(frozen=True, slots=True)
class Assembled:
    text: str
    citations: tuple[Citation, ...]
    #: Citation numbers the model used that match no source; removed from ``text``.
    dropped: tuple[int, ...]
    sentences: tuple[SentenceSupport, ...]

    @property
    def supported_ratio(self) -> float:
        checked = [s for s in self.sentences if s.cited]
        return sum(s.supported for s in checked) / len(checked) if checked else 0.0

    @property
    def citation_coverage(self) -> float:
        return sum(bool(s.cited) for s in self.sentences) / len(self.sentences) if self.sentences else 0.0


def drop_unknown_citations(text: str, valid: set[int]) -> tuple[str, tuple[int, ...]]:
    """Remove citation numbers not in ``valid`` (a bracket left empty disappears). Returns (text, dropped)."""
    dropped: list[int] = []

    def fix(match: re.Match[str]) -> str:
        kept = []
        for part in match.group(1).split(","):
            n = int(part)
            if n in valid:
                kept.append(str(n))
            elif n not in dropped:
                dropped.append(n)
        return f"[{', '.join(kept)}]" if kept else ""

    cleaned = _CITE.sub(fix, text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip(), tuple(dropped)


def assemble(
    text: str,
    sources: Sequence[ScoredChunk],
    *,
    sentence_vectors: Mapping[str, npt.NDArray[np.float32]] | None = None,
    chunk_vectors: Mapping[str, npt.NDArray[np.float32]] | None = None,
) -> Assembled:
    """Check ``text`` (the model's answer, citing ``[n]`` = ``sources[n-1]``) against its sources."""
    valid = set(range(1, len(sources) + 1))
    cleaned, dropped = drop_unknown_citations(text, valid)
    source_words = [set(content_words(s.text + " " + s.title + " " + " ".join(s.heading_path))) for s in sources]
    checks = []
    for sentence in _answer_sentences(cleaned):
        cited = tuple(citation_numbers(sentence))
        plain = strip_citations(sentence)
        words = set(content_words(plain))
        if not cited or not words:
            checks.append(SentenceSupport(plain, cited, 0.0, None, False))
            continue
        pool = set().union(*(source_words[n - 1] for n in cited))
        lexical = len(words & pool) / len(words)
        semantic = _semantic(plain, [sources[n - 1].chunk_id for n in cited], sentence_vectors, chunk_vectors)
        supported = lexical >= LEXICAL_SUPPORTED or (
            lexical >= LEXICAL_UNSURE and semantic is not None and semantic >= SEMANTIC_SUPPORTED
        )
        checks.append(SentenceSupport(plain, cited, lexical, semantic, supported))
    used = sorted({n for s in checks for n in s.cited})
    citations = tuple(citation_for(n, sources[n - 1]) for n in used)
    return Assembled(cleaned, citations, dropped, tuple(checks))


def sentences_needing_vectors(text: str, sources: Sequence[ScoredChunk]) -> list[str]:
    """Answer sentences whose lexical support is inconclusive: the only ones worth embedding."""
    first = assemble(text, sources)
    return [s.text for s in first.sentences if s.cited and LEXICAL_UNSURE <= s.lexical < LEXICAL_SUPPORTED]


def citation_for(number: int, chunk: ScoredChunk, *, snippet_chars: int = 240) -> Citation:
    snippet = " ".join(chunk.text.split())
    if len(snippet) > snippet_chars:
        snippet = snippet[:snippet_chars].rsplit(" ", 1)[0] + "…"
    return Citation(number, chunk.chunk_id, chunk.document_id, chunk.breadcrumb, chunk.source, chunk.url, snippet)


def _answer_sentences(text: str) -> list[str]:
    # A citation that follows the full stop ("... days. [1]") belongs to the sentence before it.
    merged: list[str] = []
    for sentence in split_sentences(text):
        if merged and re.fullmatch(r"(\[\d+(?:\s*,\s*\d+)*\]\s*)+[.]?", sentence):
            merged[-1] = f"{merged[-1]} {sentence}"
        else:
            merged.append(sentence)
    return merged


def _semantic(
    sentence: str,
    chunk_ids: list[str],
    sentence_vectors: Mapping[str, npt.NDArray[np.float32]] | None,
    chunk_vectors: Mapping[str, npt.NDArray[np.float32]] | None,
) -> float | None:
    if not sentence_vectors or not chunk_vectors or sentence not in sentence_vectors:
        return None
    vec = sentence_vectors[sentence]
    scores = [float(chunk_vectors[c] @ vec) for c in chunk_ids if c in chunk_vectors]
    return max(scores) if scores else None
