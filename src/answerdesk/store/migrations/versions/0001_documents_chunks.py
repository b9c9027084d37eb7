"""Documents, chunks with their vectors, and the FTS5 index kept in step by triggers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_UP = [
    """
    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        url TEXT,
        owner TEXT,
        region TEXT,
        product TEXT,
        plan TEXT,
        retention TEXT,
        compliance_scope TEXT,
        tenant TEXT,
        doc_type TEXT,
        updated_at TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        extra TEXT NOT NULL DEFAULT '{}',
        ingested_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX ix_documents_source ON documents (source)",
    "CREATE INDEX ix_documents_tenant ON documents (tenant)",
    """
    CREATE TABLE chunks (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        heading_path TEXT NOT NULL DEFAULT '[]',
        token_count INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        embedding BLOB NOT NULL
    )
    """,
    "CREATE INDEX ix_chunks_document ON chunks (document_id)",
    """
    CREATE VIRTUAL TABLE chunks_fts USING fts5 (
        title, heading, body, tokenize = 'porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, title, heading, body)
        VALUES (
            new.rowid,
            (SELECT title FROM documents WHERE id = new.document_id),
            (SELECT group_concat(value, ' ') FROM json_each(new.heading_path)),
            new.text
        );
    END
    """,
    """
    CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        DELETE FROM chunks_fts WHERE rowid = old.rowid;
    END
    """,
    # Bumped by every write so that in-process vector matrices know when to reload.
    "CREATE TABLE index_state (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL)",
    "INSERT INTO index_state (id, generation) VALUES (1, 0)",
]

_DOWN = [
    "DROP TABLE index_state",
    "DROP TRIGGER chunks_fts_delete",
    "DROP TRIGGER chunks_fts_insert",
    "DROP TABLE chunks_fts",
    "DROP TABLE chunks",
    "DROP TABLE documents",
]


def upgrade() -> None:
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in _DOWN:
        op.execute(statement)
