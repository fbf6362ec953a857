"""Where the topic catalog is read from, for the enrichment (which applies it) and the API (which
lists its names): NEWSRAY_ENRICH_TOPICS_FILE, else the default shipped in cluster/data."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CATALOG = "cluster/data/topics.json"


def catalog_items(path: Path | None = None) -> list[dict[str, Any]]:
    """The catalog's topic entries (key, name, keywords, description) as written; ValueError
    naming the file when it cannot be read or has no topic list."""
    try:
        raw = path.read_text() if path else resources.files("cluster.data").joinpath("topics.json").read_text()
        items = json.loads(raw)["topics"]
        if not isinstance(items, list):
            raise TypeError("'topics' is not a list")
        return items
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read topic catalog {path or DEFAULT_CATALOG}: {exc}") from None
