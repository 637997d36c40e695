"""The vectorized env interface every adapter implements, and what one step returns.

Semantics shared by all adapters:

* ``N`` envs are stepped together; observations are dicts of ``[N, ...]`` arrays.
* Auto-reset: an env whose episode ends during :meth:`VectorEnv.step` is reset in the same
  call; the returned observation is the *first observation of its next episode*, and
  :attr:`StepInfo.final_obs` holds the last observation of the episode that ended (needed to
  bootstrap the value of a truncated episode).
* Action chunks: a step takes ``K = chunk_size`` actions per env (shape ``[N, K, ...]``; with
  ``K == 1`` the ``K`` axis may be left out). Env ``i`` executes ``actions[i, 0]``,
  ``actions[i, 1]``, ... in order and *stops at the first action that ends its episode*; the
  rest of its chunk is discarded (never applied to the next episode). ``reward[i]`` is the
  undiscounted sum over the executed actions, :attr:`StepInfo.chunk_executed` says how many
  ran and :attr:`StepInfo.chunk_rewards` holds each one's reward (0 after the end), so a
  learner can discount inside the chunk if it wants to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ._spec import ActionSpec, ArraySpec, Obs

__all__ = ["StepInfo", "StepResult", "VectorEnv"]


@dataclass(frozen=True)
class StepInfo:
    """Per-env side information of one :meth:`VectorEnv.step`.

    Episode statistics are valid only where ``done`` is True (0 / False elsewhere).

    Attributes:
        done: ``[N]`` bool, ``terminated | truncated``: the episode ended during this step.
        final_obs: dict of ``[N, ...]`` arrays: the observation each env reached at the end of
            this step *before* any reset: the last observation of the ended episode where
            ``done``, and equal to the returned observation elsewhere. So
            ``V(final_obs)`` is always the bootstrap value of the step's next state.
        episode_return: ``[N]`` float64, undiscounted return of the episode that ended.
        episode_length: ``[N]`` int64, its length in primitive env steps.
        episode_success: ``[N]`` bool, the env's success flag (``info["success"]`` or
            ``info["is_success"]``) at the episode's last step.
        success_reported: ``[N]`` bool, whether the env reported such a flag at all (False
            for e.g. CartPole: its ``episode_success`` means nothing).
        chunk_executed: ``[N]`` int64 in ``[1, K]``, actions of the chunk that were executed.
        chunk_rewards: ``[N, K]`` float64, reward of each executed action, 0 after the end.
        raw: the adapter's own info dict (e.g. gymnasium's vector info), for env-specific keys.
    """

    done: np.ndarray
    final_obs: Obs
    episode_return: np.ndarray
    episode_length: np.ndarray
    episode_success: np.ndarray
    success_reported: np.ndarray
    chunk_executed: np.ndarray
    chunk_rewards: np.ndarray
    raw: Mapping[str, Any]

    def completed_episodes(self) -> dict[str, np.ndarray]:
        """Stats of the episodes that ended in this step, as ``[E]`` arrays.

        Keys: ``"env"`` (index of the env), ``"return"``, ``"length"``, ``"success"`` (float,
        NaN where the env reported no success flag, so ``np.nanmean`` averages the rest).
        """
        idx = np.flatnonzero(self.done)
        success = np.where(self.success_reported[idx], self.episode_success[idx], np.nan)
        return {
            "env": idx,
            "return": self.episode_return[idx],
            "length": self.episode_length[idx],
            "success": success.astype(np.float64),
        }


class StepResult(NamedTuple):
    """What :meth:`VectorEnv.step` returns; unpacks like gymnasium's 5-tuple.

    Attributes:
        obs: dict of ``[N, ...]`` arrays, the next observation (after auto-reset).
        reward: ``[N]`` float64, sum of the rewards of the executed actions of the chunk.
        terminated: ``[N]`` bool, the episode reached a terminal state (do not bootstrap).
        truncated: ``[N]`` bool, the episode was cut (time limit) without a terminal state
            (bootstrap from ``info.final_obs``).
        info: :class:`StepInfo`.
    """

    obs: Obs
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: StepInfo


@runtime_checkable
class VectorEnv(Protocol):
    """A batch of ``num_envs`` environments with auto-reset (see the module doc).

    Attributes:
        env_id: the task id, used in error messages.
        num_envs: ``N``.
        chunk_size: ``K``, actions executed per env per :meth:`step`.
        observation_spec: key -> :class:`ArraySpec` of one env's observation.
        action_spec: :class:`ActionSpec` of one primitive action of one env.
    """

    env_id: str
    num_envs: int
    chunk_size: int
    observation_spec: Mapping[str, ArraySpec]
    action_spec: ActionSpec

    def reset(self, *, seed: int | None = None) -> Obs:
        """Reset every env; env ``i`` is seeded with ``seed + i`` when ``seed`` is given.

        Returns the first observations, dict of ``[N, ...]`` arrays.
        """
        ...

    def step(self, actions: np.ndarray) -> StepResult:
        """Execute one action chunk per env: ``actions`` is ``[N, K, *action_shape]``
        (``[N, *action_shape]`` allowed when ``K == 1``). Invalid actions (wrong shape,
        NaN/inf, discrete values out of range) raise ``ValueError`` before any env moves.
        """
        ...

    def close(self) -> None:
        """Release the envs (and their processes); idempotent."""
        ...
