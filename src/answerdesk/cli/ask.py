"""``answerdesk ask``: a drafted answer with numbered citations and a confidence score."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.markup import escape

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stderr, stdout
from answerdesk.pipeline import AnswerEvent
from answerdesk.store.filters import parse_filter
from answerdesk.types import Answer

HELP = """Draft an answer from the knowledge base, citing its sources as [n].

The model or fallback chain comes from the router unless --model names a route or a configured model.
When retrieval finds nothing relevant the answer is a refusal, made without calling a model.
"""


def ask_command(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The customer's or agent's question.")],
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated.")] = False,
    model: Annotated[
        str | None, typer.Option("--model", help="A route or configured model name (see answerdesk.yaml).")
    ] = None,
    prompt_version: Annotated[
        int | None, typer.Option("--prompt-version", min=1, help="Use this version of the answer prompt.")
    ] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="Metadata filter (repeatable), e.g. region=eu.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer record as JSON.")] = False,
) -> None:
    app: AppContext = ctx.obj
    clauses = [parse_filter(f) for f in filters or []]
    pipeline = app.pipeline

    async def run() -> Answer:
        answer: Answer | None = None
        async for event in pipeline.stream(
            question, principal=app.principal, filters=clauses, route=model, prompt_version=prompt_version
        ):
            if stream and not as_json:
                _show(event)
            if event.answer is not None:
                answer = event.answer
        assert answer is not None
        return answer

    answer = asyncio.run(run())
    if as_json:
        print_json(answer)
        return
    if stream:
        sys.stdout.write("\n")
    else:
        stdout.print(escape(answer.text))
    _footer(answer)


def _show(event: AnswerEvent) -> None:
    if event.kind == "delta":
        sys.stdout.write(event.text)
        sys.stdout.flush()
    elif event.kind == "model_changed":
        stderr.print(f"\n[yellow]model changed to {escape(event.text)}[/]")
    elif event.kind == "guard" and event.data.get("replaces_stream"):
        stderr.print(f"\n[yellow]guard {event.data['action']}: the draft above is withdrawn[/]")


def _footer(answer: Answer) -> None:
    stdout.print()
    for c in answer.citations:
        stdout.print(f"[bold][{c.number}][/] {escape(c.title)}  [dim]{escape(c.source)} · {escape(c.document_id)}[/]")
    status = "refused" if answer.refused else "answered"
    if answer.refusal_reason == "guard_blocked":
        status = "blocked by a guard"
    if answer.review_required:
        status += " · review required"
    stdout.print(
        f"[dim]{status} · confidence {answer.confidence:.2f} · {answer.provider}/{answer.model} via route "
        f"{answer.route} · prompt {answer.prompt_name}@v{answer.prompt_version} · "
        f"{answer.timings.get('total', 0) * 1000:.0f} ms · request {answer.request_id}[/]"
    )
    for flag in answer.flags:
        stdout.print(f"[dim]  flag: {escape(flag)}[/]")
    for f in answer.guard_findings:
        stdout.print(f"[dim]  guard: {f.stage} {f.guard}/{escape(f.rule)} → {f.action}[/]")
