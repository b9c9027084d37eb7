"""Documents over HTTP: upload as a job with progress, list, delete, all within the caller's tenant."""

from __future__ import annotations

import httpx

from tests.unit.serve.conftest import Service

FAQ = b"---\ntitle: Gift cards\n---\n# Gift cards\n\nGift cards never expire and can be used on any plan.\n"


async def upload(client: httpx.AsyncClient, service: Service, role: str = "ingest") -> dict[str, object]:
    r = await client.post(
        "/v1/documents",
        files=[("files", ("gift-cards.md", FAQ)), ("files", ("broken.pdf", b"%PDF-1.4 not really"))],
        data={"meta": ["region=eu"]},
        headers=service.headers(role),
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.headers["location"] == f"/v1/documents/jobs/{job_id}"
    service.app.state.jobs.wait(job_id, timeout=30)  # type: ignore[attr-defined]
    done = await client.get(f"/v1/documents/jobs/{job_id}", headers=service.headers(role))
    body: dict[str, object] = done.json()
    return body


async def test_upload_ingests_for_the_uploaders_tenant(client: httpx.AsyncClient, service: Service) -> None:
    job = await upload(client, service)
    assert job["status"] == "done" and job["files_total"] == 2 and job["files_done"] == 2
    assert job["documents"] == 1 and job["chunks"] == 1
    report = job["report"]
    assert isinstance(report, dict) and report["added"] == 1
    assert [f["source"] for f in report["failures"]] == ["uploads/acme/broken.pdf"]
    listed = (await client.get("/v1/documents", headers=service.headers("ingest"))).json()["documents"]
    assert [(d["id"], d["meta"]["tenant"], d["meta"].get("region")) for d in listed] == [
        ("acme-sla", "acme", None),
        ("acme/gift-cards.md", "acme", "eu"),
    ]  # acme's own documents only: not the shared ones, not another tenant's
    found = await client.get("/v1/search", params={"q": "gift cards expire"}, headers=service.headers("agent"))
    assert found.json()["results"][0]["document_id"] == "acme/gift-cards.md"
    other = await client.get("/v1/search", params={"q": "gift cards expire"}, headers=service.headers("globex"))
    assert "acme/gift-cards.md" not in [p["document_id"] for p in other.json()["results"]]


async def test_jobs_and_deletes_stay_within_the_tenant(client: httpx.AsyncClient, service: Service) -> None:
    job = await upload(client, service)
    shared = service.headers("shared-ingest")
    assert (await client.get(f"/v1/documents/jobs/{job['id']}", headers=shared)).status_code == 404
    # The operator cannot delete acme's document through the shared view, nor acme a shared one.
    assert (await client.delete("/v1/documents", params={"id": "acme/gift-cards.md"}, headers=shared)).json() == {
        "deleted": []
    }
    acme = service.headers("ingest")
    assert (await client.delete("/v1/documents", params={"id": "refunds"}, headers=acme)).json() == {"deleted": []}
    gone = await client.delete("/v1/documents", params={"prefix": "uploads/acme/"}, headers=acme)
    assert gone.json() == {"deleted": ["acme/gift-cards.md"]}
    assert [d["id"] for d in (await client.get("/v1/documents", headers=acme)).json()["documents"]] == ["acme-sla"]


async def test_delete_needs_an_id_or_prefix(client: httpx.AsyncClient, service: Service) -> None:
    r = await client.delete("/v1/documents", headers=service.headers("ingest"))
    assert r.status_code == 422 and "prefix" in r.json()["detail"]


async def test_feedback_is_stored_and_handed_to_the_hooks(client: httpx.AsyncClient, service: Service) -> None:
    answer = (await client.post("/v1/answers", json={"question": "refund"}, headers=service.headers())).json()
    r = await client.post(
        "/v1/feedback",
        json={"request_id": answer["request_id"], "rating": "down", "csat": 2, "comment": "missed the EU rule"},
        headers=service.headers(),
    )
    assert r.status_code == 201 and r.json()["rating"] == "down"
    stored = service.services.state.feedback_for(answer["request_id"], tenant="acme")
    assert [(f.rating, f.csat, f.comment) for f in stored] == [("down", 2, "missed the EU rule")]
    assert service.hooks.feedback_calls[0].request_id == answer["request_id"]
    assert service.services.state.feedback_for(answer["request_id"], tenant="globex") == []


async def test_an_upload_cannot_claim_another_tenant(client: httpx.AsyncClient, service: Service) -> None:
    sneaky = b"---\ntenant: globex\nid: globex-secret\n---\n# Notes\n\nGlobex internal escalation rota.\n"
    r = await client.post(
        "/v1/documents",
        files={"files": ("notes.md", sneaky)},
        data={"meta": ["tenant=globex"]},
        headers=service.headers("ingest"),
    )
    service.app.state.jobs.wait(r.json()["id"], timeout=30)  # type: ignore[attr-defined]
    stored = {d.id: d.meta.get("tenant") for d in service.store.documents()}
    assert stored.get("acme/globex-secret") == "acme" and "globex-secret" not in stored
    globex = await client.get("/v1/search", params={"q": "escalation rota"}, headers=service.headers("globex"))
    assert all(p["document_id"] != "acme/globex-secret" for p in globex.json()["results"])
