"""Metadata: front matter, sidecars and --meta become a validated DocumentMeta."""

from __future__ import annotations

import datetime as dt

import pytest

from answerdesk.errors import IngestError, InputError
from answerdesk.ingest.metadata import merge_meta, parse_cli_meta, parse_meta
from answerdesk.types import DocumentMeta


def test_parse_meta_reads_known_keys_tags_and_extra() -> None:
    doc_id, meta = parse_meta(
        {
            "id": "refund-policy",
            "title": " Refund policy ",
            "Tenant": "acme",
            "compliance-scope": "pci",
            "region": "eu",
            "plan": 2024,
            "updated_at": dt.date(2024, 5, 31),
            "tags": ["billing", "refunds", "billing"],
            "reviewed": True,
            "priority": 2,
            "empty": None,
        },
        where="kb/refunds.md",
    )
    assert doc_id == "refund-policy"
    assert meta == DocumentMeta(
        title="Refund policy",
        tenant="acme",
        compliance_scope="pci",
        region="eu",
        plan="2024",
        updated_at=dt.date(2024, 5, 31),
        tags=("billing", "refunds"),
        extra={"reviewed": "true", "priority": "2"},
    )


def test_parse_meta_accepts_comma_separated_tags_and_iso_strings() -> None:
    _, meta = parse_meta({"tags": "billing, refunds,,", "updated_at": "2024-05-31T09:30:00Z"}, where="x")
    assert meta.tags == ("billing", "refunds")
    assert meta.updated_at == dt.date(2024, 5, 31)
    _, meta = parse_meta({"updated_at": "2024-05-31"}, where="x")
    assert meta.updated_at == dt.date(2024, 5, 31)


def test_parse_meta_without_id_returns_none() -> None:
    assert parse_meta({}, where="x") == (None, DocumentMeta())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"owner": ["ann", "bob"]}, "metadata 'owner' must be a string or a number, got ['ann', 'bob'] (list)"),
        ({"tenant": 42}, "metadata 'tenant' must be a string, got 42 (int)"),
        ({"updated_at": "last tuesday"}, "metadata 'updated_at' must be a date like 2024-05-31"),
        ({"updated_at": "last tuesday"}, "got 'last tuesday' (str)"),
        ({"audience": {"team": "support"}}, "metadata 'audience' must be a single value"),
        ({"tags": [["nested"]]}, "metadata 'tags' must be a list of strings or a comma-separated string"),
        ({"id": ""}, "metadata 'id' must be a non-empty string"),
    ],
)
def test_parse_meta_rejects_bad_values_with_clear_message(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(IngestError) as caught:
        parse_meta(raw, where="kb/refunds.md")
    assert caught.value.source == "kb/refunds.md"
    assert expected in str(caught.value)


def test_merge_meta_later_layers_win_and_tags_union() -> None:
    merged = merge_meta(
        {"Owner": "ann", "region": "us", "tags": ["billing"]},
        {"owner": "bob", "tags": "refunds, billing"},
        {"region": "eu", "tags": "urgent"},
    )
    assert merged["owner"] == "bob"
    assert merged["region"] == "eu"
    _, meta = parse_meta(merged, where="x")
    assert meta.tags == ("billing", "refunds", "urgent")


def test_merge_meta_leaves_tags_out_when_no_layer_has_them() -> None:
    assert merge_meta({"owner": "ann"}, {}) == {"owner": "ann"}


def test_parse_cli_meta_reads_pairs() -> None:
    pairs = ["region=eu", "url=https://x.test/?a=b", "tags=billing", "tags=refunds", " owner = ann "]
    assert parse_cli_meta(pairs) == {
        "region": "eu",
        "url": "https://x.test/?a=b",
        "tags": "billing,refunds",
        "owner": "ann",
    }


@pytest.mark.parametrize("pair", ["region", "=eu"])
def test_parse_cli_meta_rejects_pair_without_key_and_value(pair: str) -> None:
    with pytest.raises(InputError, match=f"--meta expects key=value, got '{pair}'"):
        parse_cli_meta([pair])
