"""The per-trajectory state of :func:`~rlinf.models.llm.multi_turn_generate` and the
:class:`~rlinf.models.llm.RolloutBatch` built from it.

Every response token records the weight version behind it (partial rollouts,
:mod:`rlinf.models.llm._partial`): a model token the version that sampled it, an
observation token the version of the model token just before it, i.e. of the turn whose
tool call produced it. Observation tokens are masked out of the loss, so their version
only matters to the bookkeeping, and this choice never makes a row look older or more
mixed than its model tokens are: a row's oldest and newest versions over all its tokens
are those over its model tokens (every response starts with a model turn).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any

import torch

from ._agent_types import ToolSession
from ._batch import RolloutBatch

__all__ = ["AgentRow", "build_agent_batch"]


@dataclass
class AgentRow:
    """Mutable state of one trajectory while the multi-turn loop runs.

    Attributes:
        index: row in the batch.
        prompt_index: its prompt's index.
        prompt: the prompt's token ids.
        task: the task its session was made for (a requeued row gets a fresh session).
        session: the tool session of the current attempt.
        tokens / mask / logprobs / versions: per response token so far: id, 1.0 on model
            tokens (0.0 on observations), rollout log-prob (0.0 on observations), weight
            version (see the module doc).
        turns / tool_calls: model turns and observations so far.
        done / truncated: the row has ended (cut by a limit).
        pending: the tool call in flight, if any.
        submitted_at: ``time.perf_counter()`` when ``pending`` was submitted.
        requeued: the row was aborted by a new weight version and started again.
    """

    index: int
    prompt_index: int
    prompt: list[int]
    task: Any
    session: ToolSession
    tokens: list[int] = field(default_factory=list)
    mask: list[float] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    turns: int = 0
    tool_calls: int = 0
    done: bool = False
    truncated: bool = False
    pending: concurrent.futures.Future[str] | None = None
    submitted_at: float = 0.0
    requeued: bool = False

    def finish(self, truncated: bool) -> None:
        """End the row (``truncated``: by a limit, not by EOS or its session)."""
        self.done, self.truncated = True, truncated

    def add_model_turn(self, ids: list[int], logprobs: list[float], versions: list[int]) -> None:
        """Append one model turn's tokens with their log-probs and versions."""
        self.tokens += ids
        self.mask += [1.0] * len(ids)
        self.logprobs += logprobs
        self.versions += versions
        self.turns += 1

    def add_observation(self, ids: list[int]) -> None:
        """Append an observation: masked out, log-prob 0, the calling turn's version."""
        self.tokens += ids
        self.mask += [0.0] * len(ids)
        self.logprobs += [0.0] * len(ids)
        self.versions += [self.versions[-1]] * len(ids)
        self.tool_calls += 1

    def restart(self, session: ToolSession) -> None:
        """Drop everything generated (cancelling a pending tool call) and start over with
        ``session``; marks the row requeued."""
        if self.pending is not None:
            self.pending.cancel()
        fresh = AgentRow(self.index, self.prompt_index, self.prompt, self.task, session)
        self.__dict__.update(fresh.__dict__)
        self.requeued = True


def build_agent_batch(
    rows: list[AgentRow], version: int, pad_token_id: int, per_token_versions: bool
) -> RolloutBatch:
    """Left-pad the prompts to the longest, right-pad the responses to the longest.

    Args:
        rows: the finished trajectories.
        version: the batch's version without per-token versions.
        pad_token_id: fills the padding.
        per_token_versions: record ``versions [B, R]`` (partial rollouts); the batch's
            ``version`` is then its oldest token's.
    """
    b = len(rows)
    p = max(len(r.prompt) for r in rows)
    width = max(len(r.tokens) for r in rows)
    ids = torch.full((b, p + width), pad_token_id, dtype=torch.long)
    attn = torch.zeros((b, p + width), dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.float32)
    logps = torch.zeros((b, width), dtype=torch.float32)
    versions = None
    if per_token_versions:
        version = min((min(r.versions) for r in rows if r.versions), default=version)
        versions = torch.full((b, width), version, dtype=torch.long)
    for i, row in enumerate(rows):
        q, t = len(row.prompt), len(row.tokens)
        ids[i, p - q : p] = torch.tensor(row.prompt)
        ids[i, p : p + t] = torch.tensor(row.tokens, dtype=torch.long)
        attn[i, p - q : p + t] = 1
        mask[i, :t] = torch.tensor(row.mask)
        logps[i, :t] = torch.tensor(row.logprobs)
        if versions is not None:
            versions[i, :t] = torch.tensor(row.versions, dtype=torch.long)
    return RolloutBatch(
        input_ids=ids,
        attention_mask=attn,
        prompt_length=p,
        response_mask=mask,
        rollout_logprobs=logps,
        prompt_index=torch.tensor([r.prompt_index for r in rows], dtype=torch.long),
        truncated=torch.tensor([r.truncated for r in rows], dtype=torch.bool),
        version=version,
        pad_token_id=pad_token_id,
        versions=versions,
    )
