from __future__ import annotations

import pytest

from answerdesk.errors import InputError
from answerdesk.store.filters import parse_filter, validate
from answerdesk.types import FilterClause


def test_parse_forms() -> None:
    assert parse_filter("region=eu") == FilterClause("region", "eq", "eu")
    assert parse_filter("region:in=eu, uk") == FilterClause("region", "in", ("eu", "uk"))
    assert parse_filter("updated_at:gte=2026-01-31") == FilterClause("updated_at", "gte", "2026-01-31")
    assert parse_filter("updated_at:lt=2026-01-31T10:00:00").value == "2026-01-31"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("region", "field=value"),
        ("=eu", "field=value"),
        ("colour=red", "unknown filter field 'colour'"),
        ("region:like=eu", "unknown operator 'like'"),
        ("region:gte=eu", "unknown operator 'gte'"),
        ("updated_at:gte=yesterday", "ISO date"),
        ("region=", "needs a value"),
        ("tenant=globex", "identity"),
        ("compliance_scope=pci", "identity"),
    ],
)
def test_bad_filters_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_filter(expression)


def test_in_needs_a_list_and_eq_one_value() -> None:
    with pytest.raises(InputError):
        validate(FilterClause("region", "in", "eu"))
    with pytest.raises(InputError):
        validate(FilterClause("region", "eq", ("eu", "uk")))
