"""CachedEmbedder: query vectors kept in memory, so one question is embedded once per process.

A question is embedded by the denied-topics guard, by retrieval and by the relevance check of the answer;
support traffic also repeats itself ("where is my order?"). Only ``embed_queries`` is cached: passages are
embedded in large batches at ingestion, once each.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from cachetools import LRUCache

from answerdesk.embed.base import Embedder, TokenCounter, Vectors


class CachedEmbedder:
    """An :class:`Embedder` that remembers the ``max_entries`` most recently used query vectors."""

    def __init__(self, inner: Embedder, *, max_entries: int = 4096) -> None:
        self._inner = inner
        self._cache: LRUCache[str, Vectors] = LRUCache(maxsize=max_entries)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def inner(self) -> Embedder:
        return self._inner

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dim(self) -> int:
        return self._inner.dim

    @property
    def tokenizer(self) -> TokenCounter:
        return self._inner.tokenizer

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            found = {t: v for t in dict.fromkeys(texts) if (v := self._cache.get(t)) is not None}
            self.hits += sum(1 for t in texts if t in found)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            vectors = self._inner.embed_queries(missing)
            with self._lock:
                self.misses += sum(1 for t in texts if t not in found)
                for text, vector in zip(missing, vectors, strict=True):
                    vector = vector.copy()
                    vector.flags.writeable = False  # shared between requests: nobody may change it
                    self._cache[text] = vector
                    found[text] = vector
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._inner.embed_passages(texts)

    def load(self) -> None:
        """Load the wrapped model now, if it loads lazily."""
        load = getattr(self._inner, "load", None)
        if load is not None:
            load()
