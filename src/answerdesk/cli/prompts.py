"""``answerdesk prompts``: list, show and diff the prompt templates, and move their labels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from answerdesk.cli.context import KNOWN_STORES, AppContext
from answerdesk.cli.output import print_json, stdout
from answerdesk.errors import ConfigError, InputError
from answerdesk.prompts.labels import PromptLabelStore
from answerdesk.prompts.registry import TEMPLATES_DIR, PromptRegistry, PromptTemplate

app = typer.Typer(help="Inspect prompt templates and move their labels.", no_args_is_help=True)


@contextmanager
def open_registry(app_ctx: AppContext, templates_dir: Path | None = None) -> Iterator[PromptRegistry]:
    """The registry over ``templates_dir`` (default: the packaged templates) with its labels in the configured
    store, which is closed afterwards."""
    kind = app_ctx.settings.store.kind
    if kind != "sqlite":
        raise ConfigError(f"store.kind '{kind}' is unknown; known kinds: {', '.join(KNOWN_STORES)}")
    with PromptLabelStore(app_ctx.settings.store.path) as store:
        # TEMPLATES_DIR is looked up here, at call time, so tests can point the commands at their own folder.
        yield PromptRegistry(templates_dir or TEMPLATES_DIR, store=store)


def _registry(ctx: typer.Context) -> AbstractContextManager[PromptRegistry]:
    app_ctx: AppContext = ctx.obj
    return open_registry(app_ctx)


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every prompt with its versions, the labels pointing at them, and the version served by default."""
    with _registry(ctx) as registry:
        prompts: list[dict[str, Any]] = []
        for name in registry.names():
            labels = registry.labels(name)
            served = registry.resolve(name).version
            versions = [_summary(registry.load(name, v), labels) for v in registry.versions(name)]
            prompts.append({"name": name, "labels": labels, "default_version": served, "versions": versions})
    if as_json:
        print_json(prompts)
        return
    table = Table("name", "version", "labels", "sha256", "description")
    for prompt in prompts:
        for v in prompt["versions"]:
            marker = " (default)" if v["version"] == prompt["default_version"] else ""
            table.add_row(
                escape(prompt["name"]),
                f"v{v['version']}{marker}",
                escape(", ".join(v["labels"])),
                v["sha256"][:12],
                escape(v["description"]),
            )
    stdout.print(table)


@app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. answer.")],
    version: Annotated[int | None, typer.Option("--version", help="This version.", min=1)] = None,
    label: Annotated[str | None, typer.Option("--label", help="The version this label points to.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Metadata and raw text of one version (default: the version served without a label)."""
    if version is not None and label is not None:
        raise InputError("prompts show takes --version or --label, not both")
    with _registry(ctx) as registry:
        template = registry.resolve(name, version=version, label=label)
        info = {**_summary(template, registry.labels(name)), "name": name, "path": str(template.path)}
    if as_json:
        print_json({**info, "text": template.text})
        return
    for key in ("name", "version", "sha256", "description", "variables", "labels", "path"):
        value = info[key]
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        stdout.print(f"{key}: {escape(shown)}")
    stdout.print()
    typer.echo(template.text, nl=not template.text.endswith("\n"))


@app.command("diff")
def diff_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. answer.")],
    old: Annotated[int, typer.Argument(help="The version to compare from.", min=1)],
    new: Annotated[int, typer.Argument(help="The version to compare to.", min=1)],
) -> None:
    """Unified diff between the files of two versions."""
    with _registry(ctx) as registry:
        text = registry.diff(name, old, new)
    if not text:
        stdout.print(f"{escape(name)} v{old} and v{new} are identical")
        return
    typer.echo(text, nl=False)


@app.command("label")
def label_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. answer.")],
    label: Annotated[str, typer.Argument(help="Label to move, e.g. production or canary.")],
    version: Annotated[int, typer.Argument(help="The version the label will point to.", min=1)],
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who moves it, for the audit trail (default: identity.subject).")
    ] = None,
) -> None:
    """Point a label at a version (which must exist and load cleanly); the move is recorded."""
    app_ctx: AppContext = ctx.obj
    with _registry(ctx) as registry:
        event = registry.set_label(name, label, version, actor=actor or app_ctx.settings.identity.subject)
    before = "(unset)" if event.from_version is None else f"v{event.from_version}"
    stdout.print(f"{escape(name)}: {escape(label)} {before} → v{event.to_version}")


@app.command("history")
def history_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. answer.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every recorded label move of a prompt, oldest first: when, who, label, from → to."""
    with _registry(ctx) as registry:
        events = registry.history(name)
    if as_json:
        print_json(events)
        return
    table = Table("at", "actor", "label", "from", "to")
    for e in events:
        before = "-" if e.from_version is None else f"v{e.from_version}"
        table.add_row(e.at, escape(e.actor), escape(e.label), before, f"v{e.to_version}")
    stdout.print(table)


def _summary(template: PromptTemplate, labels: dict[str, int]) -> dict[str, Any]:
    return {
        "version": template.version,
        "sha256": template.sha256,
        "description": template.description,
        "variables": list(template.variables),
        "labels": sorted(label for label, v in labels.items() if v == template.version),
    }
