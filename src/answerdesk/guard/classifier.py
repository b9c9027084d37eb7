"""A small prompt-attack classifier: hashed word and character n-grams, logistic regression, numpy only.

Features are computed on the matching form of a text (:func:`answerdesk.guard.normalize.normalize_for_matching`):
word unigrams and bigrams, and byte 3-, 4- and 5-grams, each hashed into one space of ``2**dim_bits``
buckets, log-scaled counts, L2-normalised. The hashes are computed with numpy over the UTF-8 bytes, so a
1 KB text costs a fraction of a millisecond. The weights ship as ``injection_model.npz`` (no pickle), written
by ``python -m answerdesk.guard.train_injection``; the same :func:`hashed_features` serves training and
inference, so the two cannot drift apart.

A text longer than :data:`WINDOW_CHARS` is scored window by window (overlapping) and its score is the highest:
an instruction buried in the middle of a long document would otherwise be diluted by the text around it.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from answerdesk.errors import ConfigError

WINDOW_CHARS = 2048
WINDOW_STRIDE = 1024
CHAR_NGRAMS = (3, 4, 5)
_WORD = re.compile(r"\w+|[^\w\s]")
_MULT = np.uint64(0x100000001B3)  # FNV-1a prime: mixes each byte into the running hash
_SEEDS = {n: np.uint64(0x9E3779B97F4A7C15 * n % 2**64) for n in (1, 2, *CHAR_NGRAMS)}
MODEL_FILE = "injection_model.npz"

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def hashed_features(normalized: str, dim_bits: int) -> tuple[IntArray, FloatArray]:
    """Sparse features of an already normalized text: (bucket indices, values), values L2-normalised."""
    buckets = np.concatenate([_word_hashes(normalized), _byte_ngram_hashes(normalized.encode("utf-8"))])
    if buckets.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    mask = np.uint64((1 << dim_bits) - 1)
    # The high bits are the best mixed; fold them down before masking.
    index, counts = np.unique(((buckets ^ (buckets >> np.uint64(31))) & mask).astype(np.int64), return_counts=True)
    values = (1.0 + np.log(counts)).astype(np.float32)
    values /= np.float32(np.linalg.norm(values))
    return index, values


def _word_hashes(normalized: str) -> npt.NDArray[np.uint64]:
    words = _WORD.findall(normalized)
    if not words:
        return np.zeros(0, dtype=np.uint64)
    uni = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    with np.errstate(over="ignore"):
        out = [(uni + _SEEDS[1]) * _MULT]
        if len(words) > 1:
            out.append(((uni[:-1] * _MULT) ^ uni[1:]) * _MULT + _SEEDS[2])
    return np.concatenate(out)


def _byte_ngram_hashes(data: bytes) -> npt.NDArray[np.uint64]:
    raw = np.frombuffer(b" " + data + b" ", dtype=np.uint8).astype(np.uint64)
    out = []
    with np.errstate(over="ignore"):
        for n in CHAR_NGRAMS:
            if raw.size < n:
                continue
            h = np.full(raw.size - n + 1, _SEEDS[n], dtype=np.uint64)
            for k in range(n):
                h = (h ^ raw[k : raw.size - n + 1 + k]) * _MULT
            out.append(h)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class InjectionModel:
    """Logistic-regression weights over hashed features, plus what training measured."""

    weights: FloatArray
    bias: float
    dim_bits: int
    #: Score threshold chosen by training (out-of-fold on the training split) for the target false-positive rate.
    threshold: float
    meta: dict[str, Any]

    def score_normalized(self, normalized: str) -> float:
        """Attack probability of an already normalized text, the highest over its windows."""
        if len(normalized) <= WINDOW_CHARS:
            return self._score_one(normalized)
        starts = range(0, len(normalized) - WINDOW_STRIDE, WINDOW_STRIDE)
        return max(self._score_one(normalized[s : s + WINDOW_CHARS]) for s in starts)

    def _score_one(self, normalized: str) -> float:
        index, values = hashed_features(normalized, self.dim_bits)
        logit = float(self.weights[index].astype(np.float32) @ values) + self.bias
        return float(1.0 / (1.0 + np.exp(-logit)))

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=np.float64(self.bias),
            dim_bits=np.int64(self.dim_bits),
            threshold=np.float64(self.threshold),
            meta=np.frombuffer(json.dumps(self.meta, sort_keys=True).encode("utf-8"), dtype=np.uint8),
        )


def load_model(path: Path | None = None) -> InjectionModel:
    """Read the weights (the packaged file unless ``path`` is given). Raises ``ConfigError`` if unreadable."""
    try:
        if path is None:
            with resources.as_file(resources.files("answerdesk.guard") / MODEL_FILE) as packaged:
                return _read(packaged)
        return _read(path)
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"cannot read the prompt-attack model {path or MODEL_FILE}: {exc}") from exc


@cache
def packaged_model() -> InjectionModel:
    """The packaged model, read once per process (it is immutable)."""
    return load_model()


def _read(path: Path) -> InjectionModel:
    with np.load(path, allow_pickle=False) as data:
        weights = data["weights"].astype(np.float32)
        dim_bits = int(data["dim_bits"])
        if weights.shape != (1 << dim_bits,):
            raise ValueError(f"weights have shape {weights.shape}, expected ({1 << dim_bits},)")
        return InjectionModel(
            weights=weights,
            bias=float(data["bias"]),
            dim_bits=dim_bits,
            threshold=float(data["threshold"]),
            meta=json.loads(bytes(data["meta"]).decode("utf-8")),
        )
