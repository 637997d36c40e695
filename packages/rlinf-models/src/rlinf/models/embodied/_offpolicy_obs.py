"""How the off-policy learner holds observations: one flat float vector, or (with images)
a dict of per-key tensors whose frames stay uint8 from the env to the replay buffer.

Vector-only envs keep the flat layout (``obs [M, D]`` float32), which the offline-data file
also uses. An env with ``[H, W, C]`` uint8 image keys (read with ``policy.encoder: cnn``)
keeps every key apart under ``"<prefix>.<key>"`` in the buffer, images as uint8 (a quarter
of float32's memory; they are scaled to ``[0, 1]`` only inside the CNN), vector keys as
float32. DrQ's random shift is applied to the learner's sampled batches only
(:meth:`ObsLayout.augment`), never to what the collectors' policy sees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlinf.algos import random_shift
from rlinf.core import Trajectory

from .._config import PolicyConfig
from .._encoders import Encoder
from .._spec import ObsSpecLike, is_image

__all__ = ["NEXT_OBS_RECORD", "ObsLayout", "PolicyObs", "transitions"]

PolicyObs = torch.Tensor | dict[str, torch.Tensor]
"""A policy's input: ``[B, D]`` float32 (flat layout) or key -> ``[B, ...]`` (pixels)."""


@dataclasses.dataclass(frozen=True)
class ObsLayout:
    """The observation keys the off-policy networks read, and how they are stored.

    Attributes:
        keys: the keys read, sorted (``policy.obs_keys`` or all of the spec's).
        image_keys: those that are ``[H, W, C]`` uint8 images.
        flat_dim: ``D`` of the flat layout (the vector keys' total size).
    """

    keys: tuple[str, ...]
    image_keys: tuple[str, ...]
    flat_dim: int

    @classmethod
    def of(cls, policy: PolicyConfig, obs_spec: ObsSpecLike) -> ObsLayout:
        """The layout of ``obs_spec`` as ``policy`` reads it.

        Raises:
            ValueError: ``policy.obs_keys`` names keys the spec lacks; image keys with
                ``policy.encoder != "cnn"`` (an MLP cannot read them), or ``"cnn"``
                without image keys.
        """
        keys = sorted(obs_spec) if policy.obs_keys is None else sorted(policy.obs_keys)
        missing = [k for k in keys if k not in obs_spec]
        if missing:
            raise ValueError(f"policy.obs_keys {missing} are not observation keys {list(obs_spec)}")
        images = tuple(k for k in keys if is_image(obs_spec[k]))
        if images and policy.encoder != "cnn":
            raise ValueError(
                f"observation keys {list(images)} are images and policy.encoder is "
                f"{policy.encoder!r}: set policy.encoder=cnn (the off-policy learner then "
                "trains a shared CNN encoder), or leave them out with policy.obs_keys"
            )
        if policy.encoder == "cnn" and not images:
            raise ValueError("policy.encoder=cnn needs at least one [H, W, C] uint8 image key")
        flat = sum(math.prod(obs_spec[k].shape) for k in keys if k not in images)
        return cls(tuple(keys), images, int(flat))

    @property
    def pixels(self) -> bool:
        """Whether any key is an image (dict layout, CNN encoder)."""
        return bool(self.image_keys)

    def policy_input(self, obs: Mapping[str, Any]) -> PolicyObs:
        """``{k: [B, ...]}`` arrays -> the networks' input: flat ``[B, D]`` float32, or
        key -> tensor with images kept uint8 ``[B, H, W, C]`` and vectors float32."""
        missing = [k for k in self.keys if k not in obs]
        if missing:
            raise ValueError(f"observation lacks keys {missing} (has {sorted(obs)})")
        if not self.pixels:
            parts = [torch.as_tensor(np.asarray(obs[k])).float() for k in self.keys]
            return torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=-1)
        out = {}
        for k in self.keys:
            t = torch.as_tensor(np.asarray(obs[k]))
            out[k] = t if k in self.image_keys else t.float()
        return out

    @staticmethod
    def to_buffer(prefix: str, obs: PolicyObs) -> dict[str, torch.Tensor]:
        """A policy input as replay-buffer entries: ``{prefix: [M, D]}`` or
        ``{"<prefix>.<key>": [M, ...]}``."""
        if isinstance(obs, torch.Tensor):
            return {prefix: obs}
        return {f"{prefix}.{k}": v for k, v in obs.items()}

    def from_batch(self, batch: Mapping[str, torch.Tensor], prefix: str) -> PolicyObs:
        """The inverse of :meth:`to_buffer` on a sampled batch."""
        if not self.pixels:
            return batch[prefix]
        return {k: batch[f"{prefix}.{k}"] for k in self.keys}

    def augment(
        self, obs: PolicyObs, pad: int, generator: torch.Generator | None = None
    ) -> PolicyObs:
        """DrQ: every image key of ``obs`` shifted by up to ``pad`` pixels (edges
        replicated), independently per sample; vector keys and flat inputs unchanged."""
        if isinstance(obs, torch.Tensor) or pad == 0:
            return obs
        return {
            k: random_shift(v, pad, generator) if k in self.image_keys else v
            for k, v in obs.items()
        }

    def encoder(self, policy: PolicyConfig, obs_spec: ObsSpecLike) -> Encoder | None:
        """The shared pixel encoder (``None`` for the flat layout): ``policy``'s CNN, its
        ``cnn_features``-wide projection, the vector keys appended, then one
        ``cnn_features``-wide layer; ``out_features`` is ``cnn_features``."""
        if not self.pixels:
            return None
        spec = {k: obs_spec[k] for k in self.keys}
        return Encoder(dataclasses.replace(policy, hidden_sizes=(policy.cnn_features,)), spec, None)

    def features_dim(self, policy: PolicyConfig) -> int:
        """Width of what the actor trunk and the critics read."""
        return policy.cnn_features if self.pixels else self.flat_dim


NEXT_OBS_RECORD = "next_obs"
"""The record the collectors' policy adds to a trajectory: the state each step reached,
*before* any auto-reset (so truncated episodes bootstrap from the true last state). Flat
layout: one record ``[N, T, D]`` float32; pixels: one record ``"next_obs.<key>"`` per key."""


def _rows(a: Any, m: int) -> np.ndarray:
    a = np.asarray(a)
    return a.reshape(m, *a.shape[2:])


def transitions(traj: Trajectory, layout: ObsLayout | None = None) -> dict[str, torch.Tensor]:
    """A ``[N, T]`` trajectory -> ``M = N*T`` transitions: ``layout.to_buffer`` entries of
    ``obs`` and ``next_obs`` (flat ``[M, D]`` float32, or per key with uint8 images),
    ``"actions" [M, A]``, ``"rewards" [M]``, ``"terminated" [M]`` (float32; 0/1).

    ``layout`` None: the flat layout over all of the trajectory's observation keys. Only
    termination stops bootstrapping; a truncated step keeps ``gamma * V(next_obs)``.
    """
    n, t = np.asarray(traj.rewards).shape
    m = n * t
    keys = sorted(traj.obs) if layout is None else list(layout.keys)
    pixels = layout is not None and layout.pixels
    names = [f"{NEXT_OBS_RECORD}.{k}" for k in keys] if pixels else [NEXT_OBS_RECORD]
    missing = [name for name in names if name not in traj.records]
    if missing:
        raise ValueError(
            f"trajectory has no {', '.join(map(repr, missing))} record (records: {sorted(traj.records)}); "
            "collect it with the off-policy responder"
        )
    if layout is None:
        layout = ObsLayout(tuple(keys), (), 0)
    obs = layout.policy_input({k: _rows(traj.obs[k], m) for k in keys})
    if pixels:
        nxt = layout.policy_input(
            {k: _rows(traj.records[f"{NEXT_OBS_RECORD}.{k}"], m) for k in keys}
        )
    else:
        nxt = torch.as_tensor(_rows(traj.records[NEXT_OBS_RECORD], m)).float().reshape(m, -1)
    return {
        **layout.to_buffer("obs", obs),
        **layout.to_buffer(NEXT_OBS_RECORD, nxt),
        "actions": torch.as_tensor(np.asarray(traj.actions)).float().reshape(m, -1),
        "rewards": torch.as_tensor(np.asarray(traj.rewards)).float().reshape(-1),
        "terminated": torch.as_tensor(np.asarray(traj.terminated)).float().reshape(-1),
    }
