"""The metadata filter language: ``field=value``, ``field:op=value``; validated before any backend sees it.

Operators: ``eq`` (default), ``ne``, ``in`` (comma-separated values), ``prefix``, and on dates ``gt``, ``gte``,
``lt``, ``lte`` (ISO dates). An unknown field or operator is an error naming the known ones; nothing falls
back to equality.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from answerdesk.errors import InputError
from answerdesk.security.access import IDENTITY_FIELDS
from answerdesk.types import FilterClause

#: Filterable document fields and whether they hold dates.
FIELDS: dict[str, bool] = {
    "region": False,
    "product": False,
    "plan": False,
    "owner": False,
    "doc_type": False,
    "retention": False,
    "source": False,
    "document_id": False,
    "tag": False,
    "updated_at": True,
    "ingested_at": True,
}
EQUALITY_OPS = ("eq", "ne", "in")
TEXT_OPS = (*EQUALITY_OPS, "prefix")
RANGE_OPS = ("gt", "gte", "lt", "lte")


def parse_filter(expression: str) -> FilterClause:
    """Parse ``region=eu``, ``region:in=eu,uk`` or ``updated_at:gte=2026-01-01``. Raises :class:`InputError`."""
    name, sep, raw = expression.partition("=")
    if not sep or not name.strip():
        raise InputError(f"filter '{expression}' must look like field=value or field:op=value (e.g. region=eu)")
    field, _, op = name.strip().partition(":")
    op = op.strip() or "eq"
    value: str | tuple[str, ...] = raw.strip()
    if op == "in":
        value = tuple(v.strip() for v in raw.split(",") if v.strip())
    return validate(FilterClause(field=field.strip(), op=op, value=value))


def validate(clause: FilterClause) -> FilterClause:
    """Check field, operator and value; dates are normalised to ISO. Raises :class:`InputError`."""
    if clause.field in IDENTITY_FIELDS:
        raise InputError(
            f"'{clause.field}' cannot be filtered on: it comes from the caller's identity, not from the request"
        )
    if clause.field not in FIELDS:
        raise InputError(f"unknown filter field '{clause.field}'; known fields: {', '.join(FIELDS)}")
    is_date = FIELDS[clause.field]
    allowed = (*EQUALITY_OPS, *RANGE_OPS) if is_date else TEXT_OPS
    if clause.op not in allowed:
        raise InputError(f"unknown operator '{clause.op}' for '{clause.field}'; use one of: {', '.join(allowed)}")
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    if not values or any(v == "" for v in values):
        raise InputError(f"filter on '{clause.field}' needs a value")
    if clause.op == "in" and not isinstance(clause.value, tuple):
        raise InputError(f"operator 'in' on '{clause.field}' needs a list of values")
    if clause.op != "in" and isinstance(clause.value, tuple):
        raise InputError(f"operator '{clause.op}' on '{clause.field}' takes one value, got {len(values)}")
    if is_date:
        normalised = tuple(_iso_date(clause.field, v) for v in values)
        value = normalised if clause.op == "in" else normalised[0]
        return FilterClause(field=clause.field, op=clause.op, value=value)
    return clause


def validate_all(clauses: Iterable[FilterClause]) -> tuple[FilterClause, ...]:
    return tuple(validate(c) for c in clauses)


def _iso_date(field: str, value: str) -> str:
    try:
        return dt.date.fromisoformat(value[:10]).isoformat() if len(value) >= 10 else _bad_date(field, value)
    except ValueError:
        return _bad_date(field, value)


def _bad_date(field: str, value: str) -> str:
    raise InputError(f"'{field}' needs an ISO date such as 2026-01-31, got '{value}'")
