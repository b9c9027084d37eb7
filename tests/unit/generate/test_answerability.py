"""The answerability model: features, the packaged file, loading errors, and how the trainer picks a threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from answerdesk.embed.fake import FakeEmbedder
from answerdesk.errors import ConfigError
from answerdesk.generate.answerability import (
    FEATURES,
    GENERAL_FEATURES,
    AnswerabilityModel,
    best_chunk,
    features,
    load_model,
    packaged_model,
    question_sentence_cosines,
)
from answerdesk.generate.sentences import chunk_sentences
from answerdesk.generate.train_answerability import Example, choose_threshold, rates
from answerdesk.types import ScoredChunk


def chunk(doc: str, text: str, cosine: float, title: str = "") -> ScoredChunk:
    return ScoredChunk(f"{doc}#0", doc, text, cosine, title=title, signals={"cosine": cosine})


RICK = chunk(
    "rick",
    "Rick Grimes is the protagonist of The Walking Dead comic book. He is a former police officer. Short.",
    0.78,
    title="Rick Grimes",
)
OTHER = chunk("carl", "Carl Grimes is Rick's son in the comic book series.", 0.52, title="Carl Grimes")


def test_best_chunk_is_the_one_with_the_best_cosine() -> None:
    assert best_chunk([OTHER, RICK]) is RICK
    assert best_chunk([]) is None


def test_chunk_sentences_skip_fragments() -> None:
    assert chunk_sentences(RICK.text) == [
        "Rick Grimes is the protagonist of The Walking Dead comic book.",
        "He is a former police officer.",
    ]


def test_features_read_retrieval_lexical_and_sentence_signals() -> None:
    values = features("when does rick grimes die in the comic book", [RICK, OTHER], [0.7, 0.4])
    assert set(values) == set(FEATURES)
    assert values["best_cosine"] == pytest.approx(0.78)
    assert values["cosine_margin"] == pytest.approx(0.26)
    assert values["other_margin"] == pytest.approx(0.26)
    assert values["sentence_best"] == pytest.approx(0.7)
    assert values["sentence_top2"] == pytest.approx(0.55)
    # "rick" and "grime" name the topic (the title); "die", "comic", "book" are what is asked about it.
    assert values["title_share"] == pytest.approx(2 / 5)
    assert values["detail_coverage"] == pytest.approx(2 / 3)  # comic, book; never "die"
    assert values["question_words"] == 5
    assert 0 < values["coverage"] <= 1


def test_the_other_margin_skips_chunks_of_the_same_document() -> None:
    same_doc = chunk("rick", "Rick later leads the group to Alexandria.", 0.75, title="Rick Grimes")
    values = features("when does rick grimes die in the comic book", [RICK, same_doc, OTHER], [0.7])
    assert values["cosine_margin"] == pytest.approx(0.03)
    assert values["other_margin"] == pytest.approx(0.26)


def test_sentence_cosines_use_the_stored_vectors_and_the_query_vector() -> None:
    class Stored:
        def __init__(self) -> None:
            self.asked: list[list[str]] = []

        def sentence_vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
            self.asked.append(list(chunk_ids))
            return {"rick#0": np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)}

    stored = Stored()
    query = np.array([0.6, 0.8], dtype=np.float32)
    cosines = question_sentence_cosines("q", query, [OTHER, RICK], stored, FakeEmbedder())
    assert cosines == pytest.approx([0.6, 0.8]) and stored.asked == [["rick#0"]]


def test_sentence_cosines_embed_a_chunk_indexed_without_them() -> None:
    embedder = FakeEmbedder()
    cosines = question_sentence_cosines("rick grimes comic book", None, [RICK], None, embedder)
    expected = (
        embedder.embed_passages(chunk_sentences(RICK.text)) @ embedder.embed_queries(["rick grimes comic book"])[0]
    )
    assert cosines == pytest.approx([float(x) for x in expected])
    assert question_sentence_cosines("q", None, [], None, embedder) == []


def test_features_without_sources_look_unanswerable() -> None:
    model = packaged_model()
    assert model.unanswerable(features("anything at all", [], []))


def test_the_packaged_model_says_what_it_measured() -> None:
    model = packaged_model()
    assert model.features == GENERAL_FEATURES
    report = model.report["out_of_fold"]
    assert report["n_answerable"] == 300 and report["n_unanswerable"] == 300
    assert report["false_refusals"] <= 0.15
    assert 0.0 < model.threshold < 1.0
    # A clear best passage whose sentence states the answer scores as more answerable than passages that only
    # share the topic.
    answered = chunk("a", "Refunds on annual plans are paid within 30 days of the request.", 0.82, title="Refunds")
    topical = chunk("b", "Annual plans renew every year. Plans can be upgraded at any time.", 0.55, title="Plans")
    labels = chunk("c", "Shipping labels are printed from the Orders page.", 0.5, title="Labels")
    question = "how many days do refunds on annual plans take"
    assert model.score(features(question, [answered, topical], [0.8])) < model.score(
        features(question, [topical, labels], [0.35, 0.3])
    )


def test_a_model_file_round_trips(tmp_path: Path) -> None:
    model = AnswerabilityModel(("best_cosine", "coverage"), (0.5, 0.0), (0.25, 1.0), (2.0, 0.0), 0.0, 0.5, {"x": 1})
    model.save(tmp_path / "m.json")
    again = load_model(tmp_path / "m.json")
    assert again == model
    values = dict.fromkeys(FEATURES, 0.0)
    assert again.score(values | {"best_cosine": 0.5}) == pytest.approx(0.5)
    assert again.unanswerable(values | {"best_cosine": 0.75}) and not again.unanswerable(values)


GOOD = {"features": ["best_cosine"], "mean": [0], "scale": [1], "weights": [1], "bias": 0, "threshold": 0.5}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps(GOOD | {"features": ["shoe_size"]}), "'features' must be a list of known features"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "bias"}), "missing or non-numeric"),
        (json.dumps(GOOD | {"scale": [0]}), "scales > 0"),
        (json.dumps(GOOD | {"weights": [1, 2]}), "one value per feature"),
    ],
)
def test_a_bad_model_file_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_model(path)


def test_a_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_model(tmp_path / "absent.json")


def rows() -> list[Example]:
    # Four answerable (one gated by relevance), four unanswerable.
    spec = [(True, False), (True, False), (True, False), (True, True), (False, False), (False, False), (False, True),
            (False, False)]  # fmt: skip
    return [Example(str(i), a, g, dict.fromkeys(FEATURES, 0.0)) for i, (a, g) in enumerate(spec)]


def test_rates_count_both_gates() -> None:
    scores = [0.1, 0.2, 0.9, 1.0, 0.8, 0.3, 1.0, 0.95]
    assert rates(scores, rows(), 0.85) == {
        "n_answerable": 4,
        "n_unanswerable": 4,
        "refusal_recall": 0.5,  # 0.95 and the gated one
        "false_refusals": 0.5,  # 0.9 and the gated one
    }


def test_the_threshold_is_the_lowest_within_the_false_refusal_budget() -> None:
    scores = [0.1, 0.2, 0.9, 1.0, 0.8, 0.3, 1.0, 0.95]
    # The gated answerable question is one false refusal whatever the threshold: 0.25 is the floor.
    assert choose_threshold(scores, rows(), 0.25) == pytest.approx(0.95)
    assert choose_threshold(scores, rows(), 0.5) == pytest.approx(0.3)
