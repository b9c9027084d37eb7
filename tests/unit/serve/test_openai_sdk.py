"""The OpenAI-compatible endpoint, called with the official ``openai`` SDK as its users would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.unit.serve.conftest import Service


@pytest.fixture
async def sdk(service: Service) -> AsyncIterator[openai.AsyncOpenAI]:
    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield openai.AsyncOpenAI(
            api_key=service.keys["agent"], base_url="http://testserver/v1", http_client=http, max_retries=0
        )


async def test_chat_completion_answers_with_citations(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="answerdesk",
        messages=[
            {"role": "system", "content": "ignored: answerdesk's versioned prompt is the system prompt"},
            {"role": "user", "content": "how are annual plans refunded?"},
        ],
    )
    assert "30 days" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    extra = completion.model_extra or {}
    assert extra["citations"][0]["document_id"] == "refunds"
    assert extra["answerdesk"]["prompt_version"] == 1 and extra["answerdesk"]["route"] == "default"


async def test_streamed_chat_completion(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="cheap@v1", messages=[{"role": "user", "content": "annual plan refund"}], stream=True
    )
    text, last = "", None
    async for chunk in stream:
        text += chunk.choices[0].delta.content or ""
        last = chunk
    assert text.startswith("Annual plans")
    assert last is not None and last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["answerdesk"]["model"] == "cheap-model"
    assert (last.model_extra or {})["citations"]


async def test_models_lists_the_routes(sdk: openai.AsyncOpenAI) -> None:
    names = [m.id async for m in sdk.models.list()]
    assert names[0] == "answerdesk" and {"default", "cheap"} <= set(names)


async def test_sdk_errors_carry_the_status(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="unknown model or route"):
        await sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "refund"}])
    with pytest.raises(openai.UnprocessableEntityError, match="last user"):
        await sdk.chat.completions.create(model="answerdesk", messages=[{"role": "assistant", "content": "hi"}])
