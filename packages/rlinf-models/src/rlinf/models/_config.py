"""Configuration of the MLP / CNN actor-critic policies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["PolicyConfig"]

ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu")


@dataclass(frozen=True)
class PolicyConfig:
    """How to build an :class:`~rlinf.models.ActorCritic`.

    Attributes:
        encoder: ``"mlp"`` reads the vector observations (every non-image key, flattened and
            concatenated in key order); ``"cnn"`` also reads the ``[H, W, C]`` uint8 image
            keys through a convolutional stack and concatenates its features with the vectors.
        obs_keys: observation keys the policy reads; ``None`` means all of them.
        hidden_sizes: widths of the fully connected hidden layers after the encoder input.
        activation: nonlinearity of hidden layers: tanh, relu, elu, gelu or silu.
        shared_trunk: one trunk feeds both the policy and the value head (cheaper; the value
            loss then shapes the policy's features); False gives the critic its own network.
        cnn_channels: output channels of each conv layer.
        cnn_kernels: kernel size of each conv layer (same length as ``cnn_channels``).
        cnn_strides: stride of each conv layer (same length as ``cnn_channels``).
        cnn_features: width of the linear layer that maps flattened conv output to features.
        log_std: Gaussian policies only. ``"state_independent"``: one learned log-std per
            action dim; ``"state_dependent"``: predicted by a head from the features.
        init_log_std: initial log-std (the bias of the state-dependent head, or the value of
            the state-independent parameter).
        log_std_min: lower clamp of the log-std (keeps log-probs finite).
        log_std_max: upper clamp of the log-std.
        tanh_squash: squash Gaussian samples with tanh and rescale them affinely to the action
            bounds when both are finite (else they stay in ``(-1, 1)``); the log-prob includes
            the change of variables. Unsquashed actions are unbounded (envs clip them).
        chunk_size: ``K`` actions predicted per observation (action chunking); actions are
            ``[B, K, *action_shape]`` when ``K > 1`` and ``[B, *action_shape]`` when 1, and
            the log-prob is the sum over the chunk.
        normalize_obs: normalize vector observations with running mean/variance (updated by
            :meth:`~rlinf.models.ActorCritic.update_obs_normalizer` only).
        obs_clip: normalized observations are clipped to ``[-obs_clip, obs_clip]``.
        hidden_gain: orthogonal-init gain of hidden layers.
        policy_gain: orthogonal-init gain of the policy output (small: a near-uniform start).
        value_gain: orthogonal-init gain of the value output.
    """

    encoder: Literal["mlp", "cnn"] = "mlp"
    obs_keys: tuple[str, ...] | None = None
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    shared_trunk: bool = False
    cnn_channels: tuple[int, ...] = (32, 64, 64)
    cnn_kernels: tuple[int, ...] = (8, 4, 3)
    cnn_strides: tuple[int, ...] = (4, 2, 1)
    cnn_features: int = 256
    log_std: Literal["state_independent", "state_dependent"] = "state_independent"
    init_log_std: float = 0.0
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    tanh_squash: bool = False
    chunk_size: int = 1
    normalize_obs: bool = False
    obs_clip: float = 10.0
    hidden_gain: float = math.sqrt(2.0)
    policy_gain: float = 0.01
    value_gain: float = 1.0

    def __post_init__(self) -> None:
        if self.encoder not in ("mlp", "cnn"):
            raise ValueError(f"encoder must be 'mlp' or 'cnn', got {self.encoder!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive widths, got {self.hidden_sizes}")
        n = len(self.cnn_channels)
        if n == 0 or len(self.cnn_kernels) != n or len(self.cnn_strides) != n:
            raise ValueError(
                "cnn_channels, cnn_kernels and cnn_strides must be non-empty and of equal length"
            )
        if self.log_std not in ("state_independent", "state_dependent"):
            raise ValueError(
                f"log_std must be state_independent or state_dependent, got {self.log_std!r}"
            )
        if not self.log_std_min < self.log_std_max:
            raise ValueError("log_std_min must be < log_std_max")
        if not self.log_std_min <= self.init_log_std <= self.log_std_max:
            raise ValueError("init_log_std must lie in [log_std_min, log_std_max]")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.obs_clip <= 0:
            raise ValueError(f"obs_clip must be > 0, got {self.obs_clip}")
