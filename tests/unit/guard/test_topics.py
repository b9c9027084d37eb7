from __future__ import annotations

import pytest
from pydantic import ValidationError

from answerdesk.guard.topics import DeniedTopic


def test_denied_topic_rejects_a_misspelled_field() -> None:
    with pytest.raises(ValidationError, match="exampels"):
        DeniedTopic.model_validate({"name": "x", "definition": "y", "exampels": []})
