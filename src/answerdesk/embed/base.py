"""The Embedder Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class TokenCounter(Protocol):
    """The embedder's own tokenizer, as chunking needs it."""

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the tokens of ``text`` (special tokens excluded), in order."""
        ...


class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors of ``dim`` dimensions.

    Queries and passages are separate calls because some models embed them differently (instruction
    prefixes, asymmetric encoders). Both take a batch and return an array of shape ``(len(texts), dim)``.
    Raise :class:`answerdesk.errors.ProviderError` when the model fails, :class:`ConfigError` when it
    cannot be loaded.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def tokenizer(self) -> TokenCounter: ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...

    def embed_passages(self, texts: Sequence[str]) -> Vectors: ...
