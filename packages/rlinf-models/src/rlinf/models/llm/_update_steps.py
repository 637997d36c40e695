"""Per-step helpers of :class:`~rlinf.models.llm.LLMUpdater`: loss metrics, padding trim,
the policy / critic passes over the response positions, and the micro-batches of a rank."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ..train import token_balanced_split

__all__ = ["_critic_values", "_loss_metrics", "_micro_batches", "_response_logprobs", "_trim"]


# Metrics of the loss reported under these names when the loss returns them (every
# built-in does; a plugin's loss needs only ``pg_loss``).
_LOSS_METRICS = {"entropy": "entropy", "approx_kl": "approx_kl", "mismatch_kl": "tis/mismatch_kl"}
_IS_METRICS = {
    "is_weight_mean": ("behav_weight_mean", "tis/weight_mean"),
    "is_clip_frac": ("behav_clip_frac", "tis/clip_frac"),
}


def _loss_metrics(m: Mapping[str, torch.Tensor], reuse: bool) -> dict[str, float]:
    """Floats of the policy loss's metrics (``pg_loss`` required)."""
    if "pg_loss" not in m:
        raise ValueError(f"a policy loss must return a 'pg_loss' metric, got {sorted(m)}")
    parts = {"pg_loss": float(m["pg_loss"])}
    parts.update({k: float(m[src]) for k, src in _LOSS_METRICS.items() if src in m})
    # Importance weights: the decoupled loss's behaviour weights, else PPO's rollout ones.
    for name, sources in _IS_METRICS.items():
        src = next((s for s in sources if s in m), None)
        if src is not None:
            parts[name] = float(m[src])
    if "clip_frac_low" in m:
        parts["clip_frac"] = float(m["clip_frac_low"] + m["clip_frac_high"])
    if reuse and "tis/mismatch_abs" in m:
        parts["logprob_mismatch"] = float(m["tis/mismatch_abs"])
    return parts


def _trim(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Drop columns that are padding in every row: leading prompt padding and trailing
    response padding. Returns ``(input_ids, attention_mask, new prompt length, new response
    length)``; the model sees the same tokens at the same relative positions."""
    am = attention_mask.bool()
    prompt_pad = (~am[:, :prompt_length]).sum(dim=1).min()
    resp = am[:, prompt_length:]
    width = int(resp.any(dim=0).nonzero().max()) + 1 if bool(resp.any()) else 1
    lead = int(prompt_pad)
    end = prompt_length + width
    return input_ids[:, lead:end], attention_mask[:, lead:end], prompt_length - lead, width


def _response_logprobs(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_length: int,
    temperature: float,
    chunk_size: int,
    with_entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    # Imported here: rlinf.models.llm's __init__ imports this module before the log-prob
    # helper's own line, and the helper never needs to be loaded to build an updater.
    from ._logprobs import response_logprobs

    return response_logprobs(
        model,
        input_ids,
        attention_mask,
        prompt_length,
        temperature=temperature,
        chunk_size=chunk_size,
        with_entropy=with_entropy,
    )


def _critic_values(
    critic: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int
) -> torch.Tensor:
    """``[B, R]`` values of the response positions."""
    return critic(input_ids, attention_mask, prompt_length)


def _micro_batches(
    attention_mask: torch.Tensor, rows: torch.Tensor, micro_batch_size: int, world: int, rank: int
) -> list[tuple[torch.Tensor, bool]]:
    """This rank's micro-batches of mini-batch ``rows`` as ``(rows, real)``.

    One rank: ``rows`` in chunks of ``micro_batch_size`` (0: one chunk). ``W`` ranks: the
    rank's token-balanced share, in as many chunks as the largest share needs (every rank
    must run the same number of forward / backward passes: fsdp2's gathers are
    collectives); a rank with fewer rows than chunks repeats a row as padding. A
    mini-batch with fewer rows than ranks (dynamic sampling kept few groups, or a short
    last mini-batch) gives one row to each of the first ranks and only padding to the
    rest. ``attention_mask``: ``[N, T]`` of all rows (token counts).
    """
    micro = micro_batch_size or rows.shape[0]
    if world == 1:
        return [(m, True) for m in rows.split(micro)]
    if rows.shape[0] >= world:
        shares = token_balanced_split(attention_mask[rows].sum(dim=1), world)
    else:
        shares = [[i] if i < rows.shape[0] else [] for i in range(world)]
    count = max(math.ceil(len(s) / micro) for s in shares)
    local = rows[torch.as_tensor(shares[rank], dtype=torch.long, device=rows.device)]
    if local.shape[0] == 0:
        return [(rows[:1], False)] * count
    chunks = [(m, True) for m in torch.tensor_split(local, min(count, local.shape[0]))]
    return chunks + [(local[:1], False)] * (count - len(chunks))
