"""Lineage: a record of every request (prompt, response, retrieval fixture) in a blob store, with retention."""
