"""``answerdesk search``: the passages retrieval would hand to the answerer, with their sources."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.markup import escape

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stdout
from answerdesk.store.filters import parse_filter

HELP = """Search the knowledge base (BM25 + vectors, fused) as the configured identity.

Filters: field=value, field:in=a,b, field:prefix=value, updated_at:gte=2026-01-01 (also gt, lt, lte, ne).
Fields: region, product, plan, owner, doc_type, retention, source, document_id, tag, updated_at, ingested_at.
Tenant and compliance scope come from the identity in the settings, never from filters.
"""


def search_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    filters: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="Metadata filter (repeatable), e.g. region=eu.")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=100, help="How many passages (default 6).")] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="hybrid (default), bm25 or vector.", case_sensitive=False)
    ] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    app: AppContext = ctx.obj
    clauses = [parse_filter(f) for f in filters or []]
    chosen: Literal["hybrid", "bm25", "vector"]
    if mode == "bm25":
        chosen = "bm25"
    elif mode == "vector":
        chosen = "vector"
    elif mode == "hybrid":
        chosen = "hybrid"
    else:
        raise typer.BadParameter(f"'{mode}' is not one of hybrid, bm25, vector", param_hint="--mode")
    result = app.retriever.search(
        query, principal=app.principal, filters=clauses, k=k or app.settings.retrieval.k, mode=chosen
    )
    if as_json:
        print_json(
            {
                "query": query,
                "results": [
                    {
                        "rank": i,
                        "chunk_id": c.chunk_id,
                        "document_id": c.document_id,
                        "title": c.title,
                        "source": c.source,
                        "url": c.url,
                        "heading_path": list(c.heading_path),
                        "score": c.score,
                        "signals": dict(c.signals),
                        "meta": dict(c.meta),
                        "text": c.text,
                    }
                    for i, c in enumerate(result.chunks, start=1)
                ],
                "timings_ms": {name: round(s * 1000, 2) for name, s in result.timings.items()},
            }
        )
        return
    if not result.chunks:
        stdout.print("no passages found")
        return
    for i, c in enumerate(result.chunks, start=1):
        stdout.print(f"[bold][{i}][/] {escape(c.breadcrumb)}  [dim]{escape(c.source)} · {c.document_id}[/]")
        snippet = " ".join(c.text.split())
        stdout.print("    " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")))
