"""The QueryEncoder deployment: the one place in the Serve app that holds the embedding model.

The Api replicas reach it through a DeploymentHandle (deployments.query_encoding.handle_encoder)
for searches Redis has not cached yet. One replica on a small CPU share: a query embeds in ~5 ms
on one torch thread, and torch plus the model in every Api replica would cost hundreds of MB each.
"""

from __future__ import annotations

import threading

from ray import serve

from deployments.query_encoding import Encoded, QueryEncoderError, QueryModel

QUERY_ENCODER_NUM_CPUS = 0.1
QUERY_ENCODER_MAX_ONGOING_REQUESTS = 64
# Queries that arrive together go through the model as one batch; a lone query waits this long
# at most for company (its encoding takes longer than that).
MAX_BATCH_SIZE = 16
BATCH_WAIT_S = 0.002


@serve.deployment(
    name="QueryEncoder",
    num_replicas=1,
    max_ongoing_requests=QUERY_ENCODER_MAX_ONGOING_REQUESTS,
    ray_actor_options={"num_cpus": QUERY_ENCODER_NUM_CPUS},
    logging_config={"enable_access_log": False, "log_level": "WARNING"},
)
class QueryEncoder:
    def __init__(self) -> None:
        self._model = QueryModel()
        self._batches = 0
        # Loaded in the background: the replica is ready at once (`newsray up` does not wait
        # for torch), and a query arriving meanwhile waits for the load on the model's lock.
        threading.Thread(target=self._model.warm, name="query-model-load", daemon=True).start()

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def encode(self, texts: list[str]) -> list[Encoded]:
        self._batches += 1
        try:
            version, vectors = await self._model.encode(list(texts))
        except QueryEncoderError as exc:
            return [Encoded(error=str(exc)) for _ in texts]
        return [Encoded(version, vector) for vector in vectors]

    def stats(self) -> dict[str, int | bool]:
        """Queries embedded and batches run since start; whether the model is loaded."""
        return {"queries": self._model.encoded, "batches": self._batches, "loaded": self._model.loaded}
