from __future__ import annotations

from answerdesk.generate.base import CompletionRequest
from answerdesk.generate.extractive import DEFAULT_REFUSAL, ExtractiveLLM, extract_answer
from answerdesk.types import Message

PROMPT = """<source id="1" title="Refunds">Annual plans can be refunded within 30 days of the charge. After day 30,
refunds are prorated for unused whole months.</source>
<source id="2" title="Labels">Print labels from the Orders page. Thermal printers need 4x6 labels.</source>
<question>{q}</question>"""


def test_quotes_the_supporting_sentence_with_its_citation() -> None:
    text = extract_answer(PROMPT.format(q="How long can I get a refund on an annual plan?"), refusal="no")
    assert text.startswith("Annual plans can be refunded within 30 days of the charge [1].")
    assert "[2]" not in text


def test_refuses_when_nothing_covers_the_question() -> None:
    assert extract_answer(PROMPT.format(q="What's the weather in Lisbon?"), refusal="nope") == "nope"
    assert extract_answer("no sources here <question>refund?</question>", refusal="nope") == "nope"


def test_cites_each_source_it_quotes() -> None:
    text = extract_answer(PROMPT.format(q="thermal printer label size and refund days"), refusal="no")
    assert "[1]" in text and "[2]" in text


async def test_streams_exactly_the_completed_text() -> None:
    llm = ExtractiveLLM()
    request = CompletionRequest([Message("user", PROMPT.format(q="which label size do thermal printers need?"))])
    full = (await llm.complete(request)).text
    events = [e async for e in llm.stream(request)]
    assert "".join(e.text for e in events if e.kind == "delta") == full
    assert events[-1].kind == "finish" and events[-1].usage is not None
    assert full != DEFAULT_REFUSAL


def test_never_quotes_a_heading_trail_or_a_fragment() -> None:
    prompt = """<source id="1" title="Tracking is not updating">Step-by-step checks > 1
Annual tracking
For tracking numbers added by hand, the wrong carrier is the most common cause of missing updates.</source>
<question>my tracking number is not updating</question>"""
    text = extract_answer(prompt, refusal="no")
    assert (
        text == "For tracking numbers added by hand, the wrong carrier is the most common cause of missing updates [1]."
    )


def test_quotes_one_source_unless_another_answers_a_different_part() -> None:
    prompt = """<source id="1" title="Refunds">Annual plans can be refunded within 30 days of the charge.</source>
<source id="2" title="Refunds again">Refunds on annual plans are possible within 30 days, says billing.</source>
<question>annual plan refund days</question>"""
    assert "[2]" not in extract_answer(prompt, refusal="no")  # the same words again: one source is enough
