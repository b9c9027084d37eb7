import numpy as np

from answerdesk.config import EmbedderSettings
from answerdesk.embed.cache import CachedEmbedder
from answerdesk.embed.factory import build_embedder
from answerdesk.embed.fake import FakeEmbedder


def test_a_question_is_embedded_once_and_the_vectors_match_the_inner_embedder() -> None:
    inner = FakeEmbedder()
    cached = CachedEmbedder(inner)
    first = cached.embed_queries(["where is my order?"])
    again = cached.embed_queries(["where is my order?"])
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, FakeEmbedder().embed_queries(["where is my order?"]))
    assert inner.texts_embedded == 1
    assert (cached.hits, cached.misses) == (1, 1)


def test_a_batch_embeds_only_its_new_texts_and_keeps_order_and_duplicates() -> None:
    inner = FakeEmbedder()
    cached = CachedEmbedder(inner)
    cached.embed_queries(["b"])
    out = cached.embed_queries(["a", "b", "a", "c"])
    assert inner.texts_embedded == 1 + 2  # "a" and "c" only, "a" once
    np.testing.assert_array_equal(out, FakeEmbedder().embed_queries(["a", "b", "a", "c"]))


def test_callers_cannot_change_what_the_cache_holds() -> None:
    cached = CachedEmbedder(FakeEmbedder())
    out = cached.embed_queries(["refund"])
    out[0, :] = 0.0
    assert np.linalg.norm(cached.embed_queries(["refund"])[0]) > 0.99


def test_the_least_recently_used_vector_goes_first() -> None:
    inner = FakeEmbedder()
    cached = CachedEmbedder(inner, max_entries=2)
    cached.embed_queries(["a"])
    cached.embed_queries(["b"])
    cached.embed_queries(["a"])  # "b" is now the oldest
    cached.embed_queries(["c"])
    cached.embed_queries(["a"])
    assert inner.texts_embedded == 3
    cached.embed_queries(["b"])
    assert inner.texts_embedded == 4


def test_passages_and_empty_batches_go_straight_through() -> None:
    inner = FakeEmbedder()
    cached = CachedEmbedder(inner)
    cached.embed_passages(["x", "x"])
    cached.embed_passages(["x"])
    assert inner.texts_embedded == 3
    assert cached.embed_queries([]).shape == (0, 64)


def test_the_factory_puts_the_cache_in_front_unless_it_is_turned_off() -> None:
    assert isinstance(build_embedder(EmbedderSettings(kind="fake")), CachedEmbedder)
    assert isinstance(build_embedder(EmbedderSettings(kind="fake", query_cache_size=0)), FakeEmbedder)
