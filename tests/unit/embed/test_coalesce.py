import threading
import time

import numpy as np
import pytest

from answerdesk.embed.coalesce import Coalescer
from answerdesk.embed.fake import FakeEmbedder


class SlowEncoder:
    """FakeEmbedder vectors, each call taking ``delay`` seconds, with the batches it was given."""

    def __init__(self, delay: float = 0.05) -> None:
        self.fake = FakeEmbedder()
        self.delay = delay
        self.batches: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        time.sleep(self.delay)
        return self.fake.embed_queries(texts)


def test_a_lone_call_runs_at_once_and_gets_its_own_vectors() -> None:
    encoder = SlowEncoder(delay=0.0)
    coalescer = Coalescer(encoder)
    out = coalescer(["refund policy", "shipping label"])
    np.testing.assert_array_equal(out, FakeEmbedder().embed_queries(["refund policy", "shipping label"]))
    assert encoder.batches == [["refund policy", "shipping label"]]


def test_calls_arriving_during_a_batch_share_the_next_one_and_each_gets_its_rows() -> None:
    encoder = SlowEncoder(delay=0.1)
    coalescer = Coalescer(encoder, max_texts=32)
    results: dict[int, np.ndarray] = {}

    def ask(i: int) -> None:
        results[i] = coalescer([f"question {i}", f"other {i}"])

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    time.sleep(0.03)  # the first batch is running
    rest = [threading.Thread(target=ask, args=(i,)) for i in range(1, 9)]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join(5)
    assert len(encoder.batches) == 2
    assert len(encoder.batches[1]) == 16
    expected = FakeEmbedder()
    for i, vectors in results.items():
        np.testing.assert_array_equal(vectors, expected.embed_queries([f"question {i}", f"other {i}"]))
    assert coalescer.calls == 9 and coalescer.batches == 2


def test_batches_respect_max_texts_but_an_oversized_call_still_runs_whole() -> None:
    encoder = SlowEncoder(delay=0.1)
    coalescer = Coalescer(encoder, max_texts=4)
    blocker = threading.Thread(target=coalescer, args=(["first"],))
    blocker.start()
    time.sleep(0.03)
    waiting = [threading.Thread(target=coalescer, args=([f"q{i}a", f"q{i}b"],)) for i in range(3)]
    big = threading.Thread(target=coalescer, args=([f"big {i}" for i in range(6)],))
    for t in [*waiting, big]:
        t.start()
        time.sleep(0.005)
    for t in [blocker, *waiting, big]:
        t.join(5)
    assert max(len(b) for b in encoder.batches if not b[0].startswith("big")) <= 4
    assert [f"big {i}" for i in range(6)] in encoder.batches


def test_a_failing_batch_raises_in_every_caller_and_the_next_call_still_works() -> None:
    calls = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("model crashed")
        return FakeEmbedder().embed_queries(texts)

    coalescer = Coalescer(encode)
    with pytest.raises(RuntimeError, match="model crashed"):
        coalescer(["boom"])
    assert coalescer(["fine"]).shape == (1, 64)
