"""Document metadata from front matter, ``<file>.meta.json`` sidecars and ``--meta key=value`` pairs.

Each layer is a plain mapping; :func:`merge_meta` layers them (later wins, tags are unioned) and
:func:`parse_meta` validates the result into a :class:`DocumentMeta`. A bad value is an error that names
the key, the value and the accepted form: metadata decides who may read a document, so nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from answerdesk.errors import IngestError, InputError
from answerdesk.types import KNOWN_META_KEYS, DocumentMeta

#: Keys that set a document's access; a number there is more likely a mistake than an intended value.
_ACCESS_KEYS = frozenset({"tenant", "compliance_scope"})
_TEXT_KEYS = frozenset(KNOWN_META_KEYS) - {"updated_at"}
_ALL_KEYS = frozenset(KNOWN_META_KEYS) | {"id", "tags"}
_SCALARS = (str, int, float, bool, dt.date)


def canonical_key(key: object) -> str:
    """The key as parse_meta reads it: known keys match case-insensitively and with ``-`` for ``_``."""
    text = str(key).strip()
    known = text.lower().replace("-", "_")
    return known if known in _ALL_KEYS else text


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _text(key: str, value: object, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if key not in _ACCESS_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    accepted = "a string" if key in _ACCESS_KEYS else "a string or a number"
    raise IngestError(where, f"metadata '{key}' must be {accepted}, got {_describe(value)}")


def _date(value: object, where: str) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise IngestError(
        where,
        f"metadata 'updated_at' must be a date like 2024-05-31 or an ISO datetime like "
        f"2024-05-31T09:30:00Z, got {_describe(value)}",
    )


def _tag_items(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, str):
        return list(value.split(","))
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _tags(value: object, where: str) -> tuple[str, ...]:
    tags: list[str] = []
    for item in _tag_items(value):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise IngestError(
                where,
                f"metadata 'tags' must be a list of strings or a comma-separated string, "
                f"got {_describe(item)} in {value!r}",
            )
        tag = str(item).strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _extra(key: str, value: object, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, _SCALARS):
        return str(value).strip()
    raise IngestError(
        where, f"metadata '{key}' must be a single value (text, number, date or true/false), got {_describe(value)}"
    )


def _explicit_id(value: object, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    raise IngestError(where, f"metadata 'id' must be a non-empty string, got {_describe(value)}")


def parse_meta(raw: Mapping[str, object], *, where: str) -> tuple[str | None, DocumentMeta]:
    """Validate one metadata mapping into ``(explicit id or None, DocumentMeta)``.

    Known keys are the fields of :class:`DocumentMeta` plus ``id`` and ``tags`` (a list of strings or a
    comma-separated string); ``updated_at`` takes a date or an ISO date/datetime string. Any other key with
    a single value goes to ``extra`` as a string. A ``None`` value leaves the field unset.

    Raises :class:`IngestError` (with ``where`` as its source) naming the key, the value and the accepted
    form when a value has the wrong type, a date does not parse or an unknown key holds a list or mapping.
    """
    fields: dict[str, Any] = {}
    extra: dict[str, str] = {}
    doc_id: str | None = None
    for raw_key, value in raw.items():
        key = canonical_key(raw_key)
        if key == "id":
            doc_id = _explicit_id(value, where)
        elif key == "tags":
            fields["tags"] = _tags(value, where)
        elif key == "updated_at":
            fields["updated_at"] = _date(value, where)
        elif key in _TEXT_KEYS:
            fields[key] = _text(key, value, where)
        else:
            text = _extra(key, value, where)
            if text is not None:
                extra[key] = text
    if fields.get("title") is None:
        fields.pop("title", None)  # DocumentMeta.title is "" when unknown, never None
    return doc_id, DocumentMeta(**fields, extra=extra)


def merge_meta(*layers: Mapping[str, object]) -> dict[str, object]:
    """Layer metadata mappings, lowest priority first: a later layer's value wins, tags are unioned.

    Keys are put in their canonical form first, so ``Tenant`` in front matter and ``tenant`` on the
    command line are the same key. Values are not validated here; :func:`parse_meta` does that. Raises
    nothing.
    """
    merged: dict[str, object] = {}
    tags: list[object] = []
    has_tags = False
    for layer in layers:
        for raw_key, value in layer.items():
            key = canonical_key(raw_key)
            if key == "tags":
                has_tags = True
                tags.extend(t for t in _tag_items(value) if t not in tags)
            else:
                merged[key] = value
    if has_tags:
        merged["tags"] = tags
    return merged


def parse_cli_meta(pairs: Sequence[str]) -> dict[str, str]:
    """Turn ``--meta key=value`` arguments into a mapping; a repeated ``tags`` adds, other keys replace.

    Raises :class:`InputError` when an argument has no ``=`` or an empty key.
    """
    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--meta expects key=value, got '{pair}'")
        value = value.strip()
        if canonical_key(key) == "tags" and meta.get(key):
            meta[key] = f"{meta[key]},{value}"
        else:
            meta[key] = value
    return meta
