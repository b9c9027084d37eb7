"""Entry point of the ``answerdesk`` command: the app, its groups, and the one place errors become exits."""

from __future__ import annotations

import os

# Serving and CLI processes pin BLAS to one thread: numpy's threads and torch's fight over two cores and
# make a 20 ms query embedding take 100 ms. Must happen before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.markup import escape

from answerdesk.cli import ask, guard, ingest, kb, keys, prompts, retention, search, serve
from answerdesk.cli.context import AppContext
from answerdesk.cli.output import stderr
from answerdesk.errors import (
    AnswerdeskError,
    ConfigError,
    Forbidden,
    InputError,
    NotFound,
    StoreError,
    Unauthorized,
)

app = typer.Typer(
    name="answerdesk",
    help="Grounded, cited answer drafts for support teams. Ingest a knowledge base, then search or ask it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file (default: $ANSWERDESK_CONFIG, else ./answerdesk.yaml if present).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    ctx.obj = AppContext(config)


app.command("ingest", help=ingest.HELP)(ingest.ingest_command)
app.command("search", help=search.HELP)(search.search_command)
app.command("ask", help=ask.HELP)(ask.ask_command)
app.add_typer(kb.app, name="kb")
app.add_typer(prompts.app, name="prompts")
app.add_typer(guard.app, name="guard")
app.command("serve", help=serve.HELP)(serve.serve_command)
app.add_typer(keys.app, name="keys")
app.add_typer(retention.app, name="retention")

#: Exit codes by who has to act.
EXIT_CODES: dict[type[AnswerdeskError], int] = {
    InputError: 2,
    NotFound: 2,
    ConfigError: 3,
    StoreError: 4,
    Unauthorized: 5,
    Forbidden: 5,
}


def run() -> None:
    """Console-script entry: run the app; an answerdesk error prints one line and exits non-zero."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="answerdesk", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        stderr.print("aborted")
        sys.exit(130)
    except AnswerdeskError as exc:
        code = next((c for kind, c in EXIT_CODES.items() if isinstance(exc, kind)), 1)
        stderr.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
