"""``answerdesk keys``: create, list and revoke the API keys callers of the HTTP service use."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stderr, stdout
from answerdesk.security.auth import ROLES
from answerdesk.security.keys import ApiKey, SqliteKeyStore

app = typer.Typer(help="Manage API keys of the HTTP service (stored hashed; shown once).", no_args_is_help=True)


def _store(ctx: typer.Context) -> SqliteKeyStore:
    app_ctx: AppContext = ctx.obj
    return SqliteKeyStore(app_ctx.settings.store.path)


def _row(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "tenant": key.tenant,
        "roles": list(key.roles),
        "compliance_scopes": list(key.compliance_scopes),
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key, e.g. 'zendesk-eu'.")],
    roles: Annotated[list[str], typer.Option("--role", "-r", help=f"A role (repeatable): {', '.join(ROLES)}.")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="The tenant the key acts for (default: the shared knowledge base).")
    ] = None,
    scopes: Annotated[
        list[str] | None, typer.Option("--scope", help="A compliance scope the key may read (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the key and its record as JSON.")] = False,
) -> None:
    """Create a key. The key is printed once and cannot be shown again; only its hash is stored."""
    key, secret = _store(ctx).create(name, tenant=tenant, roles=roles, compliance_scopes=scopes or ())
    if as_json:
        print_json({**_row(key), "key": secret})
        return
    stdout.print(secret)
    stderr.print(
        f"created {key.id} ({escape(key.name)}) for tenant {escape(key.tenant or '(shared)')} with roles "
        f"{', '.join(key.roles)}; store the key now: it is not shown again"
    )


@app.command("list")
def list_command(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List keys (ids, names, tenants, roles); never the keys themselves."""
    keys = _store(ctx).list(include_revoked=include_revoked)
    if as_json:
        print_json([_row(k) for k in keys])
        return
    table = Table("id", "name", "tenant", "roles", "created", "revoked")
    for k in keys:
        table.add_row(k.id, escape(k.name), escape(k.tenant or "(shared)"), ", ".join(k.roles), k.created_at,
                      k.revoked_at or "")  # fmt: skip
    stdout.print(table)
    stdout.print(f"{len(keys)} key(s)")


@app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (ak_xxxxxxxx), as 'keys list' shows it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the revoked key's record as JSON.")] = False,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    key = _store(ctx).revoke(key_id)
    if as_json:
        print_json(_row(key))
        return
    stdout.print(f"revoked {key.id} ({escape(key.name)}) at {key.revoked_at}")
