"""The three lineage records of one request, built from what the service saw. Pure functions.

- ``prompts/``: who asked what, with which prompt (name, version, SHA-256 of the template) and tags;
- ``responses/``: how it ended (``ok``, ``refused``, ``blocked``, ``error``, ``aborted``), the answer and its
  citations, model and route, guard decisions, tokens, cost and latency; feedback is added beside it later;
- ``fixtures/``: what retrieval returned (chunk ids and content hashes), enough to replay the request.

In compliance mode every free text (question, retrieval query, answer, streamed part) is replaced by its
SHA-256, so a record proves what was said without holding it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from answerdesk.errors import GuardrailBlocked
from answerdesk.serve.base import Feedback, RequestInfo, RequestResult
from answerdesk.types import Answer, Principal

Outcome = Literal["ok", "refused", "blocked", "error", "aborted"]
PREFIXES = ("prompts", "responses", "fixtures")
SHARED_TENANT = "_shared"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tenant_folder(tenant: str | None) -> str:
    return tenant or SHARED_TENANT


def record_key(prefix: str, tenant: str | None, day: dt.date, name: str) -> str:
    """``<prefix>/<tenant>/<YYYY-MM-DD>/<name>.json``: retention reads the tenant and day from the key."""
    return f"{prefix}/{tenant_folder(tenant)}/{day.isoformat()}/{name}.json"


def outcome_of(result: RequestResult) -> Outcome:
    """The lineage outcome: a refusal (relevance gate, model) and a guard block are told apart from ``ok``."""
    if result.outcome == "aborted":
        return "aborted"
    if result.outcome == "error":
        return "blocked" if isinstance(result.error, GuardrailBlocked) else "error"
    answer = result.answer
    if answer is not None and answer.refused:
        return "blocked" if (answer.refusal_reason or "").startswith("guard") else "refused"
    return "ok"


def _text(value: str, *, compliance: bool) -> dict[str, str]:
    return {"sha256": sha256(value)} if compliance else {"text": value, "sha256": sha256(value)}


def _header(principal: Principal, request: RequestInfo, created_at: str) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "tenant": principal.tenant,
        "key_id": principal.subject,
        "created_at": created_at,
        "endpoint": request.endpoint,
    }


def build_records(
    principal: Principal,
    request: RequestInfo,
    result: RequestResult,
    *,
    created_at: str,
    compliance: bool,
) -> dict[str, dict[str, Any]]:
    """The records of one request by prefix (``prompts``, ``responses``, ``fixtures``)."""
    answer = result.answer
    header = _header(principal, request, created_at)
    prompt: dict[str, Any] = {
        **header,
        "compliance_mode": compliance,
        "question": _text(request.question, compliance=compliance),
        "conversation_id": request.conversation_id,
        "route_requested": request.route,
        "stream": request.stream,
        "tags": dict(request.tags),
        "prompt": _prompt(answer),
    }
    response: dict[str, Any] = {
        **header,
        "compliance_mode": compliance,
        "outcome": outcome_of(result),
        "status": result.status,
        "latency_ms": round(result.seconds * 1000, 3),
        "flags": list(result.flags),
        "error": _error(result.error),
    }
    if answer is not None:
        response.update(_answer_fields(answer, compliance=compliance))
    if result.partial_text or result.outcome == "aborted":
        response["streamed"] = _text(result.partial_text, compliance=compliance)
    fixture: dict[str, Any] = {
        **header,
        "compliance_mode": compliance,
        "retrieval_query": _text(answer.retrieval_query, compliance=compliance) if answer else None,
        "chunks": [
            {"chunk_id": s.chunk_id, "document_id": s.document_id, "content_sha256": sha256(s.text), "score": s.score}
            for s in (answer.sources if answer else ())
        ],
        "model": answer.model if answer else None,
        "route": answer.route if answer else request.route,
        "prompt": _prompt(answer),
    }
    return {"prompts": prompt, "responses": response, "fixtures": fixture}


def _prompt(answer: Answer | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    return {"name": answer.prompt_name, "version": answer.prompt_version, "sha256": answer.prompt_sha256}


def _error(error: BaseException | None) -> dict[str, str] | None:
    # The type only: an error message may quote the question.
    return None if error is None else {"type": type(error).__name__}


def _answer_fields(answer: Answer, *, compliance: bool) -> dict[str, Any]:
    return {
        "answer": _text(answer.text, compliance=compliance),
        "citations": [{"number": c.number, "chunk_id": c.chunk_id, "document_id": c.document_id}
                      for c in answer.citations],
        "confidence": answer.confidence,
        "refused": answer.refused,
        "refusal_reason": answer.refusal_reason,
        "review_required": answer.review_required,
        "route": answer.route,
        "route_reason": answer.route_reason,
        "provider": answer.provider,
        "model": answer.model,
        "usage": dataclasses.asdict(answer.usage),
        "cost_usd": answer.cost_usd,
        "retries": answer.retries,
        "fallbacks": list(answer.fallbacks),
        "answer_flags": list(answer.flags),
        "timings": dict(answer.timings),
        "guard": [_finding(f) for f in answer.guard_findings],
    }  # fmt: skip


def _finding(finding: object) -> Mapping[str, Any]:
    fields = dataclasses.asdict(finding) if dataclasses.is_dataclass(finding) and not isinstance(finding, type) else {}
    return {k: v for k, v in fields.items() if k in ("guard", "rule", "action", "stage", "score", "match_sha256")}


def feedback_record(feedback: Feedback, *, compliance: bool) -> dict[str, Any]:
    return {
        "request_id": feedback.request_id,
        "tenant": feedback.tenant,
        "subject": feedback.subject,
        "rating": feedback.rating,
        "csat": feedback.csat,
        "comment": _text(feedback.comment, compliance=compliance),
        "created_at": feedback.created_at,
    }
