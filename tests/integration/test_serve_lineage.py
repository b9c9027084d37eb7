"""Over real HTTP: a client that leaves mid-stream still leaves a lineage record, marked aborted."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from answerdesk.config import LineageSettings
from answerdesk.lineage.hooks import LineageHooks
from answerdesk.lineage.local import LocalBlobStore
from tests.integration.test_serve_http import Running, sse_events, wait_for
from tests.unit.serve.conftest import build_service


def test_an_aborted_stream_has_its_lineage_record(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "lineage")
    running = Running(build_service(tmp_path, hooks=LineageHooks(LineageSettings(), blobs)))
    try:
        body = {"question": "annual plan refund", "stream": True, "model": "slow"}
        headers = {**running.service.headers(), "X-Request-ID": "gone-1"}
        with httpx.stream("POST", f"{running.url}/v1/answers", json=body, headers=headers) as response:
            assert "x-answerdesk-overhead-ms" in response.headers
            for name, _ in sse_events(response):
                if name == "delta":
                    break  # the reply would take ~17 s
        wait_for(lambda: any(k.endswith("/gone-1.json") for k in blobs.names("responses/")), timeout=3)
        [key] = [k for k in blobs.names("responses/") if k.endswith("/gone-1.json")]
        record = json.loads(blobs.get(key))
        assert record["outcome"] == "aborted" and record["status"] == 499
        assert 0 < len(record["streamed"]["text"]) < 200
        assert any(k.endswith("/gone-1.json") for k in blobs.names("prompts/"))
    finally:
        running.stop()
        running.service.store.close()
