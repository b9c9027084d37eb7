from __future__ import annotations

import pytest
from pydantic import ValidationError

from answerdesk.guard.injection import PromptAttackPolicy


def test_policy_reads_the_file_spelling_and_rejects_unknown_actions() -> None:
    assert PromptAttackPolicy.model_validate({"applyToContext": False}).apply_to_context is False
    with pytest.raises(ValidationError, match="action"):
        PromptAttackPolicy.model_validate({"action": "DROP"})
