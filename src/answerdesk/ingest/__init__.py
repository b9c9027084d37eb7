"""Ingestion: find source files, load and clean them into documents, chunk them and index the chunks."""
