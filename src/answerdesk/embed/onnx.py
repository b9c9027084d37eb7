"""OnnxEncoder: the packaged embedding model run by ONNX Runtime, for the small calls of a request.

Measured on one core here, with the same weights: a question takes 8.4 ms through sentence-transformers on
torch and 4.1 ms through ONNX Runtime; a 45-token answer 17.4 ms against 7.8 ms; the vectors agree within
1e-7. The graph is exported from the packaged model on first use (about 1.5 s; torch and ``onnx`` are needed
only then) and kept under the cache folder, keyed by the model's files, so later processes load it at once.
Tokenization is the model's own ``tokenizer.json``; pooling follows the model's ``1_Pooling`` config (mean
or CLS), and vectors are L2-normalised as the Embedder Protocol promises.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from answerdesk.embed.base import Vectors
from answerdesk.errors import ConfigError

_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
#: ``fp32``: the exported graph as is. ``int8``: its weight matrices quantized to 8 bits, one scale per output
#: channel (:func:`quantize_int8`).
Precision = Literal["fp32", "int8"]


def default_cache_dir() -> Path:
    """``$ANSWERDESK_CACHE_DIR``, else ``$XDG_CACHE_HOME/answerdesk``, else ``~/.cache/answerdesk``."""
    if env := os.environ.get("ANSWERDESK_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "answerdesk"


def pooling_mode(model_dir: Path) -> str:
    """``mean`` or ``cls``, from the sentence-transformers pooling config (mean when there is none)."""
    config = model_dir / "1_Pooling" / "config.json"
    if not config.exists():
        return "mean"
    data = json.loads(config.read_text())
    modes = [
        m for m in ("mean_tokens", "cls_token", "max_tokens", "mean_sqrt_len_tokens") if data.get(f"pooling_mode_{m}")
    ]
    if modes == ["mean_tokens"]:
        return "mean"
    if modes == ["cls_token"]:
        return "cls"
    raise ConfigError(f"{config}: pooling {modes or 'none'} is not supported by the ONNX runtime; use runtime: torch")


def model_key(model_dir: Path) -> str:
    """A digest of what the exported graph depends on: the model config and its weights file."""
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    weights = next((model_dir / w for w in _WEIGHTS if (model_dir / w).exists()), None)
    if weights is None:
        raise ConfigError(f"{model_dir}: no weights file ({' or '.join(_WEIGHTS)})")
    with weights.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> Vectors:
    """Token states ``(batch, tokens, dim)`` to unit vectors ``(batch, dim)``: masked mean or the first token."""
    if mode == "cls":
        vectors = hidden[:, 0, :]
    else:
        weights = mask[..., None].astype(np.float32)
        vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.clip(norms, 1e-12, None), dtype=np.float32)


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the transformer of ``model_dir`` to ``target``, written whole or not at all."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ConfigError(f"exporting {model_dir} to ONNX needs torch and transformers: {exc}") from exc

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ones = torch.ones((1, 8), dtype=torch.long)
    sample = (ones, ones, torch.zeros_like(ones))
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write the ONNX graph under {target.parent}: {exc}; set embedder.cache_dir") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        # The tracer warns about shapes it records as constants; the graph is checked against torch in the tests.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden(model), sample, str(tmp), input_names=names, output_names=["last_hidden_state"],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
        tmp.replace(target)
    except Exception as exc:
        raise ConfigError(f"cannot export {model_dir} to ONNX at {target}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


class OnnxEncoder:
    """Encodes batches of texts with ONNX Runtime on ``threads`` threads. Raises :class:`ConfigError` when
    onnxruntime is missing, the pooling is not supported, or the graph cannot be exported or loaded."""

    def __init__(
        self,
        model_dir: Path,
        *,
        cache_dir: Path | None = None,
        max_seq_length: int = 256,
        threads: int = 1,
        precision: Precision = "fp32",
    ):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(f"the ONNX embedding runtime needs onnxruntime: {exc}") from exc
        self._mode = pooling_mode(model_dir)
        exported = (cache_dir or default_cache_dir()) / "onnx" / f"{model_dir.name}-{model_key(model_dir)}.onnx"
        if not exported.exists():
            export_onnx(model_dir, exported)
        path = exported
        if precision == "int8":
            path = exported.with_name(f"{exported.stem}-int8.onnx")
            if not path.exists():
                quantize_int8(exported, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ConfigError(f"cannot load the ONNX embedding graph {path}: {exc}") from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        self.path = path
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        pad = _pad_token(model_dir)
        pad_id = tok.token_to_id(pad)
        if pad_id is None:
            raise ConfigError(f"{model_dir}: the padding token {pad!r} is not in the tokenizer's vocabulary")
        tok.enable_truncation(max_length=max_seq_length)
        tok.enable_padding(pad_id=pad_id, pad_token=pad)
        self._tok = tok

    def encode(self, texts: Sequence[str]) -> Vectors:
        encodings = self._tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = self._session.run(None, {name: feed[name] for name in self._inputs})
        return pool(hidden, mask, self._mode)


def quantize_int8(source: Path, target: Path) -> None:
    """Write ``source`` with its weight matrices in 8 bits (ONNX Runtime's dynamic quantization: activations are
    quantized per call), written whole or not at all.

    One scale per output channel, not one per matrix: on ClapNQ dev's 300 questions the vectors then agree with
    the full-precision ones at cosine 0.986 (worst) and 0.994 (median), and a question takes 2.9 ms p50 on one
    core instead of 5.7 ms (``bench/query_precision.py``); one scale per matrix gave 0.948 and 0.969 when tried
    once on 300 ClapNQ questions."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigError(f"quantizing the ONNX embedding graph needs onnx and onnxruntime: {exc}") from exc
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    # The quantizer advises, on the root logger, a pre-processing pass meant for static quantization.
    root = logging.getLogger()
    advice = _DropMessage("Please consider to run pre-processing")
    root.addFilter(advice)
    try:
        quantize_dynamic(source, tmp, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        tmp.replace(target)
    except Exception as exc:
        raise ConfigError(f"cannot quantize the ONNX graph {source} to {target}: {exc}") from exc
    finally:
        root.removeFilter(advice)
        tmp.unlink(missing_ok=True)


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._prefix)


def _pad_token(model_dir: Path) -> str:
    special = model_dir / "special_tokens_map.json"
    if special.exists():
        value = json.loads(special.read_text()).get("pad_token")
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            return value
    return "[PAD]"
