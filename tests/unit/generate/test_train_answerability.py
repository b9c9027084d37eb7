"""The answerability trainer end to end on a small dataset: index, retrieve, features, folds, threshold, file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from answerdesk.config import Settings
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.generate.answerability import GENERAL_FEATURES, load_model
from answerdesk.generate.train_answerability import FOLDS, examples, fold_models, main, train

TOPICS = ["refund", "label", "invoice", "tracking", "password", "customs", "pickup", "warehouse"]


def write_dataset(folder: Path) -> Path:
    folder.mkdir()
    passages, questions = [], []
    for n, topic in enumerate(TOPICS):
        passages.append({"id": f"p{n}", "title": topic.title(), "text": f"The {topic} takes {n + 2} days to process. "
                         f"Ask support about any {topic} delay."})  # fmt: skip
        questions.append({"id": f"a{n}", "question": f"how many days does the {topic} take", "answerable": True})
        questions.append({"id": f"b{n}", "question": f"who designed the {topic} logo in 1999", "answerable": False})
        questions.append({"id": f"c{n}", "question": f"how long does a {topic} take", "answerable": True})
        questions.append({"id": f"d{n}", "question": f"what colour is the {topic} form", "answerable": False})
    (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return folder


@pytest.fixture
def rows(tmp_path: Path) -> list:  # type: ignore[type-arg]
    settings = Settings().model_copy(
        update={"generation": Settings().generation.model_copy(update={"relevance_threshold": -1.0})}
    )
    return examples(write_dataset(tmp_path / "kb"), settings, FakeEmbedder(), log=lambda *_: None)


def test_every_question_becomes_an_example_with_its_features(rows: list) -> None:  # type: ignore[type-arg]
    assert len(rows) == 4 * len(TOPICS)
    assert {r.id.split(":")[0] for r in rows} == {"kb"}
    assert sum(r.answerable for r in rows) == 2 * len(TOPICS)
    assert all(set(GENERAL_FEATURES) <= set(r.values) for r in rows)
    assert {r.fold for r in rows} <= set(range(FOLDS))


def test_the_threshold_keeps_false_refusals_within_the_budget(rows: list) -> None:  # type: ignore[type-arg]
    model = train(rows, budget=0.25)
    report = model.report["out_of_fold"]
    assert report["false_refusals"] <= 0.25
    assert model.features == GENERAL_FEATURES and 0.0 <= model.threshold <= 1.0
    assert len(model.report["out_of_fold_recall_by_fold"]) == FOLDS


def test_fold_models_never_train_on_their_own_fold(rows: list) -> None:  # type: ignore[type-arg]
    models = fold_models(rows, budget=0.25)
    assert len(models) == FOLDS
    for fold, model in enumerate(models):
        held_out = sum(r.fold == fold for r in rows)
        trained_on = model.report["out_of_fold"]["n_answerable"] + model.report["out_of_fold"]["n_unanswerable"]
        assert trained_on == len(rows) - held_out


def test_the_command_writes_a_model_file_the_pipeline_can_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWERDESK_EMBEDDER__KIND", "fake")
    data = write_dataset(tmp_path / "kb")
    # Fake vectors: with the default relevance gate almost every question is refused before the model sees it.
    assert main(["--dataset", str(data), "--out", str(tmp_path / "none.json")]) == 2
    assert not (tmp_path / "none.json").exists()
    monkeypatch.setenv("ANSWERDESK_GENERATION__RELEVANCE_THRESHOLD", "-1")
    out = tmp_path / "model.json"
    assert main(["--dataset", str(data), "--budget", "0.3", "--out", str(out)]) == 0
    assert load_model(out).report["false_refusal_budget"] == 0.3
    assert main(["--dataset", str(tmp_path / "missing"), "--out", str(out)]) == 2
