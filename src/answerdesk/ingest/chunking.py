"""Token-aware, heading-aware chunking. Pure functions: a document and a tokenizer in, chunks out.

Text is cut into units (paragraphs; long paragraphs into sentences; long sentences into token windows;
long Markdown tables into row groups that repeat the header), then units are packed greedily into chunks of
at most ``size`` tokens. A new section starts a new chunk unless the current one is still small, so a chunk
keeps one heading path. Consecutive chunks of one section share up to ``overlap`` tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from answerdesk.embed.base import TokenCounter
from answerdesk.types import Chunk, Document, heading_trail

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class _Unit:
    heading_path: tuple[str, ...]
    text: str
    tokens: int
    paragraph: int  # units of one paragraph are joined with a space, others with a blank line


def chunk_document(
    document: Document, counter: TokenCounter, *, size: int, overlap: int, embed_tokens: int
) -> list[Chunk]:
    """Cut ``document`` into chunks of at most ``size`` tokens of ``counter``'s tokenizer."""
    units = list(_units(document, counter, size))
    packed = _pack(units, size=size, overlap=overlap, counter=counter)
    chunks = []
    for ordinal, group in enumerate(packed):
        text = _join(group)
        heading = group[0].heading_path
        chunks.append(
            Chunk(
                id=f"{document.id}::{ordinal}",
                document_id=document.id,
                ordinal=ordinal,
                text=text,
                embed_text=embed_window(document.meta.title, heading, text, counter, embed_tokens),
                heading_path=heading,
                token_count=sum(u.tokens for u in group),
            )
        )
    return chunks


def embed_window(title: str, heading: tuple[str, ...], text: str, counter: TokenCounter, limit: int) -> str:
    """What the embedder reads: title and heading path, then the chunk's start, cut at ``limit`` tokens."""
    # Markdown articles usually open with "# <title>"; the trail drops that repeat.
    prefix = " > ".join(heading_trail(title, heading))
    full = f"{prefix}\n{text}" if prefix else text
    spans = counter.offsets(full)
    return full if len(spans) <= limit else full[: spans[limit - 1][1]]


def _units(document: Document, counter: TokenCounter, size: int) -> list[_Unit]:
    units: list[_Unit] = []
    paragraph = 0
    for section in document.sections:
        for block in _PARAGRAPH_BREAK.split(section.text):
            block = block.strip()
            if not block:
                continue
            paragraph += 1
            for piece in _split_block(block, counter, size):
                units.append(_Unit(section.heading_path, piece, len(counter.offsets(piece)), paragraph))
    return units


def _split_block(block: str, counter: TokenCounter, size: int) -> list[str]:
    if len(counter.offsets(block)) <= size:
        return [block]
    lines = block.splitlines()
    if len(lines) > 2 and all(line.lstrip().startswith("|") for line in lines):
        return _split_table(lines, counter, size)
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(block):
        pieces.extend(_token_windows(sentence, counter, size))
    return pieces


def _split_table(lines: list[str], counter: TokenCounter, size: int) -> list[str]:
    """Row groups that each repeat the header and separator, so every piece reads as a table."""
    header = lines[:2]
    budget = size - len(counter.offsets("\n".join(header)))
    if budget < size // 4:  # a header this wide leaves no room; fall back to plain windows
        return _token_windows("\n".join(lines), counter, size)
    groups: list[str] = []
    rows: list[str] = []
    used = 0
    for row in lines[2:]:
        n = len(counter.offsets(row))
        if rows and used + n > budget:
            groups.append("\n".join([*header, *rows]))
            rows, used = [], 0
        rows.append(row)
        used += n
    if rows:
        groups.append("\n".join([*header, *rows]))
    return [g for piece in groups for g in _token_windows(piece, counter, size)]


def _token_windows(text: str, counter: TokenCounter, size: int) -> list[str]:
    spans = counter.offsets(text)
    if len(spans) <= size:
        return [text] if text.strip() else []
    out = []
    for start in range(0, len(spans), size):
        window = spans[start : start + size]
        piece = text[window[0][0] : window[-1][1]].strip()
        if piece:
            out.append(piece)
    return out


def _pack(units: list[_Unit], *, size: int, overlap: int, counter: TokenCounter) -> list[list[_Unit]]:
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    used = 0
    fresh = 0  # tokens in ``current`` that are not overlap carried from the previous chunk
    min_fill = size // 4
    for unit in units:
        new_section = bool(current) and unit.heading_path != current[-1].heading_path
        if current and (used + unit.tokens > size or (new_section and fresh >= min_fill)):
            groups.append(current)
            carry = [] if new_section else _overlap_tail(current, overlap, counter)
            carry_tokens = sum(u.tokens for u in carry)
            if carry_tokens + unit.tokens > size:
                carry, carry_tokens = [], 0
            current, used, fresh = list(carry), carry_tokens, 0
        current.append(unit)
        used += unit.tokens
        fresh += unit.tokens
    if current and fresh:
        groups.append(current)
    return groups


def _overlap_tail(units: list[_Unit], overlap: int, counter: TokenCounter) -> list[_Unit]:
    if overlap <= 0:
        return []
    tail: list[_Unit] = []
    budget = overlap
    for unit in reversed(units):
        if unit.tokens <= budget:
            tail.insert(0, unit)
            budget -= unit.tokens
            continue
        if not tail:  # the last unit alone is longer than the overlap: carry its last tokens
            spans = counter.offsets(unit.text)
            piece = unit.text[spans[-overlap][0] :]
            tail.insert(0, _Unit(unit.heading_path, piece, overlap, unit.paragraph))
        break
    return tail


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i and unit.paragraph == units[i - 1].paragraph:
            parts.append(" " + unit.text)
        elif i:
            parts.append("\n\n" + unit.text)
        else:
            parts.append(unit.text)
    return "".join(parts)
