"""Prompt labels (``production``, ``canary`` …) pointing at template versions, and the audit trail of their moves.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_labels",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        # The template file's hash when the label was set, so an edited file under a label is caught.
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "label"),
    )
    # Append-only: one row per move, never updated or deleted by answerdesk.
    op.create_table(
        "prompt_label_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("from_sha256", sa.Text(), nullable=True),
        sa.Column("to_sha256", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
    )
    op.create_index("ix_prompt_label_events_name", "prompt_label_events", ["name", "id"])


def downgrade() -> None:
    op.drop_index("ix_prompt_label_events_name", table_name="prompt_label_events")
    op.drop_table("prompt_label_events")
    op.drop_table("prompt_labels")
