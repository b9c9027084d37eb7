"""Embedders: text to unit vectors, with the tokenizer chunking must agree with."""
