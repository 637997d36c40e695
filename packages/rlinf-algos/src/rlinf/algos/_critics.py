"""Small Q-function modules for the off-policy losses: MLPs with optional normalization and
an ensemble wrapper returning ``[E, B]``."""

from __future__ import annotations

import torch
from torch import nn

from ._batch_renorm import BatchRenorm1d

__all__ = ["CriticEnsemble", "mlp"]

_NORMS = ("none", "layernorm", "batchrenorm")


def mlp(
    in_dim: int,
    hidden_dims: tuple[int, ...],
    out_dim: int,
    *,
    norm: str = "none",
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """``Linear -> [norm] -> activation`` per hidden layer, then a final ``Linear``.

    ``norm``: ``"none"``, ``"layernorm"`` (RLPD: keeps Q-values bounded with high
    update-to-data ratios) or ``"batchrenorm"`` (CrossQ; also normalizes the input).
    Shapes: ``[B, in_dim] -> [B, out_dim]``.
    """
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    layers: list[nn.Module] = []
    if norm == "batchrenorm":
        layers.append(BatchRenorm1d(in_dim))
    prev = in_dim
    for h in hidden_dims:
        layers.append(nn.Linear(prev, h))
        if norm == "layernorm":
            layers.append(nn.LayerNorm(h))
        elif norm == "batchrenorm":
            layers.append(BatchRenorm1d(h))
        layers.append(activation())
        prev = h
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


class CriticEnsemble(nn.Module):
    """``E`` independent Q-networks ``Q_e(s, a)``.

    Args:
        obs_dim: observation features.
        action_dim: action features.
        hidden_dims: hidden layer widths of each member.
        num_critics: ``E`` (2 for SAC/CrossQ, 10 for RLPD).
        norm: see :func:`mlp`.

    ``forward(obs [B, obs_dim], actions [B, action_dim]) -> [E, B]``.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_dims: tuple[int, ...] = (256, 256),
        num_critics: int = 2,
        norm: str = "none",
    ) -> None:
        super().__init__()
        if num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {num_critics}")
        self.members = nn.ModuleList(
            mlp(obs_dim + action_dim, hidden_dims, 1, norm=norm) for _ in range(num_critics)
        )

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if obs.dim() != 2 or actions.dim() != 2 or obs.shape[0] != actions.shape[0]:
            raise ValueError(
                f"obs must be [B, D] and actions [B, A], got {tuple(obs.shape)} and "
                f"{tuple(actions.shape)}"
            )
        x = torch.cat([obs, actions], dim=-1)
        return torch.stack([m(x).squeeze(-1) for m in self.members])
