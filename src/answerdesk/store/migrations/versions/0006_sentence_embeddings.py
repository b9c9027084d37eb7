"""Sentence vectors per chunk, computed at ingest, for the answerability gate.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One float32 row per sentence of the chunk that can hold an answer (answerability.chunk_sentences), in
    # order, packed; NULL for chunks indexed before this revision (their sentences are embedded on demand).
    # A plain ADD COLUMN: SQLite adds a nullable column in place (a batch copy would drop the FTS triggers).
    op.add_column("chunks", sa.Column("sentence_embeddings", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("chunks", "sentence_embeddings")
