"""The topic catalog's keys and display names, for GET /api/v1/topics.

The catalog is the enrichment's (read by cluster.topic_catalog); only keys and names are used
here. A catalog that cannot be read leaves the names out, not the counts: the stored topics are
what filters match.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from cluster.topic_catalog import DEFAULT_CATALOG, catalog_items

logger = logging.getLogger("newsray.api")


@dataclass(frozen=True, slots=True)
class CatalogTopic:
    key: str
    names: dict[str, str]


def catalog_topics() -> list[CatalogTopic]:
    from cluster.settings import get_settings

    return _read(get_settings().enrich_topics_file)


@functools.lru_cache(maxsize=4)
def _read(path: Path | None) -> list[CatalogTopic]:
    try:
        return [CatalogTopic(str(item["key"]), {str(k): str(v) for k, v in dict(item.get("name", {})).items()})
                for item in catalog_items(path)]
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("api: cannot read the topic catalog %s: %s", path or DEFAULT_CATALOG, exc)
        return []
