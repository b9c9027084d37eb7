from __future__ import annotations

from answerdesk.guard.grounding import ContextualGroundingPolicy


def test_policy_reads_the_file_spelling() -> None:
    policy = ContextualGroundingPolicy.model_validate({"groundingThreshold": 0.7, "responseAction": "CHALLENGE"})
    assert policy.grounding_threshold == 0.7
    assert policy.response_action == "CHALLENGE"
