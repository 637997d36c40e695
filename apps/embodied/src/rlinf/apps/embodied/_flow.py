"""The embodied app's wiring of :class:`rlinf.models.embodied.EmbodiedFlow`: its env
worker class (``rlinf.envs.EnvWorker``) and the sections of an :class:`EmbodiedConfig`."""

from __future__ import annotations

import dataclasses
import pathlib

from rlinf.core import ConfigError
from rlinf.envs import EnvWorker
from rlinf.models.embodied import EmbodiedFlow, EmbodiedFlowConfig, OffPolicyConfig, OffPolicyFlow

from ._config import COMPONENTS, EmbodiedConfig

__all__ = ["build_flow", "build_offpolicy_flow"]


def build_flow(cfg: EmbodiedConfig) -> EmbodiedFlow:
    """Start the cluster and the env / actor / rollout groups of a validated on-policy
    config."""
    if isinstance(cfg.placement, str):
        raise ConfigError(f"placement: {cfg.placement!r} must be planned before a flow starts")
    config = EmbodiedFlowConfig(
        "embodied", cfg.runner, cfg.cluster, cfg.placement, COMPONENTS, cfg.scheduler
    )
    return EmbodiedFlow(config, env_worker=EnvWorker, env=cfg.env, policy=cfg.policy, algo=cfg.algo)


def build_offpolicy_flow(cfg: EmbodiedConfig) -> OffPolicyFlow:
    """Start the cluster, the collecting env workers and the learner of an off-policy
    config (``algo.name: sac | crossq | rlpd | iql``). A relative ``algo.offline_data`` is
    resolved against the driver's working directory (the learner's may differ)."""
    if not isinstance(cfg.algo, OffPolicyConfig):
        raise TypeError(f"algo is {type(cfg.algo).__name__}, not OffPolicyConfig")
    if isinstance(cfg.placement, str):
        raise ConfigError(f"placement: {cfg.placement!r} is for on-policy runs")
    algo = cfg.algo
    if algo.offline_data is not None:
        algo = dataclasses.replace(
            algo, offline_data=str(pathlib.Path(algo.offline_data).resolve())
        )
    config = EmbodiedFlowConfig("embodied", cfg.runner, cfg.cluster, cfg.placement, COMPONENTS)
    return OffPolicyFlow(config, env_worker=EnvWorker, env=cfg.env, policy=cfg.policy, algo=algo)
