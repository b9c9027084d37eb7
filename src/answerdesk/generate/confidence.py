"""The confidence score of an answer: one number in [0, 1] that review and the UI can act on.

A weighted mean of three signals, each in [0, 1]: how relevant the best source was (cosine, rescaled from
the relevance threshold up to 0.8), the share of cited sentences whose sources support them, and the share
of sentences that cite anything. A refusal's confidence is how sure we are that nothing relevant exists.
"""

from __future__ import annotations

from answerdesk.generate.assembly import Assembled

WEIGHTS = {"relevance": 0.35, "support": 0.45, "coverage": 0.20}
STRONG_RELEVANCE = 0.8


def confidence(relevance: float, assembled: Assembled, *, refused: bool, threshold: float) -> float:
    span = max(STRONG_RELEVANCE - threshold, 1e-6)
    rel = min(1.0, max(0.0, (relevance - threshold) / span))
    if refused:
        return round(1.0 - rel, 3)
    score = (
        WEIGHTS["relevance"] * rel
        + WEIGHTS["support"] * assembled.supported_ratio
        + WEIGHTS["coverage"] * assembled.citation_coverage
    )
    return round(score, 3)
