"""Offline sample news feeds and a tiny stdlib HTTP server that serves them.

Used by demos and tests so that newsray can ingest realistic English and Turkish
news (RSS 2.0, RSS 1.0/RDF and Atom) without touching the internet.
"""

from cluster.samplefeeds.server import FEEDS_DIR, SampleFeedServer, sample_feed_files, start_sample_server

__all__ = ["FEEDS_DIR", "SampleFeedServer", "sample_feed_files", "start_sample_server"]
