"""Request hooks that write the lineage records of every admitted request, and attach feedback to them."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import anyio

from answerdesk.config import LineageSettings
from answerdesk.lineage.base import BlobStore
from answerdesk.lineage.records import build_records, feedback_record, record_key
from answerdesk.serve.base import ADMIT, Admission, Feedback, RequestInfo, RequestResult
from answerdesk.types import Principal


def compliance_for(settings: LineageSettings, tenant: str | None) -> bool:
    """Whether the records of ``tenant`` hold hashes instead of text."""
    return settings.compliance_mode or (tenant is not None and tenant in settings.compliance_tenants)


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


class LineageHooks:
    """Writes ``prompts/``, ``responses/`` and ``fixtures/`` records once a request has ended (including
    requests whose client went away: ``aborted``), and ``responses/…/<id>.feedback-<n>.json`` per rating.

    A request refused by an earlier hook (rate limit, budget) never reached the pipeline and has no record.
    """

    def __init__(self, settings: LineageSettings, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._blobs = blobs
        self._clock = clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def before(self, principal: Principal, request: RequestInfo) -> Admission:
        return ADMIT

    async def after(self, principal: Principal, request: RequestInfo, result: RequestResult) -> None:
        if result.status == 0:
            return
        now = self._now()
        records = build_records(
            principal,
            request,
            result,
            created_at=now.isoformat(timespec="milliseconds"),
            compliance=compliance_for(self._settings, principal.tenant),
        )
        blobs = [
            (record_key(prefix, principal.tenant, now.date(), request.request_id), encode(record))
            for prefix, record in records.items()
        ]

        def write() -> None:
            for key, data in blobs:
                self._blobs.put(key, data)

        # Creating files costs about a millisecond each here: off the event loop, which serves every stream.
        await anyio.to_thread.run_sync(write)

    async def feedback(self, principal: Principal, feedback: Feedback) -> None:
        now = self._now()
        name = f"{feedback.request_id}.feedback-{int(now.timestamp() * 1000)}"
        record = feedback_record(feedback, compliance=compliance_for(self._settings, feedback.tenant))
        key, data = record_key("responses", feedback.tenant, now.date(), name), encode(record)
        await anyio.to_thread.run_sync(lambda: self._blobs.put(key, data))
