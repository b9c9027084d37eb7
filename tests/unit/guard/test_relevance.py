"""The relevance probe: sentences of a streaming answer embedded as they complete, until one passes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from answerdesk.embed.base import Vectors
from answerdesk.embed.fake import FakeEmbedder
from answerdesk.generate.sentences import sentence_cut
from answerdesk.guard.grounding import plain_sentences
from answerdesk.guard.guardrails import Guardrails
from answerdesk.guard.policy import PolicySource
from answerdesk.guard.relevance import RelevanceProbe

# Shares only stop words with its question: no content word, so the words cannot pass it, the vectors can.
RELEVANT = "It is what it is for the plan [1]."
QUESTION = "what is the window for it?"


class RecordingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.passages: list[list[str]] = []

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        self.passages.append(list(texts))
        return super().embed_passages(texts)


def test_feed_hands_out_each_complete_sentence_once() -> None:
    probe = RelevanceProbe(FakeEmbedder(), QUESTION, threshold=0.99)
    assert probe.feed("It is what it is for") == []
    assert probe.feed(" the plan [1]. Ref") == ["It is what it is for the plan."]
    assert probe.feed("unds take 30 days [1]. ") == []  # complete only once the next sentence starts
    assert probe.feed("Then the label expires") == ["Refunds take 30 days."]
    assert probe.rest() == ["Then the label expires"]
    assert probe.rest() == []


def test_embedding_stops_at_the_first_sentence_that_passes() -> None:
    embedder = RecordingEmbedder()
    probe = RelevanceProbe(embedder, QUESTION, threshold=0.3)
    ready = probe.feed(RELEVANT + " Refunds take 30 days [1]. More")
    probe.embed(ready)
    assert probe.satisfied
    assert probe.feed(" text follows. And more") == [] and probe.rest() == []
    assert embedder.passages == [["It is what it is for the plan.", "Refunds take 30 days."]]


def test_words_that_take_up_the_question_need_no_vectors() -> None:
    embedder = RecordingEmbedder()
    probe = RelevanceProbe(embedder, "how long is the refund window?", threshold=0.3)
    assert probe.feed("The refund window is 30 days [1]. Then") == []
    assert probe.satisfied and embedder.passages == []


def test_the_output_check_embeds_only_the_sentences_the_stream_left(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: r\ncontextualGrounding: {groundingThreshold: 0.1, relevanceThreshold: 0.3}\n")
    embedder = RecordingEmbedder()
    g = Guardrails(PolicySource(path), embedder=embedder)
    answer = "Refunds take 30 days [1]. " + RELEVANT
    check = dict(question=QUESTION, sources=["Refunds take 30 days for the plan."], tenant=None, request_id="r")
    # Nothing embedded while streaming: the check embeds every sentence, and the relevant one passes.
    assert g.check_output(answer, **check).action == "ALLOW"  # type: ignore[arg-type]
    assert embedder.passages == [["Refunds take 30 days.", "It is what it is for the plan."]]
    # The stream embedded the relevant sentence: nothing is left to embed.
    embedder.passages.clear()
    known = {"It is what it is for the plan.": FakeEmbedder().embed_passages(["It is what it is for the plan."])[0]}
    assert g.check_output(answer, sentence_vectors=known, **check).action == "ALLOW"  # type: ignore[arg-type]
    assert embedder.passages == []
    # Only an irrelevant sentence known: the rest is embedded, and an answer with none relevant is refused.
    off = "Refunds take 30 days."
    known = {off: np.asarray(FakeEmbedder().embed_passages([off])[0])}
    verdict = g.check_output(off + " [1]", sentence_vectors=known, **check)  # type: ignore[arg-type]
    assert verdict.action == "REFUSE" and embedder.passages == []


def test_no_probe_without_an_embedder_or_a_relevance_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: r\ncontextualGrounding: {groundingThreshold: 0.1, relevanceThreshold: 0.3}\n")
    assert Guardrails(PolicySource(path)).relevance_probe(QUESTION, tenant=None) is None
    assert Guardrails(PolicySource(path), embedder=FakeEmbedder()).relevance_probe(QUESTION, tenant=None) is not None
    path.write_text("version: r2\nwordFilters: [{match: x, action: BLOCK}]\n")
    assert Guardrails(PolicySource(path), embedder=FakeEmbedder()).relevance_probe(QUESTION, tenant=None) is None


ANSWER = (
    "Labels are valid for 14 days [1]. After that, create a new one!\n\nSteps:\n- Open *Returns* [2].\n"
    "- Choose **Print label**. Is it free? Yes, for EU orders [1]. Done"
)


@pytest.mark.parametrize("size", [1, 2, 5, 7, 500])
def test_any_split_of_the_stream_gives_the_sentences_of_the_whole_answer(size: int) -> None:
    probe = RelevanceProbe(FakeEmbedder(), "what about warranty claims?", threshold=0.99)
    handed: list[str] = []
    for start in range(0, len(ANSWER), size):
        handed += probe.feed(ANSWER[start : start + size])
    handed += probe.rest()
    assert handed == list(dict.fromkeys(plain_sentences(ANSWER)))


def test_sentence_cut_marks_where_complete_sentences_end() -> None:
    text = "Labels last 14 days [1]. After that, make"
    cut = sentence_cut(text)
    assert text[cut:] == "After that, make"
    assert sentence_cut(text, cut) == cut  # nothing new complete after it
    assert sentence_cut("no boundary yet") == 0
