"""A search query's vector in the space the stored embeddings live in.

The model version comes from the store (the latest enrichment's, kept a few seconds); the vector
from Redis when the same query was embedded before under that version, else from the query
encoder (then cached). Redis is only a cache: down or slow, searches embed again.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from cluster.keys import query_embedding_key
from cluster.store.enrichment import latest_model_version
from deployments.backends import Backends
from deployments.expiring import Expiring
from deployments.query_encoding import QueryEncoderError, QueryVector

logger = logging.getLogger("newsray.api")

# latest_model_version scans the enrichment table; the answer changes only with a model switch.
MODEL_VERSION_TTL_S = 30.0
# A query's vector never changes for a model version; the TTL only bounds Redis memory
# (~1.6 KB a query at 384 dimensions).
CACHE_TTL_S = 24 * 3600
# Well under an embedding's cost: a cache that cannot answer at once is skipped.
CACHE_TIMEOUT_S = 0.25
NOTHING_EMBEDDED = "no article has an embedding yet (run the enrichment: python -m jobs.enrich)"


class SemanticUnavailable(Exception):
    """Semantic search cannot run now; the message says why and is meant for the client."""


class QueryVectors:
    def __init__(self, backends: Backends, version_ttl_s: float = MODEL_VERSION_TTL_S) -> None:
        self.backends = backends
        self._version: Expiring[str] = Expiring(version_ttl_s)

    async def model_version(self) -> str | None:
        async def latest() -> str | None:
            return await latest_model_version(await self.backends.read_pool())

        return await self._version.get(latest)

    async def vector_for(self, query: str) -> QueryVector:
        """`query` (already normalized) embedded for the stored articles' model version."""
        version = await self.model_version()
        if version is None:
            raise SemanticUnavailable(NOTHING_EMBEDDED)
        key = query_embedding_key(version, query)
        cached = await self._cached(key)
        if cached is not None:
            return QueryVector(version, cached)
        try:
            encoded = await self.backends.encode_query(query)
        except QueryEncoderError as exc:
            raise SemanticUnavailable(str(exc)) from None
        if encoded.model_version != version:
            raise SemanticUnavailable(
                f"the articles were embedded with model {version!r} but the query encoder runs"
                f" {encoded.model_version!r} (configure both alike, or re-run the enrichment)")
        await self._remember(key, encoded.vector)
        return encoded

    async def _cached(self, key: str) -> np.ndarray | None:
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_S):
                raw = await self.backends.redis().get(key)
        except Exception as exc:  # noqa: BLE001 - a cache miss, whatever went wrong
            # Debug only: with Redis down every search would log it; /health reports Redis.
            logger.debug("api: query cache read failed: %s", type(exc).__name__)
            return None
        if not raw or len(raw) % 4:
            return None
        return np.frombuffer(raw, dtype=np.float32)

    async def _remember(self, key: str, vector: np.ndarray) -> None:
        try:
            async with asyncio.timeout(CACHE_TIMEOUT_S):
                await self.backends.redis().set(key, np.asarray(vector, dtype=np.float32).tobytes(), ex=CACHE_TTL_S)
        except Exception as exc:  # noqa: BLE001 - the search goes on uncached
            logger.debug("api: query cache write failed: %s", type(exc).__name__)
