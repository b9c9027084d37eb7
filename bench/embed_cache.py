"""An on-disk cache of *corpus passage* vectors, so that repeated benchmark runs do not re-embed 20k chunks.

One SQLite file under ``bench/.cache/`` (gitignored). The key is sha256 of the model key and the exact text,
so a change to chunking, titles or the model simply misses. Query vectors are never cached: the latency a
benchmark reports must include the real query embedding.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from answerdesk.embed.base import Embedder, TokenCounter, Vectors
from answerdesk.embed.local import LocalEmbedder
from answerdesk.embed.onnx import Precision
from common import CACHE_DIR, MAX_SEQ_LENGTH, MODEL, log

Compute = Callable[[list[str]], Vectors]
#: Misses are embedded in groups this large (sorted by length, so batches pad little) and saved per group.
GROUP = 512


class EmbeddingCache:
    """Vectors by ``sha256(model_key + text)``; ``model_key`` names the model and its input window."""

    def __init__(self, path: Path = CACHE_DIR / "embeddings.sqlite") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, timeout=120)  # other benchmark runs may be writing
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, dim INTEGER, vec BLOB)")
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        self._conn.close()

    @staticmethod
    def key(model_key: str, text: str) -> bytes:
        return hashlib.sha256(f"{model_key}\n{text}".encode()).digest()

    def get_many(self, model_key: str, texts: Sequence[str]) -> list[Vectors | None]:
        keys = [self.key(model_key, t) for t in texts]
        found: dict[bytes, Vectors] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            batch = unique[start : start + 500]
            marks = ",".join("?" * len(batch))
            for key, _dim, blob in self._conn.execute(
                f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", batch
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return [found.get(k) for k in keys]

    def put_many(self, model_key: str, texts: Sequence[str], vectors: Vectors) -> None:
        rows = [
            (self.key(model_key, t), int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors (key, dim, vec) VALUES (?, ?, ?)", rows)

    def embed(self, model_key: str, texts: Sequence[str], compute: Compute, *, label: str = "") -> Vectors:
        """Vectors for ``texts`` in order; misses go to ``compute`` in length-sorted groups and are stored."""
        cached = self.get_many(model_key, texts)
        missing = sorted({t for t, v in zip(texts, cached, strict=True) if v is None}, key=len)
        self.hits += len(texts) - sum(v is None for v in cached)
        self.misses += len(missing)
        fresh: dict[str, Vectors] = {}
        started = time.perf_counter()
        for start in range(0, len(missing), GROUP):
            group = missing[start : start + GROUP]
            vectors = compute(group)
            self.put_many(model_key, group, vectors)
            fresh.update(zip(group, vectors, strict=True))
            if len(missing) > GROUP:
                done = start + len(group)
                rate = done / (time.perf_counter() - started)
                eta = (len(missing) - done) / rate
                log(f"  embedded {done}/{len(missing)} {label} passages ({rate:.1f}/s, ~{eta / 60:.1f} min left)")
        out = [v if v is not None else fresh[t] for t, v in zip(texts, cached, strict=True)]
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        return np.ascontiguousarray(np.vstack(out), dtype=np.float32)


class CachedEmbedder:
    """An :class:`Embedder` whose passage vectors come from the cache; queries always go to the model."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache, *, max_seq_length: int) -> None:
        self._inner = inner
        self._cache = cache
        self.model_key = f"answerdesk:{inner.name}:max_seq_length={max_seq_length}"

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
        return self._inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._cache.embed(self.model_key, texts, self._inner.embed_passages)

    def prefill(self, texts: Sequence[str], *, label: str = "") -> None:
        """Embed whatever of ``texts`` is not cached yet, in one length-sorted pass."""
        if texts:
            self._cache.embed(self.model_key, texts, self._inner.embed_passages, label=label)


def cached_local_embedder(cache: EmbeddingCache, *, query_precision: Precision = "fp32") -> CachedEmbedder:
    """The packaged local model (as answerdesk runs it by default), its passage vectors cached; questions on
    the graph of ``query_precision`` (``embedder.query_precision``)."""
    inner = LocalEmbedder(MODEL, batch_size=32, max_seq_length=MAX_SEQ_LENGTH, query_precision=query_precision)
    return CachedEmbedder(inner, cache, max_seq_length=MAX_SEQ_LENGTH)
