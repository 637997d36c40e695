"""Log-probabilities (and entropy) of response tokens under a causal LM, memory-bounded.

A full forward returns logits ``[B, P+R, V]``; for a 150k vocabulary and long sequences that
alone is gigabytes, and its float32 log-softmax more. Here the decoder's last hidden states
are sliced to the ``R`` positions that predict response tokens, and the output projection,
log-softmax and entropy run on ``chunk_size`` of those rows at a time (recomputed in the
backward pass when autograd is on), so temporaries are ``O(chunk_size * V)``.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from rlinf.algos import entropy_from_logits, log_probs_from_logits

__all__ = ["check_sequence_layout", "position_ids_from_mask", "response_logprobs"]

# Config attributes that make logits differ from ``lm_head(last_hidden_state)``: such models
# take the (less memory-frugal) path through the model's own logits.
_LOGIT_TRANSFORM_ATTRS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` positions counting only real tokens, so a left-padded row's first real
    token is at position 0, exactly as when it is run alone (padding gets 0)."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def check_sequence_layout(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
) -> None:
    """Raise ``ValueError`` unless ``input_ids`` / ``attention_mask`` are both ``[B, P+R]``
    and ``prompt_length`` (``P``) leaves a prefix of at least one token."""
    if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and attention_mask "
            f"{tuple(attention_mask.shape)} must both be [B, P+R]"
        )
    total = input_ids.shape[1]
    if not 1 <= prompt_length <= total:
        raise ValueError(f"prompt_length {prompt_length} must be in [1, {total}]")


def _split_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(decoder, output_projection)`` when logits are exactly ``proj(decoder(...))``."""
    # A model can only be sharded once torch.distributed.fsdp was imported; importing it
    # here just to check would cost every LLM process two seconds.
    fsdp = sys.modules.get("torch.distributed.fsdp")
    if fsdp is not None and isinstance(model, fsdp.FSDPModule):
        # fsdp2 gathers the root's parameters (embeddings, tied head) only around the
        # model's own forward: calling the decoder and the head apart would see shards.
        return None
    config = getattr(model, "config", None)
    if any(getattr(config, a, None) not in (None, 1, 1.0) for a in _LOGIT_TRANSFORM_ATTRS):
        return None
    get_decoder = getattr(model, "get_decoder", None)
    get_head = getattr(model, "get_output_embeddings", None)
    if get_decoder is None or get_head is None:
        return None
    decoder, head = get_decoder(), get_head()
    if decoder is None or decoder is model or head is None:
        return None
    return decoder, head


def _chunk_stats(
    head: nn.Module | None,
    temperature: float,
    with_entropy: bool,
    features: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    # features: [n, H] hidden states (head given) or [n, V] logits (head None).
    logits = head(features) if head is not None else features
    logits = logits.float() / temperature
    logp = log_probs_from_logits(logits, labels, chunk_size=max(1, logits.shape[0]))
    ent = entropy_from_logits(logits) if with_entropy else torch.zeros_like(logp)
    return logp, ent


def response_logprobs(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probability of every response token given its prefix.

    Token ``P + t`` is scored with the logits at position ``P + t - 1`` divided by
    ``temperature`` (the same scaling the generator sampled with, so the values match a
    rollout's ``rollout_logprobs`` on identical weights). Positions come from the attention
    mask (:func:`position_ids_from_mask`), so left padding does not shift them.

    Args:
        model: a Hugging Face causal LM (or any module with the same forward signature).
        input_ids: ``[B, P+R]`` int64, the :class:`~rlinf.models.llm.RolloutBatch` layout.
        attention_mask: ``[B, P+R]``, 1 on real tokens.
        prompt_length: ``P`` (>= 1).
        temperature: > 0.
        chunk_size: rows of ``B*R`` processed at a time for the output projection and
            softmax.
        with_entropy: also return the entropy of each position's distribution.

    Returns:
        ``(logprobs [B, R], entropy [B, R] or None)``, float32, differentiable when autograd
        is on. Values where ``attention_mask`` is 0 are meaningless (mask them).
    """
    check_sequence_layout(input_ids, attention_mask, prompt_length)
    total = input_ids.shape[1]
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    b, r = input_ids.shape[0], total - prompt_length
    labels = input_ids[:, prompt_length:]
    if r == 0:
        empty = torch.zeros(b, 0, device=input_ids.device)
        return empty, (empty.clone() if with_entropy else None)

    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids_from_mask(attention_mask),
        "use_cache": False,
    }
    split = _split_head(model)
    head: nn.Module | None
    if split is not None:
        decoder, head = split
        hidden = decoder(**kwargs).last_hidden_state
        features = hidden[:, prompt_length - 1 : total - 1]
    else:
        # Only the R+1 last positions' logits; the last one predicts past the sequence.
        features = model(**kwargs, logits_to_keep=r + 1).logits[:, :-1]
        head = None

    flat = features.reshape(b * r, features.shape[-1])
    flat_labels = labels.reshape(b * r)
    logps, ents = [], []
    for start in range(0, b * r, chunk_size):
        args = (flat[start : start + chunk_size], flat_labels[start : start + chunk_size])
        if torch.is_grad_enabled() and flat.requires_grad:
            # Recompute the chunk's logits in backward instead of keeping [n, V] alive.
            logp, ent = checkpoint(
                _chunk_stats, head, temperature, with_entropy, *args, use_reentrant=False
            )
        else:
            logp, ent = _chunk_stats(head, temperature, with_entropy, *args)
        logps.append(logp)
        ents.append(ent)
    logprobs = torch.cat(logps).reshape(b, r)
    entropy = torch.cat(ents).reshape(b, r) if with_entropy else None
    return logprobs, entropy
