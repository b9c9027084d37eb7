"""``answerdesk guard``: run the guards on a text, check a policy file, and read the audit of guard decisions."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from answerdesk.cli.context import AppContext
from answerdesk.cli.output import print_json, stdout
from answerdesk.errors import ConfigError, InputError
from answerdesk.guard.audit import SqliteAuditLog
from answerdesk.guard.guardrails import Guardrails
from answerdesk.guard.policy import PolicySource, load_policy

app = typer.Typer(help="Guardrails: check a text or a policy file, read the audit of blocks.", no_args_is_help=True)
policy_app = typer.Typer(help="Guard policy files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

_RELATIVE = re.compile(r"(\d+)\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@app.command("check")
def check_command(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The text to check; '-' reads standard input.")],
    stage: Annotated[
        str, typer.Option("--stage", help="input (a question), context (a retrieved chunk) or output (an answer).")
    ] = "input",
    tenant: Annotated[str | None, typer.Option("--tenant", help="Apply this tenant's policy overrides.")] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (default: guard.policy, else the bundled one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Run the guards of one stage on a text and show the text they pass on and what they found.
    Nothing is written to the audit."""
    if stage not in ("input", "context", "output"):
        raise InputError(f"--stage must be input, context or output, got {stage!r}")
    checked_stage: Literal["input", "context", "output"] = stage  # type: ignore[assignment]
    if text == "-":
        text = sys.stdin.read()
    app_ctx: AppContext = ctx.obj
    source = PolicySource(policy or app_ctx.settings.guard.policy)
    needs_embedder = bool(source.current().for_tenant(tenant).denied_topics)
    guards = Guardrails(source, embedder=app_ctx.embedder if needs_embedder else None)
    outcome = guards.check(text, stage=checked_stage, tenant=tenant)
    if as_json:
        print_json(
            {
                "stage": stage,
                "action": outcome.action,
                "text": outcome.text,
                "review_required": outcome.review_required,
                "policy_version": guards.policy(tenant).version,
                "findings": outcome.findings,
            }
        )
        return
    stdout.print(f"[bold]{outcome.action}[/] · stage {stage} · policy {escape(guards.policy(tenant).version)}")
    if stage == "context" and not outcome.text:
        stdout.print("chunk dropped from the context")
    elif outcome.blocked:
        stdout.print(f"reply: {escape(outcome.message)}")
    else:
        stdout.print(escape(outcome.text))
    for f in outcome.findings:
        score = f" score {f.score:.3f}" if f.score is not None else ""
        detail = f" · {f.detail}" if f.detail else ""
        stdout.print(f"[dim]  {f.guard}/{escape(f.rule)} → {f.action}{score}{escape(detail)}[/]")


@policy_app.command("check")
def policy_check_command(
    file: Annotated[Path, typer.Argument(help="The policy file (YAML or JSON).", dir_okay=False)],
) -> None:
    """Validate a policy file: exit 0 and a summary, or exit 2 with the file and field that are wrong."""
    try:
        policy = load_policy(file)
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    pii = policy.sensitive_information_policy
    parts = [
        f"{len(pii.actions())} PII entities" if pii else "PII off",
        f"{len(policy.word_filters)} word filters",
        f"{len(policy.denied_topics)} denied topics",
        "prompt attack on" if policy.prompt_attack else "prompt attack off",
        "grounding on" if policy.contextual_grounding else "grounding off",
        f"{len(policy.tenants)} tenant overrides",
    ]
    stdout.print(f"{escape(str(file))}: valid, version {escape(policy.version)} · " + ", ".join(parts))


@app.command("train-injection")
def train_injection_command(
    data: Annotated[
        Path, typer.Option("--data", help="Evaluation data folder with guard/, traffic/ and rag/.", file_okay=False)
    ] = Path("../shared/data"),
    out: Annotated[Path | None, typer.Option("--out", help="Weights file (default: the packaged one).")] = None,
) -> None:
    """Retrain the prompt-attack classifier (needs scikit-learn) and print its validation figures."""
    from answerdesk.guard.train_injection import PACKAGED_MODEL, train_and_save

    result = train_and_save(data, out or PACKAGED_MODEL, log=lambda m: stdout.print(escape(m)))
    stdout.print(f"validation (classifier only): {result['validation']}")


@app.command("audit")
def audit_command(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events since: 30m, 24h, 7d, or an ISO date/time (UTC).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many events, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Recorded redactions, blocks, challenges and refusals: request, stage, guard, rule, action and the
    SHA-256 of what matched (never the text)."""
    app_ctx: AppContext = ctx.obj
    log = SqliteAuditLog(app_ctx.settings.store.path)
    try:
        events = log.query(since=parse_since(since) if since else None, limit=limit)
    finally:
        log.close()
    if as_json:
        print_json(events)
        return
    table = Table("at", "request", "tenant", "stage", "guard", "rule", "action", "match sha256")
    for e in events:
        table.add_row(
            e.at, e.request_id[:12], e.tenant or "-", e.stage, e.guard, escape(e.rule), e.action,
            (e.match_sha256 or "-")[:16],
        )  # fmt: skip
    stdout.print(table)
    stdout.print(f"[dim]{len(events)} events[/]")


def parse_since(value: str, *, now: dt.datetime | None = None) -> str:
    """``30m`` / ``24h`` / ``7d`` before ``now``, or an ISO date or time, as the ISO UTC text the audit stores."""
    now = now or dt.datetime.now(dt.UTC)
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        delta = dt.timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now - delta).isoformat(timespec="milliseconds")
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--since must be like 30m, 24h, 7d or an ISO date/time, got {value!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds")
