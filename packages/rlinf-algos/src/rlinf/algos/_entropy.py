"""Entropy and token log-probabilities from logits, in chunks for large vocabularies.

A ``[B*T, V]`` float32 softmax for a 150k vocabulary is gigabytes; processing rows in chunks
bounds the temporary memory to one chunk. With autograd on, each chunk is recomputed in the
backward pass (activation checkpointing) so the saved tensors stay small as well.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

from ._checks import check_finite

__all__ = ["chunked_entropy_from_logits", "entropy_from_logits", "log_probs_from_logits"]


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of ``softmax(logits)`` over the last dim, computed in float32.

    ``H = logsumexp(z) - sum(softmax(z) * z)``. Shapes: ``[..., V]`` -> ``[...]``.
    """
    z = logits.float()
    lse = torch.logsumexp(z, dim=-1)
    return lse - (torch.softmax(z, dim=-1) * z).sum(dim=-1)


def _token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z = logits.float()
    picked = z.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(z, dim=-1)


def _chunked(
    fn: Callable[..., torch.Tensor],
    chunk_size: int,
    logits: torch.Tensor,
    *extra: torch.Tensor,
) -> torch.Tensor:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a non-empty vocabulary dim, got {tuple(logits.shape)}")
    lead = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1])
    flat_extra = [e.reshape(-1) for e in extra]
    outs = []
    for start in range(0, flat.shape[0], chunk_size):
        parts = [flat[start : start + chunk_size]] + [
            e[start : start + chunk_size] for e in flat_extra
        ]
        if torch.is_grad_enabled() and flat.requires_grad:
            outs.append(checkpoint(fn, *parts, use_reentrant=False))
        else:
            outs.append(fn(*parts))
    if not outs:
        return torch.zeros(lead, dtype=torch.float32, device=logits.device)
    return torch.cat(outs).reshape(lead)


def chunked_entropy_from_logits(logits: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """:func:`entropy_from_logits` over ``chunk_size`` rows at a time.

    Shapes: ``[..., V]`` -> ``[...]`` (float32). Equal to the unchunked computation, with
    gradients; memory for temporaries is ``O(chunk_size * V)``.
    """
    check_finite("logits", logits)
    return _chunked(entropy_from_logits, chunk_size, logits)


def log_probs_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, chunk_size: int = 1024
) -> torch.Tensor:
    """Log-probability of ``labels`` under ``softmax(logits)``, in chunks of rows.

    Shapes: logits ``[..., V]``, labels ``[...]`` (int64) -> ``[...]`` float32.
    """
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}, expected {tuple(logits.shape[:-1])}"
        )
    check_finite("logits", logits)
    return _chunked(_token_log_probs, chunk_size, logits, labels)
