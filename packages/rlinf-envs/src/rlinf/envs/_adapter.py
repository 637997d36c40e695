"""What every simulator adapter shares: open/closed state, first-reset seeding, action checks.

:class:`~rlinf.envs.GymVectorEnv` and ``ManiSkillBatchedVectorEnv`` (ManiSkill's GPU path)
differ in how they simulate, not in how they guard their calls; this base keeps that part in
one place so the two cannot drift apart.
"""

from __future__ import annotations

import abc
from typing import Any, Self

import numpy as np

from ._actions import check_actions
from ._base import StepResult
from ._config import EnvConfig
from ._spec import ActionSpec

__all__ = ["AdapterBase"]


class AdapterBase(abc.ABC):
    """Base of the vector-env adapters (not a :class:`~rlinf.envs.VectorEnv` by itself).

    A subclass calls :meth:`_init_adapter` first in its ``__init__``, sets ``self._env`` (an
    object with ``close()``) and ``self.action_spec``, implements ``reset`` with
    :meth:`_reset_seed`, and :meth:`_step`, which gets actions that :meth:`step` checked.

    Attributes:
        config: the :class:`EnvConfig` the adapter was built from.
        env_id: ``config.env_id``.
        num_envs: ``N``.
        chunk_size: ``K``.
    """

    config: EnvConfig
    env_id: str
    num_envs: int
    chunk_size: int
    action_spec: ActionSpec
    _env: Any

    def _init_adapter(self, config: EnvConfig) -> None:
        self.config = config
        self.env_id = config.env_id
        self.num_envs = config.num_envs
        self.chunk_size = config.chunk_size
        self._rng = np.random.default_rng(config.seed)
        self._reset_once = False
        self._closed = False

    def _reset_seed(self, seed: int | None) -> int | None:
        """The seed a reset should use: ``config.seed`` for a first reset given none (so a
        run is reproducible without an explicit seed), else ``seed`` as given."""
        self._check_open()
        if seed is None and not self._reset_once:
            return self.config.seed
        return seed

    def _checked_actions(self, actions: Any) -> np.ndarray:
        """``actions`` validated (and clipped if configured) as ``[N, K, *action_shape]``.

        Raises:
            RuntimeError: the env is closed or was never reset.
            ValueError: wrong shape, NaN/inf, discrete values out of range (before any env
                moves).
        """
        self._check_open()
        if not self._reset_once:
            raise RuntimeError(f"env {self.env_id!r}: call reset() before step()")
        return check_actions(
            actions,
            self.action_spec,
            num_envs=self.num_envs,
            chunk_size=self.chunk_size,
            env_id=self.env_id,
            clip=self.config.clip_actions,
        )

    def step(self, actions: Any) -> StepResult:
        """One action chunk per env; see :class:`~rlinf.envs.VectorEnv` for the semantics.

        Args:
            actions: ``[N, K, *action_shape]`` (``[N, *action_shape]`` when ``K == 1``).
        """
        return self._step(self._checked_actions(actions))

    @abc.abstractmethod
    def _step(self, acts: np.ndarray) -> StepResult:
        """Simulate checked actions ``acts`` (``[N, K, *action_shape]``)."""

    def sample_actions(self) -> np.ndarray:
        """Uniformly random valid actions ``[N, K, *action_shape]`` (seeded by ``config.seed``);
        continuous spaces with infinite bounds sample a standard normal there."""
        shape = (self.num_envs, self.chunk_size, *self.action_spec.shape)
        spec = self.action_spec
        if spec.discrete:
            return self._rng.integers(0, spec.n, size=shape)
        low, high = spec.low, spec.high
        bounded = np.isfinite(low) & np.isfinite(high)
        u = self._rng.uniform(np.where(bounded, low, 0.0), np.where(bounded, high, 1.0), shape)
        if bounded.all():
            return u.astype(np.float32)
        return np.where(bounded, u, self._rng.standard_normal(shape)).astype(np.float32)

    def close(self) -> None:
        """Release the envs (and their worker processes); idempotent."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"env {self.env_id!r} is closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{type(self).__name__}({c.env_id!r}, num_envs={c.num_envs}, "
            f"backend={c.backend!r}, chunk_size={c.chunk_size})"
        )
