"""Training backends without a process group: the token-balanced and sample splits by
hand, the registry and config errors, activation checkpointing that leaves gradients
unchanged, and a ``torch`` checkpoint round trip."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from rlinf.core import RegistryError
from rlinf.models.train import (
    TRAINING_BACKENDS,
    TrainingConfig,
    build_backend,
    reduce_metrics,
    sample_split,
    token_balanced_split,
)


def test_token_balanced_split_by_hand():
    # Longest first onto the lightest rank: 10->r0, 7->r1, 2->r1, 1->r1 (9 < 10), then
    # r0 and r1 tie at 10 tokens: fewer rows wins (r0: 1 row) -> 1->r0, last 1->r1.
    assert token_balanced_split([10, 1, 1, 1, 7, 2], 2) == [[0, 2], [1, 3, 4, 5]]
    # Groups of 2 stay together: unit tokens 11, 2, 9 -> r0 {0}, r1 {2, 1}.
    assert token_balanced_split([10, 1, 1, 1, 7, 2], 2, group_size=2) == [[0, 1], [2, 3, 4, 5]]
    assert token_balanced_split(torch.tensor([5, 5, 5]), 3) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="need >= 1 unit per rank"):
        token_balanced_split([3, 4], 3)
    with pytest.raises(ValueError, match="divide the 3 rows"):
        token_balanced_split([3, 4, 5], 2, group_size=2)


def test_sample_split_and_one_rank_metrics():
    assert sample_split(7, 3) == [range(0, 3), range(3, 5), range(5, 7)]
    with pytest.raises(ValueError, match="2 samples across 3 ranks"):
        sample_split(2, 3)
    assert reduce_metrics({"a": 1.5}, 4.0) == {"a": 1.5}


def test_registry_and_config_errors():
    assert {"torch", "fsdp2"} <= set(TRAINING_BACKENDS.names())
    with pytest.raises(RegistryError, match="unknown training backend 'deepspeed'"):
        build_backend(TrainingConfig(backend="deepspeed"), nn.Linear(2, 2), torch.optim.SGD)
    assert "megatron" in TRAINING_BACKENDS.names()  # loaded on first use (needs its extra)
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        TrainingConfig(mixed_precision="fp8")
    with pytest.raises(ValueError, match="supports neither mixed_precision nor cpu_offload"):
        build_backend(TrainingConfig(cpu_offload=True), nn.Linear(2, 2), torch.optim.SGD)
    with pytest.raises(RuntimeError, match=r"needs torch\.distributed initialized"):
        build_backend(TrainingConfig(backend="fsdp2"), nn.Linear(2, 2), torch.optim.SGD)
    with pytest.raises(ValueError, match=r"no transformer layers or nn\.ModuleList blocks"):
        build_backend(
            TrainingConfig(activation_checkpointing=True), nn.Linear(2, 2), torch.optim.SGD
        )


class _Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(3))
        self.out = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.out(x)


def _train(config: TrainingConfig, model: nn.Module, x: torch.Tensor):
    backend = build_backend(config, model, lambda p: torch.optim.Adam(p, lr=0.1))
    backend.zero_grad()
    for part in x.chunk(2):  # accumulation: two halves of the mean
        backend.backward(backend.model(part).pow(2).mean() / 2)
    norm = backend.clip_grad_norm(0.1)
    grads = [p.grad.clone() for p in backend.params]
    backend.step()
    return backend, norm, grads


def test_activation_checkpointing_and_accumulation_leave_the_step_unchanged(tmp_path):
    torch.manual_seed(0)
    model, x = _Stack(), torch.randn(8, 4)
    ref = copy.deepcopy(model)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    ref(x).pow(2).mean().backward()
    ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.1)
    ref_grads = [p.grad.clone() for p in ref.parameters()]
    ref_opt.step()
    backend, norm, grads = _train(TrainingConfig(activation_checkpointing=True), model, x)
    assert type(backend.model.blocks[0]).__name__ == "CheckpointWrapper"
    assert norm == pytest.approx(float(ref_norm), rel=1e-6) and norm > 0.1
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)
    full = backend.full_state_dict()
    torch.testing.assert_close(full["out.weight"], ref.out.weight.detach())
    assert "blocks.0.0.weight" in full  # the wrapper's prefix is not in the names
    # Checkpoint round trip into a fresh model: same parameters and optimizer state.
    backend.save(tmp_path / "ck", extra={"num_updates": 3})
    torch.manual_seed(1)
    other = build_backend(TrainingConfig(), _Stack(), lambda p: torch.optim.Adam(p, lr=0.1))
    assert other.load(tmp_path / "ck", extra={"num_updates": 0}) == {"num_updates": 3}
    for k, v in full.items():
        torch.testing.assert_close(other.full_state_dict()[k], v)
    assert other.optimizer.state_dict()["state"][0]["step"] == 1
    with pytest.raises(FileNotFoundError, match=r"not a torch\.distributed\.checkpoint"):
        other.load(tmp_path / "missing")
    # The picklable full (unsharded) state restores the same way.
    model_sd, optim_sd = backend.full_train_state()
    third = build_backend(TrainingConfig(), _Stack(), lambda p: torch.optim.Adam(p, lr=0.1))
    third.load_full_train_state(model_sd, optim_sd)
    for k, v in full.items():
        torch.testing.assert_close(third.full_state_dict()[k], v)
    ref_state = backend.optimizer.state_dict()["state"]
    for i, st in third.optimizer.state_dict()["state"].items():
        torch.testing.assert_close(st["exp_avg"], ref_state[i]["exp_avg"])
