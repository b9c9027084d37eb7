"""``answerdesk ingest``: files, folders and globs into the knowledge base."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stderr, stdout
from answerdesk.ingest.factory import build_ingestor
from answerdesk.ingest.indexer import Progress as IngestProgress
from answerdesk.ingest.metadata import parse_cli_meta

HELP = """Ingest Markdown, HTML, text, PDF and ticket exports (CSV/JSONL) from files, folders and globs.

Unchanged documents (same SHA-256 and settings) are skipped without re-embedding; a changed document is
replaced in one transaction. Metadata comes from Markdown front matter, a <file>.meta.json sidecar and
--meta (highest priority). Files that cannot be ingested are listed in the summary; the exit code is 1 when
any failed, unless --allow-errors.
"""


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = max(task.elapsed or 0.0, 1e-9)
        docs = task.fields.get("documents", 0)
        chunks = task.fields.get("chunks", 0)
        return Text(f"{docs / elapsed:6.1f} docs/s {chunks / elapsed:7.1f} chunks/s", style="cyan")


def ingest_command(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders or quoted globs (e.g. 'kb/**/*.md').")],
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", "-m", help="key=value metadata for every document (repeatable), e.g. region=eu."),
    ] = None,
    allow_errors: Annotated[
        bool, typer.Option("--allow-errors", help="Exit 0 even when some files could not be ingested.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete documents under the given folders whose files are gone.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    app: AppContext = ctx.obj
    cli_meta = parse_cli_meta(meta or [])
    settings = app.settings
    ingestor = build_ingestor(app.store, app.embedder, settings)
    show = progress and not as_json and stderr.is_terminal
    bar = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        _RateColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not show,
        transient=True,
    )
    with bar:
        task = bar.add_task("ingest", total=None, documents=0, chunks=0)

        def on_progress(p: IngestProgress) -> None:
            bar.update(task, total=p.sources_total, completed=p.sources_done, documents=p.documents, chunks=p.chunks)

        report = ingestor.run(paths, cli_meta=cli_meta, prune=prune, on_progress=on_progress)
    if as_json:
        print_json(report)
    else:
        rate = report.chunks_written / report.seconds if report.seconds else 0.0
        stdout.print(
            f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
            f"deleted {report.deleted}; {report.chunks_written} chunks embedded "
            f"in {report.seconds:.1f}s ({rate:.1f} chunks/s)"
        )
        for failure in report.failures:
            stderr.print(f"[red]failed:[/] {escape(failure.source)}: {escape(failure.reason)}")
        if report.failures:
            stderr.print(f"{len(report.failures)} source(s) could not be ingested")
    if report.failures and not allow_errors:
        raise typer.Exit(1)
