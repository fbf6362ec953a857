"""The query model's loading policy, query normalization and the short-lived memo, without a
server (the model itself is exercised by test_api_enrichment.py and test_serve.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deployments.expiring import Expiring
from deployments.query_encoding import (
    LOAD_FAILED, LOAD_RETRY_S, ModelSpec, QueryEncoderError, QueryModel, in_process_encoder, normalize_query,
)
from tests.deployments.enrichment_support import MODEL_VERSION


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_normalize_query_folds_spaces_and_composes() -> None:
    assert normalize_query("  deprem \t\n  İzmir ") == "deprem İzmir"
    assert normalize_query("cafe\u0301") == "caf\u00e9"  # NFC: one spelling, one cache key
    assert normalize_query(" \n ") == ""


async def test_a_failed_load_is_not_retried_before_the_pause(tmp_path: Path) -> None:
    clock = Clock()
    attempts: list[float] = []

    def spec() -> ModelSpec:
        attempts.append(clock.now)
        return ModelSpec(str(tmp_path), "broken", 128, "auto")  # a directory with no model in it

    model = QueryModel(spec=spec, clock=clock)
    encode = in_process_encoder(model)
    for _ in range(3):
        with pytest.raises(QueryEncoderError, match=f"^{LOAD_FAILED}$"):
            await encode("anything")
    assert attempts == [1000.0] and not model.loaded
    clock.now += LOAD_RETRY_S
    with pytest.raises(QueryEncoderError):
        await encode("anything")
    assert len(attempts) == 2


async def test_the_default_model_embeds_a_query_as_a_unit_vector() -> None:
    vector = await in_process_encoder()("earthquake in the mountains")
    assert vector.model_version == MODEL_VERSION == "all-MiniLM-L6-v2"
    assert vector.vector.shape == (384,) and vector.vector.dtype == np.float32
    assert float(np.linalg.norm(vector.vector)) == pytest.approx(1.0, abs=1e-5)


async def test_expiring_keeps_a_value_for_its_ttl_but_never_none() -> None:
    clock = Clock()
    memo: Expiring[str] = Expiring(30.0, clock=clock)
    answers = iter([None, "v1", "v2"])
    loads = 0

    async def load() -> str | None:
        nonlocal loads
        loads += 1
        return next(answers)

    assert await memo.get(load) is None
    assert await memo.get(load) == "v1"  # None was not kept: asked again at once
    clock.now += 29
    assert await memo.get(load) == "v1" and loads == 2
    clock.now += 1
    assert await memo.get(load) == "v2" and loads == 3
