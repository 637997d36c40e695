"""What a generation engine must do for rlinf: the config and the backend protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .._weights import WeightSnapshot
from ._batch import RolloutBatch

__all__ = ["GENERATION_BACKEND_NAMES", "GenerationBackend", "GenerationConfig", "check_prompts"]

GENERATION_BACKEND_NAMES = ("hf", "vllm", "sglang")
"""Valid :attr:`GenerationConfig.backend` values."""


@dataclass(frozen=True)
class GenerationConfig:
    """How to sample responses.

    Attributes:
        max_new_tokens: most tokens generated per response (EOS included), >= 1.
        temperature: logits are divided by it before sampling and before computing the
            reported ``rollout_logprobs``; > 0 (also when ``do_sample`` is False, where it
            only scales the reported log-probabilities).
        top_p: nucleus sampling: sample among the smallest set of tokens whose probability
            sums to at least ``top_p``; in (0, 1], 1 = off.
        top_k: sample among the ``top_k`` most likely tokens; 0 = off.
        n: samples per prompt; they are consecutive rows of the batch.
        seed: seeds a private random generator, so equal seeds give equal batches on the
            same weights and device; None uses torch's global RNG.
        stop_on_eos: a sequence ends at its first EOS; False generates exactly
            ``max_new_tokens`` tokens per sequence (EOS tokens are then ordinary tokens).
        do_sample: False = greedy (argmax of the logits; top_p / top_k / seed unused).
        stop: stop strings: a response also ends (finished, not truncated) at the token
            that completes one of them in its decoded text; the stop text stays part of the
            response (trained on). A list (e.g. from YAML) is converted to a tuple.
        backend: the engine that generates: ``"hf"`` (the rollout worker's own HF model),
            ``"vllm"`` or ``"sglang"`` (in-process engines from the extras of the same
            names; see :mod:`rlinf.models.llm.engines`).
    """

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    n: int = 1
    seed: int | None = None
    stop_on_eos: bool = True
    do_sample: bool = True
    stop: tuple[str, ...] = ()
    backend: str = "hf"

    def __post_init__(self) -> None:
        if self.backend not in GENERATION_BACKEND_NAMES:
            raise ValueError(
                f"GenerationConfig.backend must be one of {GENERATION_BACKEND_NAMES}, "
                f"got {self.backend!r}"
            )
        if isinstance(self.stop, str) or not isinstance(self.stop, Sequence):
            raise TypeError(
                f"GenerationConfig.stop must be a list or tuple of strings, got {self.stop!r}"
            )
        stop = tuple(self.stop)
        bad = [s for s in stop if not isinstance(s, str) or not s]
        if bad:
            raise ValueError(f"GenerationConfig.stop must hold non-empty strings, got {bad!r}")
        # Frozen: set the normalized tuple through object.__setattr__ (keeps hashing valid).
        object.__setattr__(self, "stop", stop)
        if self.max_new_tokens < 1:
            raise ValueError(
                f"GenerationConfig.max_new_tokens must be >= 1, got {self.max_new_tokens}"
            )
        if not self.temperature > 0:
            raise ValueError(
                f"GenerationConfig.temperature must be > 0, got {self.temperature} "
                "(use do_sample=False for greedy decoding)"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenerationConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"GenerationConfig.top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.n < 1:
            raise ValueError(f"GenerationConfig.n must be >= 1, got {self.n}")


@runtime_checkable
class GenerationBackend(Protocol):
    """A generation engine (HF here; vLLM / SGLang later) as the rollout worker sees it.

    An implementation must:

    * ``generate(prompts, config)``: sample ``config.n`` responses for each prompt (token-id
      lists of any lengths, none empty) and return a :class:`RolloutBatch` of
      ``B = len(prompts) * n`` rows in prompt order, the ``n`` samples of a prompt
      consecutive (``prompt_index`` says which prompt), prompts left-padded and responses
      right-padded, masks as documented there, a response ending at its first EOS (when
      ``stop_on_eos``) or at the token completing one of ``config.stop`` in its decoded
      text, ``truncated`` set for responses cut at ``max_new_tokens`` instead, ``version``
      = the weights version used, all tensors on CPU.
      ``rollout_logprobs`` must be ``log_softmax(logits / temperature)`` of each sampled
      token, before any top-p / top-k filtering, so that they equal
      :func:`~rlinf.models.llm.response_logprobs` on the same weights (up to numerics): the
      PPO ratio then starts at 1. (vLLM: ``logprobs_mode="processed_logprobs"`` with
      temperature only; SGLang: ``return_logprob=True`` with temperature-scaled logits.)
    * ``load_weights(snapshot)``: install a :class:`~rlinf.models.WeightSnapshot`'s state;
      the first load accepts any version, every later one only the next version (a stale or
      skipped one raises :class:`~rlinf.models.StaleWeightsError`), as
      :class:`~rlinf.models.VersionedWeights` does.
    * ``version``: the version held, -1 before any load unless constructed otherwise.
    """

    def generate(self, prompts: Sequence[Sequence[int]], config: GenerationConfig) -> RolloutBatch:
        """Sample responses for ``prompts``; see the class docstring."""
        ...

    def load_weights(self, snapshot: WeightSnapshot) -> None:
        """Install ``snapshot`` after checking its version."""
        ...

    @property
    def version(self) -> int:
        """The weights version held."""
        ...


def check_prompts(prompts: Sequence[Sequence[int]], vocab_size: int) -> list[list[int]]:
    """``prompts`` as lists of ints, after checking none is empty and every id is in
    ``[0, vocab_size)``; errors name the prompt."""
    if isinstance(prompts, str | bytes) or not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be a sequence of token-id lists, got {type(prompts)}")
    if len(prompts) == 0:
        raise ValueError("prompts is empty")
    out = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str | bytes):
            raise TypeError(f"prompt {i} is a string; pass token ids (tokenizer.encode)")
        ids = [int(t) for t in prompt]
        if not ids:
            raise ValueError(f"prompt {i} is empty")
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            raise ValueError(f"prompt {i} has token ids {bad[:5]} outside [0, {vocab_size})")
        out.append(ids)
    return out
