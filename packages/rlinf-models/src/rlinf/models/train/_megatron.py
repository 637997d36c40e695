"""The ``megatron`` training backend: a Megatron-core ``GPTModel`` (tensor parallel) built
from a Hugging Face Qwen2 / Llama model, whose weights go in and out in HF names.

Importing this module imports megatron-core: the registry loads it only when the backend
is chosen, and a missing extra names ``rlinf-models[megatron]``. Targets megatron-core
0.16 (local layer spec: no Transformer Engine, no apex).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from megatron.core import parallel_state
from megatron.core.models.gpt import GPTModel
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
from megatron.core.transformer.transformer_config import TransformerConfig
from torch import nn

from ._backend import TrainingBackend
from ._megatron_convert import (
    GPTShape,
    hf_to_megatron,
    megatron_to_hf,
    merge_tensor_parallel,
    split_tensor_parallel,
)

__all__ = ["MegatronBackend", "MegatronCausalLM", "build_gpt_model"]


def build_gpt_model(hf_config: Any, *, dtype: torch.dtype, cpu_init: bool) -> GPTModel:
    """A ``GPTModel`` of the architecture of ``hf_config`` (Qwen2 / Llama: RMSNorm, SwiGLU,
    RoPE, grouped-query attention) for this rank's tensor-parallel slice. Needs
    ``parallel_state.initialize_model_parallel`` first. ``cpu_init``: Megatron's CPU
    initialization (deterministic across TP sizes; the weights are replaced anyway)."""
    shape = GPTShape.from_hf_config(hf_config)
    config = TransformerConfig(
        num_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        num_attention_heads=shape.num_heads,
        num_query_groups=shape.num_kv_heads,
        kv_channels=shape.head_dim,
        ffn_hidden_size=shape.ffn_hidden_size,
        normalization="RMSNorm",
        layernorm_epsilon=hf_config.rms_norm_eps,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=shape.qkv_bias,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        tensor_model_parallel_size=parallel_state.get_tensor_model_parallel_world_size(),
        params_dtype=dtype,
        bf16=dtype == torch.bfloat16,
        use_cpu_initialization=cpu_init,
    )
    rope = getattr(hf_config, "rope_theta", None) or hf_config.rope_parameters["rope_theta"]
    return GPTModel(
        config,
        get_gpt_layer_local_spec(normalization="RMSNorm"),
        vocab_size=shape.vocab_size,
        max_sequence_length=hf_config.max_position_embeddings,
        position_embedding_type="rope",
        rotary_base=int(rope),
        share_embeddings_and_output_weights=shape.tie_embeddings,
        # Full (gathered) logits: the loss code computes log-softmax over the whole vocab.
        parallel_output=False,
    )


class MegatronCausalLM(nn.Module):
    """A ``GPTModel`` called like a Hugging Face causal LM, so the updaters' loss code runs
    unchanged: ``forward(input_ids [B, S], attention_mask [B, S], position_ids [B, S])``
    returns an object whose ``.logits`` is ``[B, S, V]`` (the last ``logits_to_keep``
    positions when > 0). Padding keys are masked on top of the causal mask."""

    def __init__(self, gpt: GPTModel, hf_config: Any) -> None:
        super().__init__()
        self.gpt = gpt
        self.config = hf_config
        self.shape = GPTShape.from_hf_config(hf_config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        **_: Any,
    ) -> SimpleNamespace:
        s = input_ids.shape[1]
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones(s, s, dtype=torch.bool, device=input_ids.device).tril()
        keep = causal[None, None] & attention_mask.bool()[:, None, None, :]
        logits = self.gpt(input_ids, position_ids, attention_mask=~keep)
        if logits_to_keep > 0:
            logits = logits[:, -logits_to_keep:]
        return SimpleNamespace(logits=logits)


class MegatronBackend(TrainingBackend):
    """Megatron-core training of a Hugging Face Qwen2 / Llama model (GPU).

    ``config.tensor_parallel_size`` ranks share each layer (column / row parallel linears);
    the remaining factor of the world size is data parallel, whose gradients are summed
    by an all-reduce in :meth:`step`. The model is passed in as the HF model (its weights
    are converted and sliced for this rank, then the HF copy is freed) and
    :meth:`full_state_dict` returns HF names, so weight sync and export to the engines are
    unchanged. Pipeline parallelism needs Megatron's pipeline schedule driving the
    micro-batches, which the updaters do not use: ``pipeline_parallel_size > 1`` raises.
    """

    name = "megatron"

    def _prepare(self, model: nn.Module, forward_methods: tuple[str, ...]) -> nn.Module:
        cfg = self.config
        if forward_methods:
            raise ValueError(
                f"training backend 'megatron' has no forward_methods {forward_methods}"
            )
        if cfg.pipeline_parallel_size != 1:
            raise ValueError(
                "training backend 'megatron': pipeline_parallel_size > 1 is not supported "
                "(the updaters do not run Megatron's pipeline schedule); use tensor parallelism"
            )
        if cfg.cpu_offload:
            raise ValueError("training backend 'megatron' has no cpu_offload (use fsdp2)")
        if not dist.is_initialized() or not torch.cuda.is_available():
            raise RuntimeError(
                "training backend 'megatron' needs CUDA and torch.distributed (nccl)"
            )
        tp = cfg.tensor_parallel_size
        if self.world_size % tp:
            raise ValueError(
                f"world size {self.world_size} is not divisible by tensor_parallel_size {tp}"
            )
        if not parallel_state.model_parallel_is_initialized():
            parallel_state.initialize_model_parallel(tp, 1)
        dtype = torch.bfloat16 if cfg.mixed_precision == "bf16" else torch.float32
        hf_config = model.config
        shape = GPTShape.from_hf_config(hf_config)
        full = hf_to_megatron({k: v.detach().cpu() for k, v in model.state_dict().items()}, shape)
        mine = split_tensor_parallel(full, shape, tp)[
            parallel_state.get_tensor_model_parallel_rank()
        ]
        gpt = build_gpt_model(hf_config, dtype=dtype, cpu_init=True)
        missing, unexpected = gpt.load_state_dict(mine, strict=False)
        if unexpected or any(not k.endswith("._extra_state") for k in missing):
            raise RuntimeError(
                f"GPTModel weights mismatch: missing {missing}, unexpected {unexpected}"
            )
        model.to("meta")  # the HF copy is no longer needed; free its memory
        return MegatronCausalLM(gpt.cuda(), hf_config)

    def _tp_group(self) -> Any:
        return parallel_state.get_tensor_model_parallel_group()

    def clip_grad_norm(self, max_norm: float | None) -> float:
        """Global 2-norm over all TP slices (replicated norms' gradients counted once)."""
        tp_rank = parallel_state.get_tensor_model_parallel_rank()
        grads = [
            p.grad
            for p in self.params
            if p.grad is not None and (getattr(p, "tensor_model_parallel", False) or tp_rank == 0)
        ]
        sq = torch.zeros((), device="cuda", dtype=torch.float32)
        for g in grads:
            sq += g.float().pow(2).sum()
        dist.all_reduce(sq, group=self._tp_group())
        norm = float(sq.sqrt())
        if max_norm is not None and norm > max_norm:
            scale = max_norm / (norm + 1e-6)
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(scale)
        return norm

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> None:
        dp_group = parallel_state.get_data_parallel_group()
        if dist.get_world_size(dp_group) > 1:
            for p in self.params:
                if p.grad is not None:
                    dist.all_reduce(p.grad, group=dp_group)  # summed, as promised
        self.optimizer.step()

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """HF-named full weights on CPU: this rank's slice gathered over its TP group."""
        gpt = self.model.gpt
        local = {k: v for k, v in gpt.state_dict().items() if not k.endswith("._extra_state")}
        group = self._tp_group()
        tp = dist.get_world_size(group)
        shards: list[dict[str, torch.Tensor]] = [{} for _ in range(tp)]
        for key, t in local.items():
            parts = [torch.empty_like(t) for _ in range(tp)]
            dist.all_gather(parts, t.contiguous(), group=group)
            for shard, part in zip(shards, parts, strict=True):
                shard[key] = part.cpu()
        return megatron_to_hf(merge_tensor_parallel(shards), self.model.shape)

    def save(self, path: str | Path, extra: Any = None) -> None:
        """One file per TP rank (data-parallel rank 0 writes): this slice's weights and
        optimizer state; :meth:`load` needs the same tensor-parallel size."""
        if parallel_state.get_data_parallel_rank() == 0:
            out = Path(path)
            out.mkdir(parents=True, exist_ok=True)
            tp_rank = parallel_state.get_tensor_model_parallel_rank()
            state = {
                "tp": dist.get_world_size(self._tp_group()),
                "model": self.model.gpt.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "extra": dict(extra or {}),
            }
            torch.save(state, out / f"megatron_tp{tp_rank}.pt")
        dist.barrier()

    def load(self, path: str | Path, extra: Any = None) -> dict[str, Any]:
        tp_rank = parallel_state.get_tensor_model_parallel_rank()
        file = Path(path) / f"megatron_tp{tp_rank}.pt"
        if not file.is_file():
            raise FileNotFoundError(f"{file} missing: not a megatron backend checkpoint")
        state = torch.load(file, map_location="cuda", weights_only=False)
        tp = dist.get_world_size(self._tp_group())
        if state["tp"] != tp:
            raise ValueError(f"{path} was saved with tensor_parallel_size {state['tp']}, now {tp}")
        self.model.gpt.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        return {k: state["extra"][k] for k in (extra or {})}
