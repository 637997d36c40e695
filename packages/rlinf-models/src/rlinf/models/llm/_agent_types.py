"""Types shared by multi-turn agent rollouts: the tool-side protocols and the config/result.

The protocols are structural, so an environment package can implement them without importing
rlinf.models (the two layers never import each other; an app wires them together).
"""

from __future__ import annotations

import concurrent.futures
import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from ._batch import RolloutBatch

__all__ = ["AgentEnv", "MultiTurnConfig", "MultiTurnResult", "ToolSession"]


@dataclass(frozen=True)
class MultiTurnConfig:
    """Limits of one multi-turn trajectory.

    Attributes:
        max_turns: model turns (generate calls) per trajectory, >= 1.
        max_response_tokens: budget of model + observation tokens after the prompt, >= 1.
        max_observation_tokens: longer observations are cut to this many tokens, >= 0.
        tool_timeout_s: longest time, in seconds since it was submitted, that the loop waits
            for one tool observation once no row is ready; past it the rollout fails with a
            TimeoutError (so a lost tool call cannot hang training). > 0 and finite.
        batch_window_s: when some rows are ready and others wait on tools, wait up to
            this long (once per turn) for those tools to finish before generating, so that
            the next turn runs as one larger batch instead of several small ones (each
            generate call costs a prefill and a per-token loop). Bounded, so a slow tool
            holds back the ready rows by at most this much per turn. >= 0; 0 generates as
            soon as any row is ready.
    """

    max_turns: int = 4
    max_response_tokens: int = 256
    max_observation_tokens: int = 64
    tool_timeout_s: float = 120.0
    batch_window_s: float = 0.05

    def __post_init__(self) -> None:
        for name, low in (
            ("max_turns", 1),
            ("max_response_tokens", 1),
            ("max_observation_tokens", 0),
        ):
            if getattr(self, name) < low:
                raise ValueError(
                    f"MultiTurnConfig.{name} must be >= {low}, got {getattr(self, name)}"
                )
        if not (self.batch_window_s >= 0 and math.isfinite(self.batch_window_s)):
            raise ValueError(
                f"MultiTurnConfig.batch_window_s must be >= 0 and finite, got {self.batch_window_s}"
            )
        # Written so that NaN fails too.
        if not (self.tool_timeout_s > 0 and math.isfinite(self.tool_timeout_s)):
            raise ValueError(
                f"MultiTurnConfig.tool_timeout_s must be > 0 and finite, got {self.tool_timeout_s}"
            )


@runtime_checkable
class ToolSession(Protocol):
    """The tool side of one trajectory."""

    def submit(self, turn_text: str) -> concurrent.futures.Future[str] | None:
        """The model's newest turn text -> a future of the observation text to append
        (already wrapped, e.g. ``"<result>...</result>"``), or None: the trajectory is done.
        Must return quickly; slow work belongs in the future."""
        ...


@runtime_checkable
class AgentEnv(Protocol):
    """Creates one :class:`ToolSession` per trajectory and says where model turns end."""

    @property
    def stop(self) -> tuple[str, ...]:
        """Strings that end a model turn (besides EOS)."""
        ...

    def session(self, task: Any) -> ToolSession:
        """A fresh session for a trajectory on ``task``."""
        ...


@dataclass(frozen=True, eq=False)
class MultiTurnResult:
    """What :func:`~rlinf.models.llm.multi_turn_generate` returns.

    Attributes:
        batch: ``B`` rows; response = model turns and observations in order, right-padded;
            ``response_mask`` 1 on model tokens (EOS included), 0 on observation tokens
            (whose ``rollout_logprobs`` are 0); ``truncated`` = the row hit the token budget,
            the turn limit or a turn's ``max_new_tokens`` before the session said done.
        transcripts: decoded response text (model turns + observations) per row, special
            tokens skipped.
        turns: ``[B]`` int64 model turns per row.
        tool_calls: ``[B]`` int64 observations appended per row.
        tool_wait_s: seconds the loop sat idle waiting on tools (no row ready).
        requeued: ``[B]`` bool: the row was aborted by new weights and run again
            (partial rollouts, ``abort``); None where not reported.
    """

    batch: RolloutBatch
    transcripts: list[str]
    turns: torch.Tensor
    tool_calls: torch.Tensor
    tool_wait_s: float
    requeued: torch.Tensor | None = None
