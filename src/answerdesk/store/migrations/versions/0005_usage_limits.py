"""Usage ledger, rate-limit windows and spend budgets per tenant and cost tag.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_counters",
        # e.g. ``rate:key:ak_1234abcd:requests:29594880`` or ``budget:tenant:acme:month:2026-12``.
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        # Unix seconds after which the window can no longer matter (purged then).
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_usage_counters_expires_at", "usage_counters", ["expires_at"])
    op.create_table(
        "usage_ledger",
        sa.Column("request_id", sa.Text(), primary_key=True),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("key_id", sa.Text(), nullable=False),
        # The request's cost tags as a JSON object.
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.create_index("ix_usage_ledger_tenant", "usage_ledger", ["tenant", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_tenant", table_name="usage_ledger")
    op.drop_table("usage_ledger")
    op.drop_index("ix_usage_counters_expires_at", table_name="usage_counters")
    op.drop_table("usage_counters")
