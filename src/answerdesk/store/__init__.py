"""Stores: documents, chunks, the lexical index and the vectors, behind the SearchIndex Protocol."""
