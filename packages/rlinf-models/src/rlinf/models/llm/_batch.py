"""RolloutBatch: prompts and generated responses in one padded layout, with their masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

__all__ = ["RolloutBatch"]


# eq=False: a generated __eq__ would compare tensors elementwise and fail on truthiness.
@dataclass(frozen=True, eq=False)
class RolloutBatch:
    """``B`` sequences of a left-padded prompt (length ``P``) followed by a right-padded
    response (length ``R``); every tensor on CPU.

    Layout of one row of ``input_ids`` (``.`` = padding)::

        . . p p p | r r r EOS . .
        <-- P --> | <------ R ----->

    Attributes:
        input_ids: ``[B, P+R]`` int64 token ids.
        attention_mask: ``[B, P+R]`` int64; 1 on real prompt and response tokens (a
            response's EOS is real), 0 on padding.
        prompt_length: ``P``, the padded prompt length (>= 1).
        response_mask: ``[B, R]`` float32; 1 on response tokens that the loss trains on
            (for plain generation: every generated token including EOS). It may be 0 on real
            tokens (e.g. tool output in multi-turn rollouts) but never 1 on padding.
        rollout_logprobs: ``[B, R]`` float32; log-probability of each response token under
            the generating weights (0 where ``response_mask`` is 0).
        prompt_index: ``[B]`` int64; which prompt of the ``generate`` call the row answers.
            The ``n`` samples of one prompt are consecutive rows (a GRPO group).
        truncated: ``[B]`` bool; the response hit ``max_new_tokens`` without an EOS.
        version: the weights version that generated the batch (-1: the initial weights
            loaded from disk, before any weight sync).
        pad_token_id: the id used for padding (only fills new padding in :meth:`concat`).
        versions: ``[B, R]`` int64 or None; the weight version that sampled each response
            token (partial rollouts, :mod:`rlinf.models.llm._partial`: a row may switch
            versions between decoding steps). None: every token is ``version``'s. With
            per-token versions, ``version`` is the oldest of them; values on padding are
            meaningless (read them through :meth:`oldest_versions`).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_length: int
    response_mask: torch.Tensor
    rollout_logprobs: torch.Tensor
    prompt_index: torch.Tensor
    truncated: torch.Tensor
    version: int
    pad_token_id: int = 0
    versions: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # Normalize dtypes once, so consumers never branch on them.
        for name, dtype in (
            ("input_ids", torch.long),
            ("attention_mask", torch.long),
            ("response_mask", torch.float32),
            ("rollout_logprobs", torch.float32),
            ("prompt_index", torch.long),
            ("truncated", torch.bool),
        ):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"RolloutBatch.{name} must be a torch.Tensor, got {type(value)}")
            if value.device.type != "cpu":
                raise ValueError(f"RolloutBatch.{name} must be on CPU, got {value.device}")
            object.__setattr__(self, name, value.to(dtype))
        if self.versions is not None:
            if not isinstance(self.versions, torch.Tensor) or self.versions.device.type != "cpu":
                raise TypeError("RolloutBatch.versions must be a CPU torch.Tensor or None")
            object.__setattr__(self, "versions", self.versions.to(torch.long))
        object.__setattr__(self, "prompt_length", int(self.prompt_length))
        object.__setattr__(self, "version", int(self.version))
        self._validate()

    def _validate(self) -> None:
        if self.input_ids.dim() != 2:
            raise ValueError(
                f"RolloutBatch.input_ids must be [B, P+R], got {tuple(self.input_ids.shape)}"
            )
        b, total = self.input_ids.shape
        p = self.prompt_length
        if not 1 <= p <= total:
            raise ValueError(f"RolloutBatch.prompt_length {p} must be in [1, {total}] (P+R)")
        r = total - p
        expected = {
            "attention_mask": (b, total),
            "response_mask": (b, r),
            "rollout_logprobs": (b, r),
            "prompt_index": (b,),
            "truncated": (b,),
        }
        if self.versions is not None:
            expected["versions"] = (b, r)
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(
                    f"RolloutBatch.{name} has shape {got}, expected {shape} (B={b}, P={p}, R={r})"
                )
        if ((self.attention_mask != 0) & (self.attention_mask != 1)).any():
            raise ValueError("RolloutBatch.attention_mask must hold only 0 and 1")
        if ((self.response_mask != 0) & (self.attention_mask[:, p:] == 0)).any():
            raise ValueError("RolloutBatch.response_mask is nonzero on padding (attention 0)")
        if b and (self.attention_mask[:, :p].sum(dim=1) == 0).any():
            raise ValueError("RolloutBatch has a row with an empty prompt")

    # ------------------------------------------------------------------ views
    @property
    def batch_size(self) -> int:
        """``B``."""
        return int(self.input_ids.shape[0])

    @property
    def response_length(self) -> int:
        """``R``, the padded response length."""
        return int(self.input_ids.shape[1]) - self.prompt_length

    @property
    def response_ids(self) -> torch.Tensor:
        """``[B, R]`` the response part of ``input_ids`` (padding included)."""
        return self.input_ids[:, self.prompt_length :]

    @property
    def response_lengths(self) -> torch.Tensor:
        """``[B]`` int64 number of real response tokens (attention 1), EOS included."""
        return self.attention_mask[:, self.prompt_length :].sum(dim=1)

    def oldest_versions(self) -> torch.Tensor:
        """``[B]`` int64: the oldest weight version among each row's real response
        tokens (``version`` without per-token versions, or for a row without tokens)."""
        if self.versions is None or self.response_length == 0:
            return torch.full((self.batch_size,), self.version, dtype=torch.long)
        real = self.attention_mask[:, self.prompt_length :].bool()
        big = torch.iinfo(torch.long).max
        oldest = self.versions.masked_fill(~real, big).amin(dim=1)
        return torch.where(oldest == big, self.version, oldest)

    def with_token_versions(self) -> RolloutBatch:
        """This batch with per-token ``versions`` (``version`` on every token if it has
        none), so that it can join batches of other versions (:meth:`concat`)."""
        if self.versions is not None:
            return self
        full = torch.full(self.response_mask.shape, self.version, dtype=torch.long)
        return replace(self, versions=full)

    def mixed_versions(self) -> torch.Tensor:
        """``[B]`` bool: the row's real response tokens come from more than one version."""
        if self.versions is None or self.response_length == 0:
            return torch.zeros(self.batch_size, dtype=torch.bool)
        real = self.attention_mask[:, self.prompt_length :].bool()
        small = torch.iinfo(torch.long).min
        newest = self.versions.masked_fill(~real, small).amax(dim=1)
        return real.any(dim=1) & (newest != self.oldest_versions())

    def decode_responses(self, tokenizer: Any) -> list[str]:
        """Decode each response's real tokens up to (not including) the first EOS, with
        special tokens skipped."""
        eos = tokenizer.eos_token_id
        out = []
        for ids, mask in zip(
            self.response_ids, self.attention_mask[:, self.prompt_length :], strict=True
        ):
            tokens = ids[mask.bool()].tolist()
            if eos is not None and eos in tokens:
                tokens = tokens[: tokens.index(eos)]
            out.append(tokenizer.decode(tokens, skip_special_tokens=True))
        return out

    # ------------------------------------------------------------------ reshaping
    def select(self, indices: torch.Tensor | Sequence[int] | slice) -> RolloutBatch:
        """The rows ``indices`` (int index list/tensor, bool mask ``[B]`` or slice), with
        the same ``P``, ``R``, ``prompt_index`` values and version."""
        if isinstance(indices, slice):
            idx: Any = indices
        else:
            idx = torch.as_tensor(indices)
            if idx.dtype == torch.bool:
                if idx.shape != (self.batch_size,):
                    raise ValueError(
                        f"bool mask must have shape ({self.batch_size},), got {tuple(idx.shape)}"
                    )
            elif idx.dtype != torch.long:
                idx = idx.long()
        return RolloutBatch(
            input_ids=self.input_ids[idx],
            attention_mask=self.attention_mask[idx],
            prompt_length=self.prompt_length,
            response_mask=self.response_mask[idx],
            rollout_logprobs=self.rollout_logprobs[idx],
            prompt_index=self.prompt_index[idx],
            truncated=self.truncated[idx],
            version=self.version,
            pad_token_id=self.pad_token_id,
            versions=None if self.versions is None else self.versions[idx],
        )

    def repad(self, prompt_length: int, response_length: int) -> RolloutBatch:
        """The same rows with the prompt left-padded to ``prompt_length`` and the response
        right-padded to ``response_length`` (each at least the current one)."""
        p, r = self.prompt_length, self.response_length
        if prompt_length < p or response_length < r:
            raise ValueError(
                f"cannot re-pad (P={p}, R={r}) to the smaller (P={prompt_length}, "
                f"R={response_length})"
            )
        left, right = prompt_length - p, response_length - r

        def pad(x: torch.Tensor, value: float, lo: int, hi: int) -> torch.Tensor:
            return torch.nn.functional.pad(x, (lo, hi), value=value)

        return RolloutBatch(
            input_ids=pad(self.input_ids, self.pad_token_id, left, right),
            attention_mask=pad(self.attention_mask, 0, left, right),
            prompt_length=prompt_length,
            response_mask=pad(self.response_mask, 0.0, 0, right),
            rollout_logprobs=pad(self.rollout_logprobs, 0.0, 0, right),
            prompt_index=self.prompt_index,
            truncated=self.truncated,
            version=self.version,
            pad_token_id=self.pad_token_id,
            versions=None if self.versions is None else pad(self.versions, self.version, 0, right),
        )

    @classmethod
    def concat(
        cls, batches: Sequence[RolloutBatch], *, offset_prompt_index: bool = True
    ) -> RolloutBatch:
        """Stack batches row-wise, re-padding them to the largest ``P`` and ``R``.

        Args:
            batches: at least one batch; all must have the same ``version`` (a mix would
                lose which rows are off-policy, so it raises) unless every batch records
                per-token ``versions`` (partial rollouts: the result's ``version`` is then
                the oldest).
            offset_prompt_index: shift each batch's ``prompt_index`` past the previous
                batches' largest index, so that groups from separate ``generate`` calls stay
                distinct. Pass False when the batches share one index space (e.g. parts
                :meth:`select`-ed from one batch).
        """
        batches = list(batches)
        if not batches:
            raise ValueError("RolloutBatch.concat needs at least one batch")
        for b in batches:
            if not isinstance(b, RolloutBatch):
                raise TypeError(f"RolloutBatch.concat got a {type(b).__name__}")
        versions = sorted({b.version for b in batches})
        per_token = [b.versions is not None for b in batches]
        if len(versions) > 1 and not all(per_token):
            raise ValueError(f"RolloutBatch.concat got batches of different versions {versions}")
        p = max(b.prompt_length for b in batches)
        r = max(b.response_length for b in batches)
        padded = [b.repad(p, r) for b in batches]
        indices, offset = [], 0
        for b in padded:
            indices.append(b.prompt_index + offset)
            if offset_prompt_index and b.batch_size:
                offset = int(indices[-1].max()) + 1
        return cls(
            input_ids=torch.cat([b.input_ids for b in padded]),
            attention_mask=torch.cat([b.attention_mask for b in padded]),
            prompt_length=p,
            response_mask=torch.cat([b.response_mask for b in padded]),
            rollout_logprobs=torch.cat([b.rollout_logprobs for b in padded]),
            prompt_index=torch.cat(indices),
            truncated=torch.cat([b.truncated for b in padded]),
            version=versions[0],
            pad_token_id=batches[0].pad_token_id,
            versions=_concat_versions(padded) if any(per_token) else None,
        )


def _concat_versions(batches: Sequence[RolloutBatch]) -> torch.Tensor:
    """``[sum B, R]`` per-token versions of equally padded batches (a batch without them:
    its ``version`` everywhere)."""
    return torch.cat(
        [
            b.versions
            if b.versions is not None
            else torch.full(b.response_mask.shape, b.version, dtype=torch.long)
            for b in batches
        ]
    )
