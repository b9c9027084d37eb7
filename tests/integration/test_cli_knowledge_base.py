"""The knowledge base through the real CLI: real embedder, real SQLite file, the sample help centre."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Runner

pytestmark = pytest.mark.slow


@pytest.fixture
def kb(tmp_path: Path, repo: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(repo / "examples" / "kb", target)
    return target


def test_ingest_search_reingest_delete(cli: Runner, kb: Path) -> None:
    first = cli("ingest", "kb", "--json")
    assert first.code == 0, first.stderr
    report = first.json()
    assert report["failures"] == []
    assert report["added"] >= 30 and report["chunks_written"] >= report["added"]

    found = cli("search", "How long do refunds take for annual plans?", "--json")
    assert found.code == 0, found.stderr
    results = found.json()["results"]
    assert len(results) == 6
    assert any("refund" in r["document_id"] for r in results[:3]), [r["document_id"] for r in results]
    assert all(r["source"].startswith("kb/") for r in results)

    again = cli("ingest", "kb", "--json").json()
    assert (again["added"], again["updated"], again["chunks_written"]) == (0, 0, 0)
    assert again["unchanged"] == report["added"]
    assert again["seconds"] * 5 < report["seconds"], "an unchanged re-ingest must not re-embed"

    # A changed document is replaced, the rest skipped.
    article = next(kb.rglob("*.md"))
    article.write_text(article.read_text() + "\n\nParcelwise now also ships to Iceland on Tuesdays.\n")
    changed = cli("ingest", "kb", "--json").json()
    assert changed["updated"] == 1 and changed["unchanged"] == report["added"] - 1

    deleted = cli("kb", "delete", "--prefix", "kb/billing", "--json").json()["deleted"]
    assert deleted
    after = cli("search", "refund annual plan invoice billing", "--json", "--k", "20").json()["results"]
    assert not {r["document_id"] for r in after} & set(deleted)
    assert cli("kb", "check").code == 0


def test_filters_from_the_command_line(cli: Runner, kb: Path) -> None:
    assert cli("ingest", "kb", "--json").code == 0
    eu = cli("search", "return shipping", "--filter", "region=eu", "--json", "--k", "10").json()["results"]
    assert eu and all(r["meta"]["region"] == "eu" for r in eu)
    bad = cli("search", "refund", "--filter", "region:like=eu")
    assert bad.code == 2
    assert "unknown operator 'like'" in bad.stderr
    forbidden = cli("search", "refund", "--filter", "tenant=other")
    assert forbidden.code == 2 and "identity" in forbidden.stderr


def test_tenant_documents_stay_with_their_tenant(cli: Runner, kb: Path, tmp_path: Path) -> None:
    private = tmp_path / "acme"
    private.mkdir()
    (private / "acme-sla.md").write_text("# Acme SLA\nAcme's contract promises a four hour response on Sundays.\n")
    assert cli("ingest", "kb", "--json").code == 0
    assert cli("ingest", "acme", "--meta", "tenant=acme", "--json").code == 0
    query = ("search", "Sunday four hour response contract", "--json", "--k", "20")
    as_acme = cli(*query, env={"ANSWERDESK_IDENTITY__TENANT": "acme"}).json()["results"]
    as_other = cli(*query, env={"ANSWERDESK_IDENTITY__TENANT": "globex"}).json()["results"]
    assert as_acme[0]["document_id"] == "acme-sla.md"
    assert "acme-sla.md" not in {r["document_id"] for r in as_other}


def test_ask_answers_with_citations_and_refuses_what_the_kb_lacks(cli: Runner, kb: Path) -> None:
    assert cli("ingest", "kb", "--json").code == 0
    answer = cli("ask", "how long is an EU return label valid?", "--json")
    assert answer.code == 0, answer.stderr
    data = answer.json()
    assert not data["refused"] and "14 days" in data["text"]
    assert data["citations"] and data["citations"][0]["document_id"] == "return-shipping-eu"
    assert data["prompt_name"] == "answer" and data["prompt_version"] == 1
    streamed = cli("ask", "how long is an EU return label valid?", "--stream")
    assert streamed.code == 0 and "14 days" in streamed.stdout and "[1]" in streamed.stdout
    refused = cli("ask", "What is the weather in Lisbon tomorrow?", "--json").json()
    assert refused["refused"] and refused["refusal_reason"] == "no_relevant_sources"
    unknown = cli("ask", "refunds?", "--model", "gpt-9")
    assert unknown.code == 2 and "known:" in unknown.stderr
