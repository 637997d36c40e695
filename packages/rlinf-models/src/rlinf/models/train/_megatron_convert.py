"""Hugging Face Qwen2 / Llama <-> Megatron-core ``GPTModel`` weights, as pure functions.

Megatron's layout (local layer spec, the one :mod:`rlinf.models.train._megatron` builds):

* ``linear_qkv``: Q, K and V fused row-wise and grouped by key/value head: for each of the
  ``G`` query groups, its ``nh / G`` query heads, then its key head, then its value head
  (``[(nh + 2 G) * d, H]``), so that a contiguous tensor-parallel slice holds whole groups.
* ``linear_fc1``: the gated MLP's gate and up projections stacked (``[2 I, H]``: gate
  first); each tensor-parallel rank holds its slice of gate stacked on its slice of up.
* ``output_layer``: absent when the embedding is tied to the output projection.

No function here imports megatron: the conversion is testable and usable (export to the
engines) without the extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "GPTShape",
    "hf_to_megatron",
    "megatron_to_hf",
    "merge_tensor_parallel",
    "split_tensor_parallel",
]

_SUPPORTED = ("qwen2", "llama")


@dataclass(frozen=True)
class GPTShape:
    """The dimensions the conversion needs.

    Attributes:
        num_layers: transformer layers ``L``.
        hidden_size: ``H``.
        num_heads: query heads ``nh``.
        num_kv_heads: key / value heads = Megatron's query groups ``G``; divides ``nh``.
        head_dim: ``d`` per head.
        ffn_hidden_size: the MLP's inner size ``I``.
        vocab_size: rows of the embedding ``V``.
        tie_embeddings: the output projection is the input embedding.
        qkv_bias: Q / K / V projections carry a bias (Qwen2: yes; Llama: no).
    """

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffn_hidden_size: int
    vocab_size: int
    tie_embeddings: bool
    qkv_bias: bool

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTShape.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"GPTShape: num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})"
            )

    @classmethod
    def from_hf_config(cls, config: Any) -> GPTShape:
        """The shape of a transformers ``Qwen2Config`` / ``LlamaConfig``; other model types,
        and Llama's optional attention-output / MLP biases (no Megatron counterpart in
        this layout), raise ValueError."""
        kind = getattr(config, "model_type", None)
        if kind not in _SUPPORTED:
            raise ValueError(f"Megatron conversion supports {_SUPPORTED}, got model_type {kind!r}")
        if kind == "llama" and (config.attention_bias or config.mlp_bias):
            raise ValueError("Megatron conversion: Llama attention_bias / mlp_bias are unsupported")
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            num_layers=config.num_hidden_layers,
            hidden_size=config.hidden_size,
            num_heads=heads,
            num_kv_heads=config.num_key_value_heads or heads,
            head_dim=head_dim,
            ffn_hidden_size=config.intermediate_size,
            vocab_size=config.vocab_size,
            tie_embeddings=bool(config.tie_word_embeddings),
            qkv_bias=kind == "qwen2",
        )


def _take(sd: dict[str, torch.Tensor], key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Pop ``key`` from ``sd`` after checking its shape (errors name the key)."""
    if key not in sd:
        raise KeyError(f"state dict has no {key!r}")
    t = sd.pop(key)
    if tuple(t.shape) != shape:
        raise ValueError(f"{key} has shape {tuple(t.shape)}, expected {shape}")
    return t


def _fuse_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, s: GPTShape) -> torch.Tensor:
    """``q [nh d, *r]``, ``k, v [G d, *r]`` -> grouped ``[(nh + 2 G) d, *r]``."""
    g, d, rest = s.num_kv_heads, s.head_dim, q.shape[1:]
    per = s.num_heads // g
    parts = (q.reshape(g, per * d, *rest), k.reshape(g, d, *rest), v.reshape(g, d, *rest))
    return torch.cat(parts, dim=1).reshape(-1, *rest)


def _split_qkv(qkv: torch.Tensor, s: GPTShape) -> tuple[torch.Tensor, ...]:
    """Inverse of :func:`_fuse_qkv` for a slice holding ``qkv.shape[0] / ((nh/G + 2) d)``
    whole groups."""
    d, per, rest = s.head_dim, s.num_heads // s.num_kv_heads, qkv.shape[1:]
    grouped = qkv.reshape(-1, (per + 2) * d, *rest)
    q, k, v = grouped.split([per * d, d, d], dim=1)
    return tuple(t.reshape(-1, *rest) for t in (q, k, v))


def hf_to_megatron(
    hf_state: Mapping[str, torch.Tensor], shape: GPTShape
) -> dict[str, torch.Tensor]:
    """A Hugging Face Qwen2 / Llama ``state_dict`` as a Megatron ``GPTModel`` one (full,
    unsharded). Every HF key must be consumed: an unexpected one raises ValueError."""
    sd, s = dict(hf_state), shape
    h, d, i_ = s.hidden_size, s.head_dim, s.ffn_hidden_size
    q_rows, kv_rows = s.num_heads * d, s.num_kv_heads * d
    out = {
        "embedding.word_embeddings.weight": _take(
            sd, "model.embed_tokens.weight", (s.vocab_size, h)
        )
    }
    for n in range(s.num_layers):
        hf, mc = f"model.layers.{n}.", f"decoder.layers.{n}."
        q = _take(sd, hf + "self_attn.q_proj.weight", (q_rows, h))
        k = _take(sd, hf + "self_attn.k_proj.weight", (kv_rows, h))
        v = _take(sd, hf + "self_attn.v_proj.weight", (kv_rows, h))
        out[mc + "self_attention.linear_qkv.weight"] = _fuse_qkv(q, k, v, s)
        if s.qkv_bias:
            qb = _take(sd, hf + "self_attn.q_proj.bias", (q_rows,))
            kb = _take(sd, hf + "self_attn.k_proj.bias", (kv_rows,))
            vb = _take(sd, hf + "self_attn.v_proj.bias", (kv_rows,))
            out[mc + "self_attention.linear_qkv.bias"] = _fuse_qkv(qb, kb, vb, s)
        out[mc + "self_attention.linear_proj.weight"] = _take(
            sd, hf + "self_attn.o_proj.weight", (h, q_rows)
        )
        gate = _take(sd, hf + "mlp.gate_proj.weight", (i_, h))
        up = _take(sd, hf + "mlp.up_proj.weight", (i_, h))
        out[mc + "mlp.linear_fc1.weight"] = torch.cat([gate, up], dim=0)
        out[mc + "mlp.linear_fc2.weight"] = _take(sd, hf + "mlp.down_proj.weight", (h, i_))
        out[mc + "input_layernorm.weight"] = _take(sd, hf + "input_layernorm.weight", (h,))
        out[mc + "pre_mlp_layernorm.weight"] = _take(
            sd, hf + "post_attention_layernorm.weight", (h,)
        )
    out["decoder.final_layernorm.weight"] = _take(sd, "model.norm.weight", (h,))
    head = sd.pop("lm_head.weight", None)
    if not s.tie_embeddings:
        if head is None:
            raise KeyError(
                "state dict has no 'lm_head.weight' (the model's embeddings are not tied)"
            )
        out["output_layer.weight"] = head
    elif head is not None and not torch.equal(head, out["embedding.word_embeddings.weight"]):
        raise ValueError("tie_embeddings is set but lm_head.weight differs from the embedding")
    if sd:
        raise ValueError(f"unexpected Hugging Face keys for this shape: {sorted(sd)[:8]}")
    return out


def megatron_to_hf(
    mcore_state: Mapping[str, Any], shape: GPTShape, *, include_tied_head: bool = True
) -> dict[str, torch.Tensor]:
    """A full Megatron ``GPTModel`` state dict as a Hugging Face Qwen2 / Llama one.
    ``*._extra_state`` entries (Megatron's per-module metadata) are skipped; any other
    unexpected key raises ValueError. ``include_tied_head``: with tied embeddings, also
    emit ``lm_head.weight`` (the same tensor), as HF's own ``state_dict`` does."""
    sd = {k: v for k, v in mcore_state.items() if not k.endswith("._extra_state")}
    s = shape
    h, d, i_ = s.hidden_size, s.head_dim, s.ffn_hidden_size
    qkv_rows = (s.num_heads + 2 * s.num_kv_heads) * d
    embed = _take(sd, "embedding.word_embeddings.weight", (s.vocab_size, h))
    out = {"model.embed_tokens.weight": embed}
    for n in range(s.num_layers):
        hf, mc = f"model.layers.{n}.", f"decoder.layers.{n}."
        q, k, v = _split_qkv(_take(sd, mc + "self_attention.linear_qkv.weight", (qkv_rows, h)), s)
        out |= {hf + "self_attn.q_proj.weight": q, hf + "self_attn.k_proj.weight": k}
        out[hf + "self_attn.v_proj.weight"] = v
        if s.qkv_bias:
            qb, kb, vb = _split_qkv(
                _take(sd, mc + "self_attention.linear_qkv.bias", (qkv_rows,)), s
            )
            out |= {hf + "self_attn.q_proj.bias": qb, hf + "self_attn.k_proj.bias": kb}
            out[hf + "self_attn.v_proj.bias"] = vb
        out[hf + "self_attn.o_proj.weight"] = _take(
            sd, mc + "self_attention.linear_proj.weight", (h, s.num_heads * d)
        )
        gate, up = _take(sd, mc + "mlp.linear_fc1.weight", (2 * i_, h)).chunk(2, dim=0)
        out |= {hf + "mlp.gate_proj.weight": gate, hf + "mlp.up_proj.weight": up}
        out[hf + "mlp.down_proj.weight"] = _take(sd, mc + "mlp.linear_fc2.weight", (h, i_))
        out[hf + "input_layernorm.weight"] = _take(sd, mc + "input_layernorm.weight", (h,))
        out[hf + "post_attention_layernorm.weight"] = _take(
            sd, mc + "pre_mlp_layernorm.weight", (h,)
        )
    out["model.norm.weight"] = _take(sd, "decoder.final_layernorm.weight", (h,))
    if not s.tie_embeddings:
        out["lm_head.weight"] = _take(sd, "output_layer.weight", (s.vocab_size, h))
    elif include_tied_head:
        out["lm_head.weight"] = embed
    if sd:
        raise ValueError(f"unexpected Megatron keys for this shape: {sorted(sd)[:8]}")
    return out


# How each Megatron parameter is laid out across tensor-parallel ranks: sliced along dim 0
# (column-parallel, vocab-parallel), along dim 1 (row-parallel), or replicated (norms).
def _tp_kind(key: str) -> str:
    if key.endswith("mlp.linear_fc1.weight"):
        return "fc1"
    if key.endswith(("linear_qkv.weight", "linear_qkv.bias")) or key in (
        "embedding.word_embeddings.weight",
        "output_layer.weight",
    ):
        return "rows"
    if key.endswith(("linear_proj.weight", "linear_fc2.weight")):
        return "cols"
    if key.endswith("layernorm.weight"):
        return "replicated"
    raise ValueError(f"no tensor-parallel layout known for Megatron key {key!r}")


def split_tensor_parallel(
    mcore_state: Mapping[str, torch.Tensor], shape: GPTShape, tp: int
) -> list[dict[str, torch.Tensor]]:
    """Slice a full Megatron state dict into ``tp`` rank state dicts (rank order), as
    Megatron's ``ColumnParallelLinear`` / ``RowParallelLinear`` / vocab-parallel embedding
    hold them. Needs ``G``, ``nh``, ``I`` and ``V`` divisible by ``tp``."""
    if tp < 1:
        raise ValueError(f"tensor-parallel size must be >= 1, got {tp}")
    for name in ("num_kv_heads", "num_heads", "ffn_hidden_size", "vocab_size"):
        if getattr(shape, name) % tp:
            raise ValueError(f"{name} ({getattr(shape, name)}) is not divisible by tp={tp}")
    shards: list[dict[str, torch.Tensor]] = [{} for _ in range(tp)]
    for key, t in mcore_state.items():
        if key.endswith("._extra_state"):
            continue
        kind = _tp_kind(key)
        if kind == "fc1":
            gates, ups = t.chunk(2, dim=0)
            pieces = [torch.cat(p, dim=0) for p in zip(gates.chunk(tp), ups.chunk(tp), strict=True)]
        elif kind == "rows":
            pieces = list(t.chunk(tp, dim=0))
        elif kind == "cols":
            pieces = list(t.chunk(tp, dim=1))
        else:
            pieces = [t] * tp
        for shard, piece in zip(shards, pieces, strict=True):
            shard[key] = piece.clone()
    return shards


def merge_tensor_parallel(shards: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`split_tensor_parallel`: the full state dict from the rank state
    dicts in rank order. Replicated tensors must agree across ranks (ValueError names the
    key otherwise); every rank must hold the same keys."""
    if not shards:
        raise ValueError("merge_tensor_parallel needs at least one shard")
    keys = [k for k in shards[0] if not k.endswith("._extra_state")]
    for r, shard in enumerate(shards[1:], start=1):
        other = {k for k in shard if not k.endswith("._extra_state")}
        if other != set(keys):
            raise ValueError(
                f"tensor-parallel rank {r} holds different keys: {sorted(other ^ set(keys))[:5]}"
            )
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        parts = [s[key] for s in shards]
        kind = _tp_kind(key)
        if kind == "fc1":
            halves = [p.chunk(2, dim=0) for p in parts]
            out[key] = torch.cat(
                [torch.cat([g for g, _ in halves]), torch.cat([u for _, u in halves])]
            )
        elif kind == "rows":
            out[key] = torch.cat(parts, dim=0)
        elif kind == "cols":
            out[key] = torch.cat(parts, dim=1)
        else:
            if any(not torch.equal(parts[0], p) for p in parts[1:]):
                raise ValueError(f"replicated {key} differs across tensor-parallel ranks")
            out[key] = parts[0]
    return out
