"""Splitting a batch across ranks and joining the ranks' results back together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._typed_batch import TypedBatch

__all__ = ["concat_batches", "split_batch"]


def _sizes(n: int, parts: int) -> list[int]:
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def split_batch(batch: Any, parts: int) -> list[Any]:
    """Split ``batch`` into ``parts`` contiguous, near-equal pieces along its first dimension.

    ``batch`` is a :class:`TypedBatch` (split along its batch dimension), a list/tuple
    (split by items), a tensor of shape ``[N, ...]`` (pieces of
    shape ``[n_i, ...]``), or a mapping whose values are all tensors/lists of the same length N
    (each piece is a mapping of the same keys). The first ``N % parts`` pieces get one extra row.
    """
    if parts <= 0:
        raise ValueError(f"cannot split into {parts} parts")
    if isinstance(batch, TypedBatch):
        return batch.split(parts)
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            raise ValueError("cannot split a 0-d tensor")
        return list(torch.split(batch, _sizes(batch.shape[0], parts)))
    if isinstance(batch, Mapping):
        lengths = {k: len(v) for k, v in batch.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"batch fields have different lengths: {lengths}")
        pieces = {k: split_batch(v, parts) for k, v in batch.items()}
        return [{k: pieces[k][i] for k in batch} for i in range(parts)]
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        out, start = [], 0
        for size in _sizes(len(batch), parts):
            out.append(list(batch[start : start + size]))
            start += size
        return out
    raise TypeError(f"cannot split a {type(batch).__name__}; use a list, tensor or dict of them")


def concat_batches(pieces: Sequence[Any]) -> Any:
    """Inverse of ``split_batch``: concatenate per-rank results in order.

    Typed batches are joined by their ``concat``, tensors are concatenated along dim 0,
    lists are chained, mappings are joined key by key.
    Anything else is returned as the list of pieces.
    """
    if not pieces:
        return []
    first = pieces[0]
    if isinstance(first, TypedBatch):
        return type(first).concat(pieces)
    if isinstance(first, torch.Tensor):
        return torch.cat([p if p.dim() else p.reshape(1) for p in pieces])
    if isinstance(first, Mapping):
        return {k: concat_batches([p[k] for p in pieces]) for k in first}
    if isinstance(first, (list, tuple)):
        return [item for p in pieces for item in p]
    return list(pieces)
