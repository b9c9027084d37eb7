"""Wiring for the command line: settings in, store/embedder/retriever out, each built on first use."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from answerdesk.config import Settings, load_settings
from answerdesk.embed.base import Embedder
from answerdesk.embed.factory import build_embedder
from answerdesk.errors import ConfigError
from answerdesk.generate.models import ConfiguredModels
from answerdesk.guard.factory import build_guardrails
from answerdesk.guard.guardrails import Guardrails
from answerdesk.observe.tracing import TracedModels
from answerdesk.pipeline import AnswerPipeline
from answerdesk.prompts.labels import PromptLabelStore
from answerdesk.prompts.registry import TEMPLATES_DIR, PromptRegistry
from answerdesk.retrieve.factory import build_retriever
from answerdesk.retrieve.hybrid import HybridRetriever
from answerdesk.store.sqlite import SqliteIndex
from answerdesk.types import Principal

KNOWN_STORES = ("sqlite",)


class AppContext:
    def __init__(self, config_file: Path | None = None) -> None:
        self._config_file = config_file

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self._config_file)

    @cached_property
    def store(self) -> SqliteIndex:
        kind = self.settings.store.kind
        if kind != "sqlite":
            raise ConfigError(f"store.kind '{kind}' is unknown; known kinds: {', '.join(KNOWN_STORES)}")
        return SqliteIndex(self.settings.store.path)

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedder)

    @cached_property
    def retriever(self) -> HybridRetriever:
        return build_retriever(self.store, self.embedder, self.settings)

    @cached_property
    def prompts(self) -> PromptRegistry:
        return PromptRegistry(TEMPLATES_DIR, store=PromptLabelStore(self.settings.store.path))

    @cached_property
    def models(self) -> ConfiguredModels:
        return ConfiguredModels(self.settings.generation)

    @cached_property
    def pipeline(self) -> AnswerPipeline:
        return AnswerPipeline(
            self.retriever,
            self.prompts,
            TracedModels(self.models),
            self.embedder,
            self.settings.generation,
            k=self.settings.retrieval.k,
            vectors=self.store,
            guards=self.guardrails,
        )

    @cached_property
    def guardrails(self) -> Guardrails | None:
        return build_guardrails(self.settings.guard, embedder=self.embedder, store_path=self.settings.store.path)

    @property
    def principal(self) -> Principal:
        ident = self.settings.identity
        return Principal(
            subject=ident.subject,
            tenant=ident.tenant,
            roles=frozenset({"admin"}),
            compliance_scopes=frozenset(ident.compliance_scopes),
        )
