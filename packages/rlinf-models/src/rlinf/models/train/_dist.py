"""Data parallelism over the default ``torch.distributed`` group: the rank's share of a
global batch, and metrics reduced across ranks. Without an initialized group everything
works as one rank (rank 0 of 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist

__all__ = [
    "from_rank0",
    "reduce_metrics",
    "sample_split",
    "sum_metrics",
    "token_balanced_split",
    "world_rank_size",
]


def world_rank_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def from_rank0(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as rank 0 has it, on every rank (in place; one rank: unchanged). The
    updaters draw their mini-batch order with it, so ranks never train on different
    mini-batches even if their random states drifted apart."""
    if world_rank_size()[1] > 1:
        dist.broadcast(tensor, src=0)
    return tensor


def sample_split(n: int, world_size: int) -> list[range]:
    """Contiguous, near-equal shares of ``n`` samples: rank ``r`` gets ``result[r]``; the
    first ``n % world_size`` ranks get one sample more.

    Raises:
        ValueError: ``world_size < 1`` or fewer samples than ranks (a rank without samples
            would have no loss to back-propagate).
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if n < world_size:
        raise ValueError(f"cannot split {n} samples across {world_size} ranks: need >= 1 each")
    base, extra = divmod(n, world_size)
    out, start = [], 0
    for r in range(world_size):
        size = base + (1 if r < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def token_balanced_split(
    lengths: Sequence[int] | torch.Tensor, world_size: int, *, group_size: int = 1
) -> list[list[int]]:
    """Row indices of each rank, balancing the token count across ranks.

    Rows go in units of ``group_size`` consecutive rows (the samples of one prompt stay on
    one rank). Units are placed longest first on the rank with the fewest tokens so far
    (ties: fewer units, then lower rank): the greedy longest-processing-time rule, whose
    heaviest rank is within 4/3 of the optimum. Each rank's rows come back ascending.

    Args:
        lengths: ``[N]`` token count of each row (e.g. ``attention_mask.sum(1)``).
        world_size: number of ranks.
        group_size: rows per unit; divides ``N``.

    Raises:
        ValueError: ``group_size`` does not divide ``N``, negative lengths, or fewer units
            than ranks.
    """
    lens = [int(x) for x in (lengths.tolist() if torch.is_tensor(lengths) else lengths)]
    if group_size < 1 or len(lens) % group_size:
        raise ValueError(f"group_size {group_size} must be >= 1 and divide the {len(lens)} rows")
    if any(x < 0 for x in lens):
        raise ValueError("token lengths must be >= 0")
    units = len(lens) // group_size
    if world_size < 1 or units < world_size:
        raise ValueError(
            f"cannot split {units} units of {group_size} rows across {world_size} ranks: "
            "need >= 1 unit per rank"
        )
    unit_tokens = [sum(lens[u * group_size : (u + 1) * group_size]) for u in range(units)]
    # sorted() is stable: equal units keep their index order, so the split is deterministic.
    order = sorted(range(units), key=lambda u: -unit_tokens[u])
    tokens = [0] * world_size
    owned: list[list[int]] = [[] for _ in range(world_size)]
    for u in order:
        r = min(range(world_size), key=lambda i: (tokens[i], len(owned[i]), i))
        tokens[r] += unit_tokens[u]
        owned[r].append(u)
    return [[u * group_size + j for u in sorted(us) for j in range(group_size)] for us in owned]


def _device() -> torch.device | None:
    # NCCL reduces only device tensors; gloo only host ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return None


def sum_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Each metric summed over all ranks (e.g. per-rank parts already weighted by their
    share of the global batch). Every rank must pass the same keys. One rank: unchanged."""
    _, world = world_rank_size()
    if world == 1:
        return dict(metrics)
    keys = sorted(metrics)
    buf = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=_device())
    dist.all_reduce(buf)
    return {k: float(buf[i]) for i, k in enumerate(keys)}


def reduce_metrics(metrics: Mapping[str, float], count: float) -> dict[str, float]:
    """Mean of each metric over all ranks, weighted by each rank's ``count`` (e.g. its
    samples or tokens): ``sum_r count_r * m_r / sum_r count_r``. Every rank must pass the
    same keys (they are reduced in sorted order in one all-reduce). One rank: unchanged."""
    _, world = world_rank_size()
    if world == 1:
        return dict(metrics)
    keys = sorted(metrics)
    values = [metrics[k] * count for k in keys] + [count]
    buf = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(buf)
    total = float(buf[-1])
    if total <= 0:
        raise ValueError(f"reduce_metrics: the ranks' counts sum to {total}, need > 0")
    return {k: float(buf[i]) / total for i, k in enumerate(keys)}
