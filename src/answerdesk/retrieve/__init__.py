"""Retrieval: BM25 and vector candidates, fused, reranked, cut to k."""
