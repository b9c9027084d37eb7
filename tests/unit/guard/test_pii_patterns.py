"""Pattern PII: each rule accepts real values and rejects look-alikes a support thread is full of."""

from __future__ import annotations

import pytest

from answerdesk.guard.pii_patterns import find_patterns, iban_valid, luhn_valid, ssn_valid


def found(text: str) -> list[tuple[str, str]]:
    return [(s.entity, s.value) for s in find_patterns(text)]


def test_email_and_phone_in_a_question() -> None:
    assert found("Mail jane.doe+orders@example.co.uk or call (415) 555-2671 x12") == [
        ("EMAIL", "jane.doe+orders@example.co.uk"),
        ("PHONE", "(415) 555-2671 x12"),
    ]


def test_international_phone_numbers() -> None:
    assert found("+44 20 7946 0958 and +49 30 901820") == [("PHONE", "+44 20 7946 0958"), ("PHONE", "+49 30 901820")]


def test_dates_times_and_order_numbers_are_not_phones() -> None:
    assert found("Order 123456789 shipped 2024-01-12 at 10:30, tracking 1Z999AA10123456784") == []


@pytest.mark.parametrize(
    ("ssn", "valid"),
    [("308-63-0237", True), ("000-12-3456", False), ("666-12-3456", False), ("912-12-3456", False),
     ("123-00-4567", False), ("123-45-0000", False)],
)  # fmt: skip
def test_ssn_allocation_rules(ssn: str, valid: bool) -> None:
    area, group, serial = ssn.split("-")
    assert ssn_valid(area, group, serial) is valid
    assert (("US_SSN", ssn) in found(f"my ssn is {ssn}")) is valid


def test_nine_bare_digits_are_not_an_ssn() -> None:
    assert [e for e, _ in found("account 308630237")] == []


def test_card_needs_a_valid_luhn_checksum() -> None:
    assert luhn_valid("4716424521511864")
    assert not luhn_valid("4716424521511865")
    assert found("card 4716 4245 2151 1864 then 4716 4245 2151 1865") == [("CREDIT_CARD", "4716 4245 2151 1864")]


def test_iban_needs_a_valid_mod97_checksum() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")
    assert found("pay GB82 WEST 1234 5698 7654 32 or gb69pmnj18913943430745") == [
        ("IBAN", "GB82 WEST 1234 5698 7654 32"),
        ("IBAN", "gb69pmnj18913943430745"),
    ]


def test_ip_addresses_are_validated() -> None:
    assert found("from 86.231.85.193 and d80:e4b5:79da:6cf6:71f3:51f7:9161:c319, not 999.1.1.1 or 1.2.3") == [
        ("IP_ADDRESS", "86.231.85.193"),
        ("IP_ADDRESS", "d80:e4b5:79da:6cf6:71f3:51f7:9161:c319"),
    ]


def test_a_megabyte_of_digits_or_at_signs_is_linear() -> None:
    # Runs of one character are the worst case for a backtracking regex; each must stay a fraction of a second.
    for text in ("1" * 1_000_000, "a@" * 500_000, "1 " * 500_000, "(1)-" * 250_000):
        assert find_patterns(text) == []


def test_numbers_written_as_north_american_phones_count_even_when_unassigned() -> None:
    # 751 is no assigned area code, but a reader sees a phone number, and so does whoever it leaks to.
    assert found("Fax: 001-751-954-9268x818-Fax or (790)091-7442") == [
        ("PHONE", "001-751-954-9268x818"),
        ("PHONE", "(790)091-7442"),
    ]
