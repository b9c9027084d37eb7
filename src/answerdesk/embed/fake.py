"""FakeEmbedder: deterministic, dependency-free vectors for tests.

Words are hashed into buckets (a bag of words), so texts that share words are close, and the same text
always gets the same vector.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from answerdesk.embed.base import Vectors

_WORD = re.compile(r"\w+", re.UNICODE)


class WhitespaceTokenCounter:
    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


class FakeEmbedder:
    def __init__(self, dim: int = 64) -> None:
        self._dim = dim
        self.calls = 0
        self.texts_embedded = 0

    @property
    def name(self) -> str:
        return f"fake-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> WhitespaceTokenCounter:
        return WhitespaceTokenCounter()

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self._dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out
