"""GET /api/v1/topics: the topic catalog with how many articles have each topic."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cluster.store.enrichment import topic_counts
from deployments.errors import JsonErrorRoute
from deployments.expiring import Expiring
from deployments.schemas import ErrorResponse, TopicCount, TopicList
from deployments.topic_catalog import catalog_topics

# Counting scans every enriched article's topics; a menu does not need it fresher than this.
TOPIC_COUNTS_TTL_S = 60.0

router = APIRouter(prefix="/api/v1/topics", tags=["topics"], route_class=JsonErrorRoute,
                   responses={503: {"model": ErrorResponse}})


def counts_cache() -> Expiring[dict[str, int]]:
    return Expiring(TOPIC_COUNTS_TTL_S)


@router.get("", response_model=TopicList, summary="Topics with article counts",
            description="Every topic of the catalog and every topic articles carry, most articles first (then"
                        f" catalog order). Counts may be up to {TOPIC_COUNTS_TTL_S:.0f} s old.")
async def topics(request: Request) -> TopicList:
    backends = request.app.state.backends
    cache: Expiring[dict[str, int]] = request.app.state.topic_counts

    async def count() -> dict[str, int]:
        return await topic_counts(await backends.read_pool())

    counts = await cache.get(count) or {}
    catalog = catalog_topics()
    order = {topic.key: index for index, topic in enumerate(catalog)}
    names = {topic.key: topic.names for topic in catalog}
    keys = sorted(set(order) | set(counts), key=lambda key: (-counts.get(key, 0), order.get(key, len(order)), key))
    return TopicList(items=[TopicCount(key=key, names=names.get(key, {}), count=counts.get(key, 0)) for key in keys])
