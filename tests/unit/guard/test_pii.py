"""The PII guard: placeholders, actions, custom patterns, names through a recognizer, and bad input."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from answerdesk.errors import ConfigError, GuardError
from answerdesk.guard.ner import FakeRecognizer
from answerdesk.guard.pii import PiiGuard, Placeholders, SensitiveInformationPolicy, sha256


def policy(**data: object) -> SensitiveInformationPolicy:
    return SensitiveInformationPolicy.model_validate(data)


def test_placeholders_are_typed_and_stable_within_a_conversation() -> None:
    guard = PiiGuard()
    conversation = Placeholders()
    first = guard.redact("I am jo@example.com, call 415-555-2671", stage="input", placeholders=conversation)
    second = guard.redact("Again: jo@example.com, not ann@example.com", stage="input", placeholders=conversation)
    assert first.text == "I am [EMAIL_1], call [PHONE_1]"
    assert second.text == "Again: [EMAIL_1], not [EMAIL_2]"
    assert [f.rule for f in first.findings] == ["EMAIL", "PHONE"]


def test_the_same_card_written_differently_gets_one_placeholder() -> None:
    guard = PiiGuard(policy(piiEntities=["CREDIT_CARD"]))
    out = guard.check("4716 4245 2151 1864 and 4716-4245-2151-1864", stage="output")
    assert out.text == "[CREDIT_CARD_1] and [CREDIT_CARD_1]"


def test_findings_carry_the_hash_and_span_never_the_text() -> None:
    text = "ssn 308-63-0237"
    out = PiiGuard(policy(piiEntities=[{"type": "SSN", "action": "BLOCK"}])).check(text, stage="input")
    (finding,) = out.findings
    assert (finding.rule, finding.action, finding.span) == ("US_SSN", "BLOCK", (4, 15))
    assert finding.match_sha256 == sha256("308-63-0237")
    assert "308" not in repr(finding)
    assert out.action == "BLOCK"


def test_custom_regex_entity() -> None:
    guard = PiiGuard(policy(piiEntities=[], regexes=[{"name": "ACCOUNT_ID", "pattern": r"\bPW-\d{8}\b"}]))
    assert guard.check("account PW-12345678 please", stage="input").text == "account [ACCOUNT_ID_1] please"


def test_catastrophic_regex_is_rejected_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"regexes.0 \(SLOW\): the pattern backtracks catastrophically"):
        policy(regexes=[{"name": "SLOW", "pattern": r"(a+)+$"}])


def test_a_regex_that_times_out_at_run_time_fails_the_guard() -> None:
    # Passes the load-time probes (they contain no "x"), then backtracks on this text.
    guard = PiiGuard(policy(regexes=[{"name": "SLOW", "pattern": r"(x+x+)+y"}], regexTimeoutMs=5))
    with pytest.raises(GuardError, match="ran past 5 ms"):
        guard.check("x" * 5000, stage="input")


def test_custom_patterns_keep_the_gil_so_a_busy_thread_does_not_stall_them() -> None:
    # The streaming redactor runs on the server's event loop for every chunk. A match that released the GIL
    # waited for it behind any busy thread: 0.5 ms a call instead of a few microseconds.
    guard = PiiGuard(policy(piiEntities=[], regexes=[{"name": "ACCOUNT_ID", "pattern": r"\bPW-\d{8}\b"}]))
    stop = threading.Event()

    def busy() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        started = time.perf_counter()
        for _ in range(1000):
            guard.check("Annual plans are refunded in full within 30 days ", stage="output")
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
    assert elapsed < 0.1, f"1,000 checks took {elapsed * 1000:.0f} ms beside a busy thread"


def test_invalid_regex_and_unknown_entity_are_named() -> None:
    with pytest.raises(ValidationError, match="not a valid regex"):
        policy(regexes=[{"name": "BAD", "pattern": "(unclosed"}])
    with pytest.raises(ValidationError, match="unknown PII entity 'PASSPORT'"):
        policy(piiEntities=["PASSPORT"])


def test_names_come_from_the_recognizer_and_switch_to_sentence_segments() -> None:
    guard = PiiGuard(policy(piiEntities=["PERSON", "EMAIL"]), recognizer=FakeRecognizer({"Ana Lima": "PERSON"}))
    assert guard.segment_mode == "sentence"
    out = guard.check("This is Ana Lima. Mail ana@example.com.", stage="input")
    assert out.text == "This is [PERSON_1]. Mail [EMAIL_1]."


def test_ner_without_a_recognizer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no recognizer"):
        PiiGuard(policy(piiEntities=["PERSON"])).check("Ana", stage="input")


def test_a_crashing_recognizer_is_a_guard_failure() -> None:
    guard = PiiGuard(policy(piiEntities=["PERSON"]), recognizer=FakeRecognizer({}, fail=True))
    with pytest.raises(GuardError, match="entity recognizer failed"):
        guard.check("Ana", stage="input")


def test_mixed_scripts_and_emoji_keep_their_text() -> None:
    text = "Заказ 📦 для jo@example.com — 東京 🙂 +81 3-1234-5678"
    assert PiiGuard().check(text, stage="input").text == "Заказ 📦 для [EMAIL_1] — 東京 🙂 [PHONE_1]"


def test_all_invisible_text_passes_unchanged() -> None:
    text = "\u200b\u200d\u2060\ufeff" * 100
    out = PiiGuard().check(text, stage="input")
    assert out.text == text
    assert out.findings == ()


def test_a_megabyte_input_is_redacted() -> None:
    text = ("Hello, my email is jo@example.com and this is filler text. " * 17_000)[:1_000_000]
    out = PiiGuard().check(text, stage="input")
    assert "jo@example.com" not in out.text
    assert out.text.count("[EMAIL_1]") == len(out.findings) > 16_000
