"""Prompts as versioned data: template files in ``templates/``, the registry that loads and checks them, and
the labels (``production``, ``canary`` …) that say which version is served."""

from answerdesk.prompts.labels import LabelEntry, LabelEvent, LabelStore, PromptLabelStore
from answerdesk.prompts.registry import (
    DEFAULT_LABEL,
    TEMPLATES_DIR,
    USER_MARKER,
    PromptRegistry,
    PromptTemplate,
    RenderedPrompt,
)

__all__ = [
    "DEFAULT_LABEL",
    "TEMPLATES_DIR",
    "USER_MARKER",
    "LabelEntry",
    "LabelEvent",
    "LabelStore",
    "PromptLabelStore",
    "PromptRegistry",
    "PromptTemplate",
    "RenderedPrompt",
]
