"""BedrockTitanEmbedder: Amazon Titan Text Embeddings v2 on Bedrock (boto3's ``bedrock-runtime`` client).

One ``invoke_model`` call per text (Titan v2 embeds one text per call), several in flight at once from a small
thread pool; boto3 clients are thread-safe. Vectors are asked for normalised and normalised again here in
float32, so the contract holds whatever the service rounds. Queries and passages are embedded alike: Titan v2
is a symmetric model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from answerdesk._bedrock import provider_error, runtime_client
from answerdesk.embed.base import Vectors
from answerdesk.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

TITAN_V2 = "amazon.titan-embed-text-v2:0"
DIMENSIONS = (256, 512, 1024)
#: Status given to a 200 whose body is not a usable embedding.
BAD_UPSTREAM_RESPONSE = 502

# Titan's tokenizer is not published, so chunk sizes are counted with an approximation of a subword tokenizer:
# letters in runs of at most 8 (a long word costs several tokens), digits in runs of at most 3 (tokenizers split
# numbers finely), and every other non-space character on its own (punctuation and symbols are usually a token
# each). On English prose this gives about 1.2 pieces per word, close to what BPE tokenizers report. Chunks stay
# far below Titan's 8,192-token input limit either way; what matters is that offsets are exact character spans.
_PIECE = re.compile(r"[^\W\d_]{1,8}|\d{1,3}|[^\w\s]|_", re.UNICODE)


class ApproxTokenCounter:
    """Token spans by the regex approximation above (word pieces, digit groups, single symbols)."""

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in _PIECE.finditer(text)]


class BedrockTitanEmbedder:
    """An :class:`~answerdesk.embed.base.Embedder` backed by Titan Text Embeddings v2.

    ``dimensions`` is 256, 512 or 1024. Pass a boto3 ``bedrock-runtime`` ``client``, or let one be built from
    ``region``, ``endpoint_url``, ``profile`` and ``timeout_s`` (without botocore retries). ``concurrency`` is the
    number of calls in flight for one batch. Raises :class:`ConfigError` for bad settings or a missing boto3
    (``pip install 'answerdesk[bedrock]'``); embedding raises :class:`ProviderError`.
    """

    def __init__(
        self,
        *,
        dimensions: int = 1024,
        client: BedrockRuntimeClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        timeout_s: float = 30.0,
        concurrency: int = 8,
        model: str = TITAN_V2,
    ) -> None:
        if dimensions not in DIMENSIONS:
            raise ConfigError(
                f"Titan Text Embeddings v2 dimensions must be one of {', '.join(map(str, DIMENSIONS))}; "
                f"got {dimensions}"
            )
        if concurrency < 1:
            raise ConfigError(f"embedder concurrency must be at least 1; got {concurrency}")
        self._dim = dimensions
        self._model = model
        self._concurrency = concurrency
        self._client = client or runtime_client(
            region=region, endpoint_url=endpoint_url, timeout_s=timeout_s, profile=profile
        )
        self._tokenizer = ApproxTokenCounter()

    @property
    def name(self) -> str:
        # The dimension is part of the name: vectors of different sizes must never share an index.
        return f"bedrock:{self._model}:{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def tokenizer(self) -> ApproxTokenCounter:
        return self._tokenizer

    @property
    def _label(self) -> str:
        return f"bedrock/{self._model}"

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if len(texts) <= 1 or self._concurrency == 1:
            for row, text in enumerate(texts):
                out[row] = self._embed_one(text)
            return out
        with ThreadPoolExecutor(max_workers=min(self._concurrency, len(texts))) as pool:
            # map() re-raises the first failure in input order; the rest of the batch is then discarded.
            for row, vector in enumerate(pool.map(self._embed_one, texts)):
                out[row] = vector
        return out

    def _embed_one(self, text: str) -> Vectors:
        body = json.dumps({"inputText": text, "dimensions": self._dim, "normalize": True})
        try:
            response = self._client.invoke_model(
                modelId=self._model, body=body, contentType="application/json", accept="application/json"
            )
            payload = json.loads(response["body"].read())
        except json.JSONDecodeError as exc:
            raise ProviderError(f"{self._label}: response is not JSON: {exc}", status=BAD_UPSTREAM_RESPONSE) from exc
        except Exception as exc:
            raise provider_error(exc, label=self._label) from exc
        return self._vector(payload)

    def _vector(self, payload: object) -> Vectors:
        embedding = payload.get("embedding") if isinstance(payload, dict) else None
        if not isinstance(embedding, list) or len(embedding) != self._dim:
            size = len(embedding) if isinstance(embedding, list) else "no"
            raise ProviderError(
                f"{self._label}: expected an embedding of {self._dim} numbers, got {size}",
                status=BAD_UPSTREAM_RESPONSE,
            )
        try:
            vector = np.asarray(embedding, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ProviderError(
                f"{self._label}: embedding holds non-numbers: {exc}", status=BAD_UPSTREAM_RESPONSE
            ) from exc
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise ProviderError(f"{self._label}: embedding is zero or not finite", status=BAD_UPSTREAM_RESPONSE)
        return vector / np.float32(norm)
