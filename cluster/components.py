"""Where the CLI finds the parts that live outside `cluster/`, by import path.

`cluster` imports none of the other packages (DESIGN.md); like Serve's import_path, the
lifecycle names them as strings and loads them only when it starts them.
"""

from __future__ import annotations

import importlib
from typing import Any

SCHEDULER_FACTORY = "actors.scheduler:get_or_create_scheduler"
SCHEDULER_NAME = "crawl-scheduler"
SERVE_DEPLOY = "deployments.app:deploy"
DISCOVER_FEED = "actors.discover:discover_url"
FETCH_POLICY = "actors.crawl:fetch_policy"
SERVE_APP_NAME = "newsray"
# The embedding model of the enrichment job, which the API's query encoder must share.
EMBEDDER = "jobs.enrichment.embed:Embedder"
EMBED_MODEL_VERSION = "jobs.enrichment.embed:model_version"


def load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
