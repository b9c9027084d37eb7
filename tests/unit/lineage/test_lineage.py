"""Lineage: atomic local blobs, the three records per request, compliance mode, feedback, retention."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from answerdesk.cli.main import app
from answerdesk.config import LineageSettings
from answerdesk.errors import ConfigError, GuardrailBlocked, InputError, NotFound
from answerdesk.lineage.factory import build_blob_store
from answerdesk.lineage.hooks import LineageHooks
from answerdesk.lineage.local import LocalBlobStore
from answerdesk.lineage.retention import expired
from answerdesk.serve.base import Feedback, RequestInfo, RequestResult
from answerdesk.types import Answer, Citation, Principal, ScoredChunk, Usage

ACME = Principal(subject="ak_00000001", tenant="acme", roles=frozenset({"agent"}))
QUESTION = "My card 4111 1111 1111 1111 was charged twice, can I get a refund?"
NOON = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC).timestamp()


def info(request_id: str = "r1") -> RequestInfo:
    return RequestInfo(
        request_id=request_id, endpoint="answers", method="POST", path="/v1/answers", stream=True,
        question=QUESTION, tags={"cost_centre": "cc-7"},
    )  # fmt: skip


def answer() -> Answer:
    chunk = ScoredChunk(chunk_id="refunds#0", document_id="refunds", text="Annual plans are refunded.", score=0.8)
    return Answer(
        request_id="r1", question=QUESTION, text="Annual plans are refunded in full [1].",
        citations=(Citation(1, "refunds#0", "refunds", "Refunds", "refunds.md", None, "Annual plans"),),
        confidence=0.82, refused=False, refusal_reason=None, prompt_name="answer", prompt_version=3,
        prompt_sha256="ab" * 32, route="default", route_reason="default route", provider="fake", model="fake-model",
        usage=Usage(120, 30), cost_usd=0.0012, retrieval_query=QUESTION, sources=(chunk,),
    )  # fmt: skip


def read(store: LocalBlobStore, key: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(store.get(key))
    return loaded


def test_local_store_writes_whole_blobs_and_rejects_escaping_keys(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "lineage")
    store.put("responses/acme/2026-12-02/r1.json", b"one")
    store.put("responses/acme/2026-12-02/r1.json", b"two")
    assert store.get("responses/acme/2026-12-02/r1.json") == b"two"
    assert list(store.names("responses/")) == ["responses/acme/2026-12-02/r1.json"]
    assert not list((tmp_path / "lineage").rglob(".tmp-*"))
    with pytest.raises(InputError):
        store.put("../outside.json", b"x")
    store.delete("responses/acme/2026-12-02/r1.json")
    with pytest.raises(NotFound):
        store.get("responses/acme/2026-12-02/r1.json")


def test_unknown_store_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known kinds: local"):
        build_blob_store(LineageSettings(kind="s4"))


async def test_every_request_writes_prompt_response_and_fixture_records(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    hooks = LineageHooks(LineageSettings(path=tmp_path), store, clock=lambda: NOON)
    await hooks.after(ACME, info(), RequestResult("ok", 200, 0.25, answer=answer()))
    prompt = read(store, "prompts/acme/2026-12-02/r1.json")
    response = read(store, "responses/acme/2026-12-02/r1.json")
    fixture = read(store, "fixtures/acme/2026-12-02/r1.json")
    assert prompt["prompt"] == {"name": "answer", "version": 3, "sha256": "ab" * 32}
    assert prompt["question"] == {"text": QUESTION, "sha256": prompt["question"]["sha256"]}  # type: ignore[index]
    assert prompt["tags"] == {"cost_centre": "cc-7"}
    assert response["outcome"] == "ok" and response["model"] == "fake-model" and response["latency_ms"] == 250.0
    assert response["usage"] == {"input_tokens": 120, "output_tokens": 30, "estimated": False,
                                 "cached_input_tokens": 0}  # fmt: skip
    assert response["cost_usd"] == 0.0012
    chunks = fixture["chunks"]
    assert isinstance(chunks, list) and chunks[0]["chunk_id"] == "refunds#0" and len(chunks[0]["content_sha256"]) == 64


async def test_compliance_mode_keeps_hashes_not_text(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    hooks = LineageHooks(LineageSettings(compliance_tenants=("acme",)), store, clock=lambda: NOON)
    await hooks.after(ACME, info(), RequestResult("ok", 200, 0.25, answer=answer()))
    everything = b"".join(store.get(k) for k in store.names())
    assert b"4111" not in everything and b"refunded in full" not in everything
    assert read(store, "responses/acme/2026-12-02/r1.json")["answer"] == {
        "sha256": hashlib.sha256(answer().text.encode()).hexdigest()
    }


async def test_aborted_blocked_and_refused_requests_are_recorded_as_such(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    hooks = LineageHooks(LineageSettings(), store, clock=lambda: NOON)
    await hooks.after(ACME, info("r1"), RequestResult("aborted", 499, 1.5, partial_text="Annual plans"))
    await hooks.after(ACME, info("r2"), RequestResult("error", 400, 0.1, error=GuardrailBlocked("no")))
    gated = dataclasses.replace(answer(), refused=True, refusal_reason="no_relevant_sources")
    await hooks.after(ACME, info("r4"), RequestResult("ok", 200, 0.1, answer=gated))
    await hooks.after(ACME, info("r3"), RequestResult("error", 0, 0.0))  # refused by the rate limit: no record
    outcomes = {k: read(store, k)["outcome"] for k in store.names("responses/")}
    assert outcomes == {
        "responses/acme/2026-12-02/r1.json": "aborted",
        "responses/acme/2026-12-02/r2.json": "blocked",
        "responses/acme/2026-12-02/r4.json": "refused",
    }
    assert read(store, "responses/acme/2026-12-02/r1.json")["streamed"] == {
        "text": "Annual plans",
        "sha256": hashlib.sha256(b"Annual plans").hexdigest(),
    }


async def test_feedback_is_attached_by_request_id(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    hooks = LineageHooks(LineageSettings(), store, clock=lambda: NOON)
    await hooks.feedback(ACME, Feedback("r1", "acme", "ak_00000001", "down", 2, "wrong plan", "2026-12-02T12:00:00Z"))
    [key] = list(store.names("responses/acme/2026-12-02/r1.feedback-"))
    assert read(store, key)["rating"] == "down"


def test_retention_selects_records_older_than_their_tenants_period() -> None:
    settings = LineageSettings(retention_days=30, tenant_retention_days={"acme": 7})
    keys = [
        "prompts/acme/2026-11-24/r1.json",  # 8 days: past acme's 7
        "prompts/acme/2026-11-26/r2.json",
        "responses/globex/2026-11-01/r3.json",  # 31 days: past the default 30
        "responses/globex/2026-11-03/r4.json",
        "fixtures/_shared/2026-10-01/r5.json",
        "notes/acme/2020-01-01/x.json",  # not a lineage record
    ]
    found = expired(keys, settings, today=dt.date(2026, 12, 2))
    assert [e.key for e in found] == [keys[0], keys[2], keys[4]]
    assert found[2].tenant is None


def test_retention_purge_command_dry_run_then_delete(tmp_path: Path) -> None:
    root = tmp_path / "lineage"
    store = LocalBlobStore(root)
    store.put("prompts/acme/2000-01-01/old.json", b"{}")
    store.put(f"prompts/acme/{dt.datetime.now(dt.UTC).date().isoformat()}/new.json", b"{}")
    config = tmp_path / "answerdesk.yaml"
    config.write_text(f"lineage:\n  path: {root}\n  retention_days: 30\nstore:\n  path: {tmp_path / 'kb.db'}\n")
    runner = CliRunner()
    dry = runner.invoke(app, ["--config", str(config), "retention", "purge", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["keys"] == ["prompts/acme/2000-01-01/old.json"]
    assert len(list(store.names())) == 2
    done = runner.invoke(app, ["--config", str(config), "retention", "purge", "--json"])
    assert json.loads(done.stdout)["deleted"] == 1
    assert [k.split("/")[-1] for k in store.names()] == ["new.json"]
