"""Cases of the data-parallel tests, run as one rank in the test process or as ranks of a
gloo group in spawned processes (importable by name there: the test puts this folder on
``sys.path``, which spawn hands to its children)."""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rlinf.core import Trajectory
from rlinf.models import PolicyConfig, build_policy
from rlinf.models.embodied import POLICY_RECORDS, PolicyUpdater, UpdaterConfig
from rlinf.models.llm import LLMUpdater, LLMUpdaterConfig, RolloutBatch, load_causal_lm
from rlinf.models.llm._value import ValueModel
from rlinf.models.train import TrainingConfig, save_hf_pretrained, world_rank_size

__all__ = ["embodied_case", "llm_case", "spawn_ranks"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(
    rank: int, world: int, port: int, backend: str, fn: Callable[..., None], args: tuple
) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend, rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}"
    )
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def spawn_ranks(world: int, fn: Callable[..., None], *args: Any, backend: str = "gloo") -> None:
    """Run ``fn(*args)`` in ``world`` new processes joined in a ``backend`` group (nccl:
    rank ``r`` on ``cuda:r``); raises if one fails (``mp.spawn`` joins them all)."""
    mp.spawn(_rank_main, args=(world, _free_port(), backend, fn, args), nprocs=world, join=True)


def _training(mixed_precision: str = "none") -> TrainingConfig:
    """fsdp2 inside a process group (any size), else the one-process torch backend."""
    return TrainingConfig(
        backend="fsdp2" if dist.is_initialized() else "torch", mixed_precision=mixed_precision
    )


def _device() -> torch.device:
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _full_grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in module.named_parameters():
        if p.grad is not None:
            g = p.grad
            out[name] = (g.full_tensor() if hasattr(g, "full_tensor") else g).detach().clone()
    return out


class _Spec:
    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> None:
        self.shape, self.dtype = shape, np.dtype(dtype)


class _Action:
    kind, shape, n, low, high = "discrete", (), 3, None, None


def _trajectory(seed: int, n: int = 4, t: int = 5) -> Trajectory:
    g = np.random.default_rng(seed)
    term = g.random((n, t)) < 0.2
    fields = {
        "obs": {"state": g.normal(size=(n, t, 3)).astype(np.float32)},
        "actions": g.integers(0, 3, size=(n, t)),
        "rewards": g.normal(size=(n, t)),
        "terminated": term,
        "truncated": (g.random((n, t)) < 0.1) & ~term,
    }
    records = {
        "log_probs": np.log(np.full((n, t), 1 / 3, np.float32)),
        "values": g.normal(size=(n, t)).astype(np.float32),
        "next_values": g.normal(size=(n, t)).astype(np.float32),
    }
    assert set(records) == set(POLICY_RECORDS)
    return Trajectory(**fields, records=records)


def _finish(out: Path, res: dict[str, Any]) -> None:
    if world_rank_size()[0] == 0:
        torch.save(res, out / "result.pt")


def embodied_case(out: Path, resume: Path | None = None, mixed_precision: str = "none") -> None:
    """PPO on an MLP actor-critic: update 1 (metrics, grads, params, checkpoint), then
    update 2; with ``resume``, update 2 only, after loading that checkpoint. In an nccl
    group the policy lives on the rank's GPU."""
    torch.manual_seed(0)
    policy = build_policy(
        PolicyConfig(hidden_sizes=(16, 16), normalize_obs=True), {"state": _Spec((3,))}, _Action()
    ).to(_device())
    cfg = UpdaterConfig(epochs=2, minibatches=3, lr=1e-3, max_grad_norm=0.5, entropy_coef=0.01)
    up = PolicyUpdater(policy, cfg, total_updates=4, training=_training(mixed_precision))
    res: dict[str, Any] = {}
    if resume is None:
        torch.manual_seed(1)
        res["m1"] = up.update(_trajectory(1))
        res["grads1"] = _full_grads(up.policy)
        res["params1"] = up.backend.full_state_dict()
        up.save_checkpoint(out / "ckpt")
    else:
        up.load_checkpoint(resume)
    torch.manual_seed(2)
    res["m2"] = up.update(_trajectory(2))
    res["params2"] = up.backend.full_state_dict()
    _finish(out, res)


def _rollout(seed: int, vocab: int) -> tuple[RolloutBatch, torch.Tensor]:
    """8 responses (2 prompts x 4) of very different lengths: prompts of 2-5 tokens
    (left-padded to 5), responses of 1-7 tokens (right-padded to 7)."""
    g = torch.Generator().manual_seed(seed)
    p_len, r_len = [2, 5, 3, 4, 5, 2, 4, 3], [7, 1, 2, 7, 6, 1, 3, 7]
    big_p, big_r = 5, 7
    ids = torch.zeros(8, big_p + big_r, dtype=torch.long)
    am = torch.zeros_like(ids)
    for i, (p, r) in enumerate(zip(p_len, r_len, strict=True)):
        am[i, big_p - p : big_p + r] = 1
    ids[am.bool()] = torch.randint(3, vocab, (int(am.sum()),), generator=g)
    resp = am[:, big_p:].float()
    batch = RolloutBatch(
        input_ids=ids,
        attention_mask=am,
        prompt_length=big_p,
        response_mask=resp,
        rollout_logprobs=(-torch.rand(8, big_r, generator=g) * 3) * resp,
        prompt_index=torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
        truncated=torch.tensor([r == big_r for r in r_len]),
        version=0,
    )
    return batch, torch.rand(8, generator=g).round()


def llm_case(model_dir: Path, out: Path, algo: str, resume: Path | None = None) -> None:
    """``"grpo"``: policy with a KL reference, 2 mini-batches, micro-batches of 1;
    ``"ppo"``: policy and critic, one step. Update 1 records metrics, grads, params of both
    and a checkpoint; update 2 follows (after loading ``resume`` when given)."""
    torch.manual_seed(0)
    model, _ = load_causal_lm(model_dir)
    vocab = model.config.vocab_size
    ref = critic = None
    if algo == "grpo":
        cfg = LLMUpdaterConfig(
            name="grpo",
            lr=1e-3,
            mini_batch_size=4,
            micro_batch_size=1,
            kl_coef=0.05,
            max_grad_norm=0.5,
        )
        ref = copy.deepcopy(model).requires_grad_(False)
    else:
        cfg = LLMUpdaterConfig(name="ppo", lr=1e-3, critic_lr=1e-2, micro_batch_size=3)
        critic = ValueModel.from_pretrained(model_dir, head_init_std=0.1)
    up = LLMUpdater(model, cfg, ref_model=ref, critic=critic, total_updates=3, training=_training())
    res: dict[str, Any] = {}
    if resume is None:
        torch.manual_seed(1)
        res["m1"] = up.update(*_rollout(1, vocab))
        res["grads1"] = _full_grads(up.model)
        res["params1"] = up.backend.full_state_dict()
        if up.critic is not None:
            res["critic_grads1"] = _full_grads(up.critic)
            res["critic_params1"] = up.critic_backend.full_state_dict()
        up.save_checkpoint(out / "ckpt")
        save_hf_pretrained(up.backend, out / "hf")
    else:
        up.load_checkpoint(resume)
    torch.manual_seed(2)
    res["m2"] = up.update(*_rollout(2, vocab))
    res["params2"] = up.backend.full_state_dict()
    _finish(out, res)
