"""Crawling: Ray actors and the pure helpers (fetch policy, parsing, URLs) they use."""
