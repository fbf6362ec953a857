"""The topic catalog's keys and display names, for GET /api/v1/topics.

The catalog is the enrichment's (NEWSRAY_ENRICH_TOPICS_FILE, else cluster/data/topics.json);
only keys and names are read here. A catalog that cannot be read leaves the names out, not the
counts: the stored topics are what filters match.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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
        raw = path.read_text() if path else resources.files("cluster.data").joinpath("topics.json").read_text()
        return [CatalogTopic(str(item["key"]), {str(k): str(v) for k, v in dict(item.get("name", {})).items()})
                for item in json.loads(raw)["topics"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.error("api: cannot read the topic catalog %s: %s", path or "cluster/data/topics.json", exc)
        return []
