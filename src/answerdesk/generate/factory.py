"""Resolves a configured model ``kind`` to its provider, in one place. SDKs are imported only when used."""

from __future__ import annotations

from answerdesk.config import GenerationSettings, ModelSettings
from answerdesk.errors import ConfigError
from answerdesk.generate.base import LLM

KNOWN_KINDS = ("extractive", "llamacpp", "openai_compat", "bedrock", "fake")


def build_llm(name: str, settings: ModelSettings, *, generation: GenerationSettings) -> LLM:
    """Raises :class:`ConfigError` for an unknown kind (listing the known ones) or a provider's bad settings."""
    if settings.kind == "extractive":
        from answerdesk.generate.extractive import ExtractiveLLM

        return ExtractiveLLM(refusal=generation.refusal)
    if settings.kind == "llamacpp":
        from answerdesk.generate.llamacpp import LlamaCppLLM

        return LlamaCppLLM.from_settings(settings)
    if settings.kind == "openai_compat":
        from answerdesk.generate.openai_compat import OpenAICompatLLM

        return OpenAICompatLLM.from_settings(settings)
    if settings.kind == "bedrock":
        from answerdesk.generate.bedrock import BedrockLLM

        return BedrockLLM.from_settings(settings)
    if settings.kind == "fake":
        from answerdesk.generate.fake import FakeLLM

        return FakeLLM(model=settings.model or name, context_window=settings.context_window)
    raise ConfigError(
        f"generation.models.{name}.kind '{settings.kind}' is unknown; known kinds: {', '.join(KNOWN_KINDS)}"
    )
