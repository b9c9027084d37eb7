"""``answerdesk retention``: delete lineage records past their tenant's retention period.

Usage-ledger rows are kept: they hold no question or answer text (ids, tags, tokens, cost), and they are
what monthly spend reports and chargeback to cost centres are built from, which usually must be kept for
longer than transcripts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Annotated

import typer

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stderr, stdout
from answerdesk.lineage.factory import build_blob_store
from answerdesk.lineage.retention import expired

app = typer.Typer(help="Retention of lineage records (per tenant, lineage.retention_days).", no_args_is_help=True)


@app.command("purge")
def purge_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Delete the lineage records (prompts/, responses/, fixtures/) older than their tenant's retention."""
    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings.lineage
    blobs = build_blob_store(settings)
    found = expired(blobs.names(), settings, today=dt.datetime.now(dt.UTC).date())
    if not dry_run:
        for item in found:
            blobs.delete(item.key)
    by_tenant = Counter(item.tenant or "(shared)" for item in found)
    if as_json:
        print_json({"dry_run": dry_run, "deleted": 0 if dry_run else len(found), "expired": len(found),
                    "by_tenant": dict(sorted(by_tenant.items())), "keys": [item.key for item in found]})  # fmt: skip
        return
    for tenant, count in sorted(by_tenant.items()):
        stdout.print(f"{tenant}\t{count}")
    verb = "would delete" if dry_run else "deleted"
    stderr.print(f"{verb} {len(found)} lineage record(s) under {settings.path}")
