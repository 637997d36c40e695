"""The fsdp2 offload case, run as ranks of a gloo group in spawned processes (importable
by name there: the test puts this folder on ``sys.path``, which spawn hands to its
children). Imports no transformers: a small MLP whose first dimensions do not divide by
the ranks exercises the padded shards."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from rlinf.models.train import TrainingConfig, build_backend

__all__ = ["fsdp_mlp_case", "spawn_mlp_case"]


def _train(offload: str, steps: int = 3) -> tuple[list[float], dict[str, torch.Tensor], bool]:
    """``steps`` AdamW steps of a 2-layer MLP (same data on every rank, summed gradients),
    offloading and onloading after each step when ``offload="phase"``. Returns the losses,
    the full parameters and whether every offload moved the local shards to new storage
    and brought back the same bits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    backend = build_backend(
        TrainingConfig(backend="fsdp2", offload=offload),  # type: ignore[arg-type]
        model,
        lambda ps: torch.optim.AdamW(ps, lr=0.05),
    )
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    y = torch.randn(8, 3, generator=torch.Generator().manual_seed(2))
    losses, exact = [], True
    for _ in range(steps):
        backend.zero_grad()
        loss = ((backend.model(x) - y) ** 2).mean() / dist.get_world_size()
        backend.backward(loss)
        backend.clip_grad_norm(1.0)
        backend.step()
        losses.append(float(loss))
        if offload == "phase":
            before = _local_state(backend)
            ptrs = {k: v.data_ptr() for k, v in before.items()}
            backend.offload()
            moved = _local_state(backend)
            exact &= all(moved[k].data_ptr() != ptrs[k] for k in moved)
            exact &= all(torch.equal(moved[k], before[k]) for k in moved)
            backend.onload()
            after = _local_state(backend)
            exact &= sorted(after) == sorted(before)
            exact &= all(torch.equal(after[k], before[k]) for k in after)
    full = {k: v.full_tensor().clone() for k, v in backend.model.state_dict().items()}
    return losses, full, exact


def _local_state(backend) -> dict[str, torch.Tensor]:
    """Local shards of the parameters, gradients and AdamW moments (not copies)."""
    out = {}
    for name, p in backend.model.named_parameters():
        out[name] = p._local_tensor
        out[f"{name}.grad"] = p.grad._local_tensor
        for key in ("exp_avg", "exp_avg_sq"):
            out[f"{name}.{key}"] = backend.optimizer.state[p][key]._local_tensor
    return out


def fsdp_mlp_case(out: Path) -> None:
    """Each rank trains with and without phase offload; rank 0 saves the comparison."""
    plain = _train("none")
    offloaded = _train("phase")
    if dist.get_rank() == 0:
        torch.save({"plain": plain, "offloaded": offloaded}, Path(out) / "result.pt")


def _rank_main(rank: int, world: int, port: int, out: Path) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}"
    )
    try:
        fsdp_mlp_case(out)
    finally:
        dist.destroy_process_group()


def spawn_mlp_case(world: int, out: Path) -> None:
    """Run :func:`fsdp_mlp_case` on ``world`` spawned gloo ranks (raises if one fails)."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, args=(world, port, out), nprocs=world, join=True)
