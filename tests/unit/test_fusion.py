from __future__ import annotations

from answerdesk.retrieve.fusion import dedupe, reciprocal_rank_fusion, weighted_fusion
from answerdesk.types import ScoredChunk


def sc(cid: str, score: float) -> ScoredChunk:
    return ScoredChunk(chunk_id=cid, document_id=cid.split("::")[0], text=cid, score=score)


def test_rrf_rewards_agreement_and_keeps_ranks_as_signals() -> None:
    bm25 = [sc("a", 9), sc("b", 5), sc("c", 1)]
    vector = [sc("b", 0.9), sc("d", 0.8), sc("a", 0.1)]
    fused = reciprocal_rank_fusion({"bm25": bm25, "vector": vector}, k=60)
    assert [c.chunk_id for c in fused][:2] == ["b", "a"]
    b = fused[0]
    assert b.signals["bm25_rank"] == 2 and b.signals["vector_rank"] == 1
    assert abs(b.score - (1 / 62 + 1 / 61)) < 1e-12


def test_fusion_does_not_touch_its_inputs() -> None:
    bm25 = [sc("a", 9)]
    reciprocal_rank_fusion({"bm25": bm25})
    weighted_fusion({"bm25": bm25}, weights={"bm25": 1})
    assert bm25[0].score == 9 and bm25[0].signals == {}


def test_weighted_fusion_normalises_each_list() -> None:
    bm25 = [sc("a", 30), sc("b", 10)]
    vector = [sc("b", 0.9), sc("a", 0.7)]
    fused = weighted_fusion({"bm25": bm25, "vector": vector}, weights={"bm25": 0.2, "vector": 0.8})
    assert [c.chunk_id for c in fused] == ["b", "a"]
    assert abs(fused[0].score - 0.8) < 1e-9


def test_dedupe_keeps_first() -> None:
    assert [c.score for c in dedupe([sc("a", 2), sc("a", 1), sc("b", 0)])] == [2, 0]


def test_weights_can_silence_a_retriever() -> None:
    fused = reciprocal_rank_fusion({"bm25": [sc("a", 1)], "vector": [sc("b", 1)]}, weights={"bm25": 0.0, "vector": 1.0})
    assert fused[0].chunk_id == "b"
