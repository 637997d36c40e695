"""Engine-independent request / response conversion for the vLLM and SGLang adapters:
GenerationConfig -> each engine's sampling parameters, engine samples -> RolloutBatch.

Pure Python + torch: no engine is imported, so all of it is tested on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .._batch import RolloutBatch
from .._generation import GenerationConfig

__all__ = [
    "EngineSample",
    "pack_rollout",
    "sglang_sampling_params",
    "tensor_buckets",
    "vllm_sampling_kwargs",
]


@dataclass(frozen=True)
class EngineSample:
    """One response as an engine returned it.

    Attributes:
        token_ids: the generated ids (stop string / EOS included when the response ended
            on one), length ``R_i <= max_new_tokens``.
        logprobs: one log-probability per generated id (the engine's, temperature-scaled).
        finished: ended by EOS or a stop string (False: cut at ``max_new_tokens``).
    """

    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finished: bool

    def __post_init__(self) -> None:
        if len(self.token_ids) != len(self.logprobs):
            raise ValueError(
                f"engine returned {len(self.token_ids)} tokens but {len(self.logprobs)} "
                "log-probabilities (was logprobs requested?)"
            )
        bad = [x for x in self.logprobs if not (math.isfinite(x) and x <= 1e-4)]
        if bad:
            raise ValueError(f"engine returned invalid log-probabilities {bad[:3]}")


def _check_sampling(config: GenerationConfig) -> None:
    if not isinstance(config, GenerationConfig):
        raise TypeError(f"config must be a GenerationConfig, got {type(config).__name__}")


def vllm_sampling_kwargs(config: GenerationConfig, seed: int | None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request of ``config`` (one
    request per prompt: vLLM's own ``n`` yields the consecutive samples). ``logprobs=0``
    returns the sampled token's log-probability only; greedy is temperature 0."""
    _check_sampling(config)
    greedy = not config.do_sample
    return {
        "n": config.n,
        "max_tokens": config.max_new_tokens,
        "temperature": 0.0 if greedy else config.temperature,
        "top_p": 1.0 if greedy else config.top_p,
        # vLLM: 0 or -1 disables top-k.
        "top_k": 0 if greedy else config.top_k,
        "seed": None if greedy else seed,
        "stop": list(config.stop),
        "include_stop_str_in_output": True,
        "ignore_eos": not config.stop_on_eos,
        "logprobs": 0,
        "detokenize": bool(config.stop),
    }


def sglang_sampling_params(config: GenerationConfig, seed: int | None) -> dict[str, Any]:
    """SGLang's ``sampling_params`` dict for one request of ``config`` (SGLang takes one
    request per sample: the prompt is repeated ``n`` times by the caller)."""
    _check_sampling(config)
    greedy = not config.do_sample
    params: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "temperature": 0.0 if greedy else config.temperature,
        "top_p": 1.0 if greedy else config.top_p,
        # SGLang: -1 disables top-k.
        "top_k": -1 if greedy or config.top_k == 0 else config.top_k,
        "stop": list(config.stop),
        "ignore_eos": not config.stop_on_eos,
        "no_stop_trim": True,
    }
    if seed is not None and not greedy:
        params["sampling_seed"] = seed
    return params


def pack_rollout(
    prompts: Sequence[Sequence[int]],
    samples: Sequence[EngineSample],
    n: int,
    *,
    pad_token_id: int,
    version: int,
    max_new_tokens: int,
) -> RolloutBatch:
    """The :class:`RolloutBatch` of ``len(prompts) * n`` engine samples (the ``n`` of a
    prompt consecutive): prompts left-padded to ``P``, responses right-padded to ``R`` =
    the longest, masks 1 on real tokens, ``rollout_logprobs`` 0 on padding."""
    if len(samples) != len(prompts) * n:
        raise ValueError(
            f"engine returned {len(samples)} samples for {len(prompts)} prompts x n={n}"
        )
    too_long = [i for i, s in enumerate(samples) if len(s.token_ids) > max_new_tokens]
    if too_long:
        raise ValueError(f"samples {too_long[:5]} exceed max_new_tokens={max_new_tokens}")
    b = len(samples)
    p = max(len(x) for x in prompts)
    r = max(1, max(len(s.token_ids) for s in samples))
    ids = torch.full((b, p + r), pad_token_id, dtype=torch.long)
    attn = torch.zeros((b, p + r), dtype=torch.long)
    logps = torch.zeros((b, r), dtype=torch.float32)
    for i, s in enumerate(samples):
        prompt = prompts[i // n]
        ids[i, p - len(prompt) : p] = torch.tensor(prompt, dtype=torch.long)
        attn[i, p - len(prompt) : p] = 1
        k = len(s.token_ids)
        if k:
            ids[i, p : p + k] = torch.tensor(s.token_ids, dtype=torch.long)
            attn[i, p : p + k] = 1
            logps[i, :k] = torch.tensor(s.logprobs, dtype=torch.float32)
    mask = attn[:, p:].to(torch.float32)
    return RolloutBatch(
        input_ids=ids,
        attention_mask=attn,
        prompt_length=p,
        response_mask=mask,
        rollout_logprobs=logps,
        prompt_index=torch.arange(len(prompts)).repeat_interleave(n),
        truncated=torch.tensor([not s.finished for s in samples], dtype=torch.bool),
        version=version,
        pad_token_id=pad_token_id,
    )


def tensor_buckets(
    state: Mapping[str, torch.Tensor], bucket_bytes: int
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """``state``'s ``(name, tensor)`` pairs in order, grouped into lists of at most
    ``bucket_bytes`` (a tensor larger than that travels alone), so that an engine update
    never stages more than one bucket at a time."""
    if bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
    bucket: list[tuple[str, torch.Tensor]] = []
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if bucket and size + nbytes > bucket_bytes:
            yield bucket
            bucket, size = [], 0
        bucket.append((name, t))
        size += nbytes
    if bucket:
        yield bucket
