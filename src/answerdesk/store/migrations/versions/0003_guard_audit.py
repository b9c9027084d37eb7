"""Guardrail audit: one row per blocked, redacted or challenged request (guard, rule, action, tenant), never raw PII.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Append-only: answerdesk never updates or deletes a row (retention jobs may delete by age).
    op.create_table(
        "guard_audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("guard", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        # SHA-256 of the matched text, so that repeats can be counted without keeping what was matched.
        sa.Column("match_sha256", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("policy_version", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_guard_audit_events_at", "guard_audit_events", ["at"])
    op.create_index("ix_guard_audit_events_request", "guard_audit_events", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_guard_audit_events_request", table_name="guard_audit_events")
    op.drop_index("ix_guard_audit_events_at", table_name="guard_audit_events")
    op.drop_table("guard_audit_events")
