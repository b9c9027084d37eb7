"""``answerdesk kb``: list, delete and check what the knowledge base holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stderr, stdout
from answerdesk.errors import InputError

app = typer.Typer(help="Inspect and maintain the knowledge base.", no_args_is_help=True)


@app.command("list")
def list_command(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only documents whose source starts with this.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List stored documents with their source, chunk count and hash."""
    app_ctx: AppContext = ctx.obj
    docs = app_ctx.store.documents(source_prefix=prefix)
    if as_json:
        print_json(docs)
        return
    table = Table("id", "title", "source", "chunks", "sha256")
    for d in docs:
        table.add_row(escape(d.id), escape(d.title), escape(d.source), str(d.chunk_count), d.sha256[:12])
    stdout.print(table)
    stdout.print(f"{len(docs)} document(s)")


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Delete every document whose source starts with this.")
    ] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Delete this document id (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deleted ids as JSON.")] = False,
) -> None:
    """Delete documents with their chunks, vectors and lexical index entries, in one transaction."""
    app_ctx: AppContext = ctx.obj
    if prefix is None and not ids:
        raise InputError("kb delete needs --prefix SOURCE_PREFIX or --id DOCUMENT_ID")
    store = app_ctx.store
    if dry_run:
        wanted = set(ids or [])
        docs = [d for d in store.documents(source_prefix=prefix) if prefix is not None or d.id in wanted]
        if prefix is not None and ids:
            docs += [d for d in store.documents() if d.id in wanted and d not in docs]
        deleted = sorted(d.id for d in docs)
    else:
        deleted = store.delete(ids=ids or (), source_prefix=prefix)
    if as_json:
        print_json({"deleted": deleted, "dry_run": dry_run})
        return
    verb = "would delete" if dry_run else "deleted"
    stdout.print(f"{verb} {len(deleted)} document(s)")
    for doc_id in deleted:
        stdout.print(f"  {escape(doc_id)}")


@app.command("stats")
def stats_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Counts of documents, chunks and lexical index rows, and where the store lives."""
    app_ctx: AppContext = ctx.obj
    counts = app_ctx.store.counts()
    data = {"store": str(app_ctx.store.path), **counts}
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        stdout.print(f"{key}: {value}")


@app.command("check")
def check_command(ctx: typer.Context) -> None:
    """Verify the store: integrity, no orphans, lexical index and vectors in step. Exit 1 on a problem."""
    app_ctx: AppContext = ctx.obj
    problems = app_ctx.store.check()
    if problems:
        for problem in problems:
            stderr.print(f"[red]problem:[/] {escape(problem)}")
        raise typer.Exit(1)
    stdout.print("store is consistent")
