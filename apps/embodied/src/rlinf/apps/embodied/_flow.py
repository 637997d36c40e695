"""The embodied app's wiring of :class:`rlinf.models.embodied.EmbodiedFlow`: its env
worker class (``rlinf.envs.EnvWorker``) and the sections of an :class:`EmbodiedConfig`."""

from __future__ import annotations

from rlinf.envs import EnvWorker
from rlinf.models.embodied import EmbodiedFlow, EmbodiedFlowConfig

from ._config import COMPONENTS, EmbodiedConfig

__all__ = ["build_flow"]


def build_flow(cfg: EmbodiedConfig) -> EmbodiedFlow:
    """Start the cluster and the env / actor / rollout groups of a validated config."""
    config = EmbodiedFlowConfig("embodied", cfg.runner, cfg.cluster, cfg.placement, COMPONENTS)
    return EmbodiedFlow(config, env_worker=EnvWorker, env=cfg.env, policy=cfg.policy, algo=cfg.algo)
