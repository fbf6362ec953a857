"""A search query's embedding, made with the model that embedded the articles.

The model is jobs/enrichment/embed.py's Embedder with the enrichment settings
(NEWSRAY_ENRICH_MODEL, _MODEL_VERSION, _MAX_TOKENS, _DTYPE): the same class, truncation and
normalization as the job, so a query and the stored vectors share one space. deployments/ may
import only cluster/ (DESIGN.md), so the class is loaded by import path (cluster.components),
as the CLI loads the scheduler: a second copy of the embedding code could drift.

Two providers of `EncodeQuery` for Backends:
- in-process (plain uvicorn, the ASGI tests): one model per process, loaded on first use;
  encoding runs in a worker thread, so the event loop never waits on torch;
- a DeploymentHandle to the QueryEncoder deployment (the Serve app): one model for the whole
  app instead of torch and a model in every Api replica.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cluster import components

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

logger = logging.getLogger("newsray.api")

# A short query gains nothing from a second torch thread: on the 2-core machine, under load,
# one thread took ~5 ms a query and two ~170 ms (they fight the Api and each other for cores).
QUERY_TORCH_THREADS = 1
# A load takes seconds: after a failure, requests are refused at once for this long, not each
# one retrying the load.
LOAD_RETRY_S = 60.0
# Covers a first request that arrives while the QueryEncoder replica still loads its model.
HANDLE_TIMEOUT_S = 20.0
LOAD_FAILED = "the query model could not be loaded"
ENCODER_UNAVAILABLE = "the query encoder did not answer"


class QueryEncoderError(RuntimeError):
    """The query could not be embedded; the message is meant for the client."""


@dataclass(frozen=True, slots=True)
class QueryVector:
    model_version: str
    vector: np.ndarray  # float32, unit length


@dataclass(frozen=True, slots=True)
class Encoded:
    """The QueryEncoder deployment's answer: a vector, or why there is none. A value rather
    than an exception, so the reason crosses Ray intact (not wrapped in a remote traceback)."""

    model_version: str = ""
    vector: np.ndarray | None = None
    error: str | None = None


EncodeQuery = Callable[[str], Awaitable[QueryVector]]


def normalize_query(text: str) -> str:
    """NFC, single spaces, no ends: what is embedded, searched and cached."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    max_tokens: int
    dtype: str  # jobs.enrichment.embed.Dtype: auto, float32 or bfloat16


def spec_from_settings() -> ModelSpec:
    from cluster.settings import get_settings

    model_version = components.load(components.EMBED_MODEL_VERSION)
    settings = get_settings()
    return ModelSpec(settings.enrich_model, model_version(settings.enrich_model, settings.enrich_model_version),
                     settings.enrich_max_tokens, settings.enrich_dtype)


class QueryModel:
    """One embedding model, loaded on first use and shared by every caller in the process
    (event loops included: a thread lock, not an asyncio one, guards it)."""

    def __init__(self, spec: Callable[[], ModelSpec] = spec_from_settings, threads: int = QUERY_TORCH_THREADS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._spec = spec
        self._threads = threads
        self._clock = clock
        self._lock = threading.Lock()
        # Its own worker thread: encodes run one at a time anyway, and requests queued behind a
        # load (seconds) wait here rather than hold the event loop's default executor threads.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="query-model")
        self._embedder: Any = None
        self._version = ""
        self._failed_at: float | None = None
        self.encoded = 0  # queries embedded so far

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    def _load(self) -> None:
        if self._embedder is not None:
            return
        if self._failed_at is not None and self._clock() - self._failed_at < LOAD_RETRY_S:
            raise QueryEncoderError(LOAD_FAILED)
        try:
            spec = self._spec()
            embedder_class = components.load(components.EMBEDDER)
            embedder = embedder_class(spec.name, dtype=spec.dtype, max_tokens=spec.max_tokens, threads=self._threads)
        except Exception as exc:  # noqa: BLE001 - any failure (missing package, bad files) means no model
            self._failed_at = self._clock()
            # The detail (a path, a library message) is for the operator, not the client.
            logger.error("api: query model: %s: %s: %s", LOAD_FAILED, type(exc).__name__, exc)
            raise QueryEncoderError(LOAD_FAILED) from None
        self._embedder, self._version, self._failed_at = embedder, spec.version, None

    def warm(self) -> None:
        """Load now (a replica's start-up); a failure is logged and retried on use."""
        try:
            with self._lock:
                self._load()
        except QueryEncoderError:
            pass

    def encode_sync(self, texts: list[str]) -> tuple[str, np.ndarray]:
        """(model version, one unit vector per text). Blocks: call it from a worker thread."""
        with self._lock:  # one encode at a time: the model is not shared across threads
            self._load()
            vectors = self._embedder.encode(texts)
            self.encoded += len(texts)
            return self._version, vectors

    async def encode(self, texts: list[str]) -> tuple[str, np.ndarray]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.encode_sync, texts)


_process_model: QueryModel | None = None
_process_model_lock = threading.Lock()


def process_model() -> QueryModel:
    """The process-wide model (created on first call; loaded on first encode)."""
    global _process_model
    with _process_model_lock:
        if _process_model is None:
            _process_model = QueryModel()
        return _process_model


def in_process_encoder(model: QueryModel | None = None) -> EncodeQuery:
    """Encode in this process, with `model` or the process-wide one."""

    async def encode(text: str) -> QueryVector:
        version, vectors = await (model or process_model()).encode([text])
        return QueryVector(version, vectors[0])

    return encode


def handle_encoder(handle: DeploymentHandle, timeout_s: float = HANDLE_TIMEOUT_S) -> EncodeQuery:
    """Encode through the QueryEncoder deployment."""

    async def encode(text: str) -> QueryVector:
        try:
            async with asyncio.timeout(timeout_s):
                result: Encoded = await handle.encode.remote(text)
        except Exception as exc:  # noqa: BLE001 - a dead replica, back-pressure, a timeout: all "unavailable"
            logger.warning("api: query encoder call failed: %s: %s", type(exc).__name__, exc)
            raise QueryEncoderError(ENCODER_UNAVAILABLE) from None
        if result.vector is None:
            raise QueryEncoderError(result.error or ENCODER_UNAVAILABLE)
        return QueryVector(result.model_version, np.asarray(result.vector, dtype=np.float32))

    return encode
