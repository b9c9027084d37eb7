"""BedrockTitanEmbedder against botocore's Stubber (recorded Titan v2 payloads) and a small fake client."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from typing import Any, cast

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from answerdesk.embed.bedrock import TITAN_V2, ApproxTokenCounter, BedrockTitanEmbedder
from answerdesk.errors import ConfigError, ProviderError
from answerdesk.ingest.chunking import embed_window


def real_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def titan_response(embedding: list[float], tokens: int = 7) -> dict[str, Any]:
    """An invoke_model response as Titan v2 sends it."""
    data = json.dumps({"embedding": embedding, "embeddingsByType": {"float": embedding}, "inputTextTokenCount": tokens})
    raw = data.encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


class JsonBody:
    """Equal to a JSON request body that decodes to ``expected`` (key order and spacing do not matter)."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str | bytes) and json.loads(other) == self.expected

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


def expected_call(text: str, dims: int) -> dict[str, Any]:
    return {
        "modelId": TITAN_V2,
        "body": JsonBody({"inputText": text, "dimensions": dims, "normalize": True}),
        "contentType": "application/json",
        "accept": "application/json",
    }


def embedder_with(client: object, **options: Any) -> BedrockTitanEmbedder:
    return BedrockTitanEmbedder(client=cast(Any, client), **options)


def test_embeds_each_text_with_one_call_and_returns_unit_float32_rows() -> None:
    client = real_client()
    first = [3.0] + [0.0] * 255  # not quite normalised, as a service may round: the rows must still be unit
    second = [0.0, 0.6, 0.8] + [0.0] * 253
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response(first), expected_call("refund window", 256))
        stub.add_response("invoke_model", titan_response(second), expected_call("thermal labels", 256))
        vectors = embedder_with(client, dimensions=256, concurrency=1).embed_passages(
            ["refund window", "thermal labels"]
        )
        stub.assert_no_pending_responses()
    assert vectors.shape == (2, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert vectors[0, 0] == pytest.approx(1.0)
    assert vectors[1, 1:3] == pytest.approx([0.6, 0.8])


def test_queries_use_the_same_model_and_dimensions() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([1.0] + [0.0] * 511), expected_call("how long?", 512))
        vectors = embedder_with(client, dimensions=512).embed_queries(["how long?"])
    assert vectors.shape == (1, 512)


def test_an_empty_batch_makes_no_call() -> None:
    client = real_client()
    with Stubber(client):
        assert embedder_with(client, dimensions=256).embed_passages([]).shape == (0, 256)


@pytest.mark.parametrize(
    ("code", "http_status", "status"),
    [
        ("ThrottlingException", 429, 429),
        ("ModelTimeoutException", 408, 408),
        ("ServiceUnavailableException", 503, 503),
        ("InternalServerException", 500, 500),
        ("ValidationException", 400, 400),
        ("AccessDeniedException", 403, 403),
        ("ResourceNotFoundException", 404, 404),
    ],
)
def test_service_errors_keep_their_status_and_message(code: str, http_status: int, status: int) -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", code, f"{code}: nope", http_status)
        with pytest.raises(ProviderError) as info:
            embedder_with(client).embed_queries(["hello"])
    assert info.value.status == status
    assert f"{code}: nope" in str(info.value)


def test_throttling_carries_retry_after() -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_model", "ThrottlingException", "slow down", 429, response_meta={"HTTPHeaders": {"retry-after": "4"}}
        )
        with pytest.raises(ProviderError) as info:
            embedder_with(client).embed_passages(["hello"])
    assert (info.value.status, info.value.retry_after) == (429, 4.0)


@pytest.mark.parametrize(
    "embedding",
    [[0.1] * 255, [0.0] * 256, ["a"] * 256],
    ids=["wrong size", "zero vector", "not numbers"],
)
def test_an_unusable_embedding_is_a_bad_gateway(embedding: list[Any]) -> None:
    client = real_client()
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response(embedding))
        with pytest.raises(ProviderError) as info:
            embedder_with(client, dimensions=256).embed_passages(["hello"])
    assert info.value.status == 502


def test_dimensions_must_be_ones_titan_v2_offers() -> None:
    with pytest.raises(ConfigError, match="256, 512, 1024"):
        embedder_with(object(), dimensions=384)


def test_name_and_dim_say_which_vectors_an_index_holds() -> None:
    embedder = embedder_with(object(), dimensions=512)
    assert embedder.dim == 512
    assert embedder.name == "bedrock:amazon.titan-embed-text-v2:0:512"


class HashingTitan:
    """Answers like Titan with a vector that depends on the text; records how many calls overlap."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def invoke_model(self, **kwargs: Any) -> dict[str, Any]:
        text = json.loads(kwargs["body"])["inputText"]
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.02)
        with self._lock:
            self.in_flight -= 1
        embedding = [0.0] * self.dims
        embedding[int(text.split()[-1])] = 1.0
        return titan_response(embedding)


def test_a_batch_runs_calls_concurrently_and_keeps_the_order() -> None:
    client = HashingTitan(256)
    texts = [f"passage {i}" for i in range(12)]
    vectors = embedder_with(client, dimensions=256, concurrency=4).embed_passages(texts)
    assert [int(np.argmax(row)) for row in vectors] == list(range(12))
    assert 1 < client.most_in_flight <= 4


def test_without_boto3_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigError) as info:
        BedrockTitanEmbedder(region="us-east-1")
    assert "pip install 'answerdesk[bedrock]'" in str(info.value)


def test_approximate_tokens_are_exact_character_spans() -> None:
    text = "Internationalization costs $1,250.00 per seat — see ticket #4821."
    spans = ApproxTokenCounter().offsets(text)
    pieces = [text[a:b] for a, b in spans]
    assert "".join(pieces) == "".join(text.split())  # every non-space character, in order, nothing else
    assert pieces[:3] == ["Internat", "ionaliza", "tion"]  # long words cost several tokens
    assert pieces[4:11] == ["$", "1", ",", "250", ".", "00", "per"]


def test_approximate_tokens_are_close_to_one_per_word_on_prose() -> None:
    prose = (
        "Annual plans can be refunded within 30 days of the charge. After day 30, refunds are prorated for "
        "unused whole months, and the customer keeps access until the end of the billing period."
    )
    ratio = len(ApproxTokenCounter().offsets(prose)) / len(prose.split())
    assert 1.0 <= ratio <= 1.5


def test_chunking_can_cut_an_embed_window_with_it() -> None:
    window = embed_window("Refunds", ("Annual plans",), "one two three four five six", ApproxTokenCounter(), 6)
    assert window == "Refunds > Annual plans\none two"
