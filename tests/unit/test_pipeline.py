"""The answer spine with fakes: a real SQLite store, the FakeEmbedder, the real prompt registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from answerdesk.config import ChunkingSettings, GenerationSettings, ModelSettings
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.errors import InputError, ProviderError
from answerdesk.generate.answerability import FEATURES, AnswerabilityModel
from answerdesk.generate.base import CallRecord
from answerdesk.generate.extractive import ExtractiveLLM
from answerdesk.generate.fake import FakeLLM
from answerdesk.generate.models import ConfiguredModels
from answerdesk.generate.resilience import FallbackLLM
from answerdesk.ingest.indexer import Ingestor
from answerdesk.pipeline import AnswerPipeline, ModelChoice
from answerdesk.prompts.registry import TEMPLATES_DIR, PromptRegistry
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.retrieve.rerank import IdentityReranker
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal
from tests.conftest import make_document

WHO = Principal(subject="agent")
SETTINGS = GenerationSettings(relevance_threshold=0.0, answerability=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteIndex]:
    index = SqliteIndex(tmp_path / "kb.db")
    Ingestor(index, FakeEmbedder(), ChunkingSettings()).index(
        [
            make_document(
                "refunds", "Annual plans are refunded in full within 30 days of the charge.", title="Refunds"
            ),
            make_document("labels", "Thermal printers print 4x6 shipping labels from the Orders page.", title="Labels"),
        ]
    )
    yield index
    index.close()


def pipeline(store: SqliteIndex, models: object, settings: GenerationSettings = SETTINGS) -> AnswerPipeline:
    embedder = FakeEmbedder()
    retriever = HybridRetriever(store, embedder, IdentityReranker())
    return AnswerPipeline(retriever, PromptRegistry(TEMPLATES_DIR), models, embedder, settings, k=2, vectors=store)  # type: ignore[arg-type]


class OneModel:
    def __init__(self, *llms: object) -> None:
        self.llms = llms

    def choose(self, question: str, *, principal: Principal, route: str | None = None) -> ModelChoice:
        record = CallRecord()
        return ModelChoice("test", "fixed", FallbackLLM(list(self.llms), record=record), record)  # type: ignore[arg-type]


async def test_extractive_answer_cites_the_right_source(store: SqliteIndex) -> None:
    answer = await pipeline(store, ConfiguredModels(SETTINGS)).answer("annual plan refund days", principal=WHO)
    assert not answer.refused
    assert "30 days" in answer.text and "[" in answer.text
    assert [c.document_id for c in answer.citations] == ["refunds"]
    assert answer.prompt_name == "answer" and answer.prompt_version == 1 and len(answer.prompt_sha256) == 64
    assert answer.provider == "extractive" and answer.route == "default"
    assert 0.5 < answer.confidence <= 1.0
    assert {"retrieve", "prompt", "model", "assemble", "total"} <= set(answer.timings)


async def test_relevance_gate_refuses_without_a_model_call(store: SqliteIndex) -> None:
    llm = FakeLLM(["should never be called"])
    strict = GenerationSettings(relevance_threshold=0.99)
    answer = await pipeline(store, OneModel(llm), strict).answer("annual plan refund", principal=WHO)
    assert answer.refused and answer.refusal_reason == "no_relevant_sources"
    assert answer.text == strict.refusal and answer.citations == ()
    assert llm.requests == []


def answerability_file(tmp_path: Path, threshold: float) -> Path:
    # Every weight zero: P(not answerable) is 0.5 for any question, so the threshold alone decides.
    path = tmp_path / "answerability.json"
    AnswerabilityModel(
        FEATURES, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0, threshold
    ).save(path)
    return path


@pytest.mark.parametrize(("threshold", "refused"), [(0.4, True), (0.6, False)])
async def test_answerability_gate_refuses_without_a_model_call(
    store: SqliteIndex, tmp_path: Path, threshold: float, refused: bool
) -> None:
    llm = FakeLLM(["Annual plans are refunded within 30 days [1]."])
    settings = GenerationSettings(relevance_threshold=0.0, answerability_model=answerability_file(tmp_path, threshold))
    answer = await pipeline(store, OneModel(llm), settings).answer("annual plan refund", principal=WHO)
    assert answer.refused is refused
    if refused:
        assert answer.refusal_reason == "not_in_sources" and answer.flags == ("answerability:0.500",)
        assert answer.text == settings.refusal and llm.requests == [] and answer.provider == "none"
    else:
        assert len(llm.requests) == 1 and "[1]" in answer.text
    assert "answerability" in answer.timings


async def test_the_threshold_setting_overrides_the_model_file(store: SqliteIndex, tmp_path: Path) -> None:
    llm = FakeLLM(["Annual plans are refunded within 30 days [1]."])
    settings = GenerationSettings(
        relevance_threshold=0.0, answerability_model=answerability_file(tmp_path, 0.4), answerability_threshold=0.9
    )
    answer = await pipeline(store, OneModel(llm), settings).answer("annual plan refund", principal=WHO)
    assert not answer.refused and len(llm.requests) == 1


async def test_bad_citations_are_dropped_and_flagged(store: SqliteIndex) -> None:
    llm = FakeLLM(["Annual plans are refunded in full within 30 days [1][9]."])
    answer = await pipeline(store, OneModel(llm)).answer("refund annual plan", principal=WHO)
    assert "[9]" not in answer.text
    assert "dropped_citation:9" in answer.flags


async def test_mid_stream_failure_falls_back_and_says_so(store: SqliteIndex) -> None:
    broken = FakeLLM(["Annual plans are refunded in full within 30 days [1]."], fail_after_chars=16)
    events = [
        e async for e in pipeline(store, OneModel(broken, ExtractiveLLM())).stream("annual refund days", principal=WHO)
    ]
    kinds = [e.kind for e in events]
    assert kinds[0] == "meta" and kinds[-1] == "done" and "model_changed" in kinds
    answer = events[-1].answer
    assert answer is not None and answer.provider == "extractive"
    assert answer.fallbacks and any(f.startswith("fallback:") for f in answer.flags)
    streamed = "".join(e.text for e in events if e.kind == "delta")
    assert streamed.startswith("Annual plans are")


async def test_every_model_failing_is_an_error_not_a_hang(store: SqliteIndex) -> None:
    dead = FakeLLM([ProviderError("down", status=503)])
    with pytest.raises(ProviderError):
        await pipeline(store, OneModel(dead)).answer("annual refund", principal=WHO)


@pytest.mark.parametrize(
    ("question", "message"),
    [("   ", "empty"), ("x" * 100_000, "limit"), ("refund \udcff annual", "not valid UTF-8 \\(at character 7\\)")],
)
async def test_bad_questions(store: SqliteIndex, question: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        await pipeline(store, ConfiguredModels(SETTINGS)).answer(question, principal=WHO)


async def test_unknown_model_lists_the_known_ones(store: SqliteIndex) -> None:
    settings = GenerationSettings(
        models={"extractive": ModelSettings(kind="extractive")}, relevance_threshold=0.0, answerability=False
    )
    with pytest.raises(InputError, match="known: default, extractive"):
        await pipeline(store, ConfiguredModels(settings)).answer("refund", principal=WHO, route="gpt-9")
