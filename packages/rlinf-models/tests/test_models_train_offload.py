"""Phase offload (``training.offload="phase"``): parameters, gradients and optimizer state
go to host memory and come back bit for bit, and training with offloads between updates
gives exactly the losses and weights of training without (torch backend, fsdp2 on one
in-process gloo rank with the tiny Qwen2, fsdp2 on two spawned gloo ranks with padded
shards); the reference model is offloaded right after its phase; config errors."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))

import offload_cases

from rlinf.core import ConfigError
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMTrainingSection,
    LLMUpdater,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    check_llm_data_parallel,
    load_causal_lm,
)
from rlinf.models.llm._value import ValueModel
from rlinf.models.train import ModelOffloader, TrainingConfig, tensor_bytes

_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny"),
        TinyLMConfig(
            hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
        ),
    )


@pytest.fixture(scope="module")
def batch(model_dir):
    torch.set_num_threads(1)
    model, tok = load_causal_lm(model_dir)
    prompts = [tok("1+2=", add_special_tokens=False)["input_ids"], tok("30-4=")["input_ids"]]
    return HFGenerationBackend(model, tok).generate(
        prompts, GenerationConfig(max_new_tokens=6, n=4, seed=0)
    )


REWARDS = torch.tensor([1.0, 0.0, 0.5, 0.0, 0.0, 0.2, 1.0, 0.0])


def _ppo_updater(model_dir, training: TrainingConfig, device: str = "cpu") -> LLMUpdater:
    """PPO with a KL reference: the policy, the critic and the reference all in play."""
    torch.manual_seed(0)
    model, _ = load_causal_lm(model_dir, device=device)
    ref, _ = load_causal_lm(model_dir, device=device)
    critic = ValueModel.from_pretrained(model_dir, device=device)
    cfg = LLMUpdaterConfig(name="ppo", lr=1e-2, critic_lr=1e-2, kl_coef=0.05, mini_batch_size=4)
    return LLMUpdater(model, cfg, ref_model=ref, critic=critic, training=training)


def _train_state(updater: LLMUpdater) -> dict[str, torch.Tensor]:
    """Local tensors (not copies) of the policy's and critic's parameters, gradients and
    AdamW moments, by name."""
    out = {}
    for tag, backend in (("policy", updater.backend), ("critic", updater.critic_backend)):
        for name, p in backend.model.named_parameters():
            local = getattr(p, "_local_tensor", p)
            out[f"{tag}.{name}"] = local
            if p.grad is not None:
                out[f"{tag}.{name}.grad"] = getattr(p.grad, "_local_tensor", p.grad)
            for key, v in backend.optimizer.state.get(p, {}).items():
                out[f"{tag}.{name}.{key}"] = getattr(v, "_local_tensor", v)
    return out


def _run(model_dir, batch, training: TrainingConfig, updates: int = 3):
    """``updates`` updates with an offload of everything after each (as the actor worker
    does at the end of its turn); returns the metrics, the final weights and the
    round-trip checks made along the way."""
    updater = _ppo_updater(model_dir, training)
    history, checks = [], []
    for _ in range(updates):
        history.append(updater.update(batch, REWARDS))
        if not updater.phases.enabled:
            continue
        # The reference left the device right after its phase; the others stay until the
        # end of the turn.
        checks.append(updater.phases.offloaded("reference"))
        checks.append(not updater.phases.offloaded("policy"))
        before = {k: v.clone() for k, v in _train_state(updater).items()}
        ptrs = {k: v.data_ptr() for k, v in _train_state(updater).items()}
        updater.phases.offload()
        moved = _train_state(updater)
        checks.append(all(moved[k].data_ptr() != ptrs[k] for k in moved if moved[k].numel()))
        updater.phases.onload("policy", "critic")
        after = _train_state(updater)
        checks.append(sorted(after) == sorted(before))
        checks.append(all(torch.equal(after[k], before[k]) for k in before))
        updater.phases.offload()
    weights = {k: v.detach().clone() for k, v in _train_state(updater).items()}
    return history, weights, checks


def _assert_same_training(plain, offloaded) -> None:
    (h1, w1, _), (h2, w2, checks) = plain, offloaded
    assert checks and all(checks), checks
    assert len(h1) == len(h2) == 3
    for m1, m2 in zip(h1, h2, strict=True):
        assert m1 == m2  # every loss and metric exactly, not within a tolerance
    assert h1[0]["train/loss"] != h1[-1]["train/loss"]  # training moved
    assert sorted(w1) == sorted(w2)
    assert any(k.endswith("exp_avg_sq") for k in w1)
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k


def test_torch_backend_training_with_phase_offload_is_bit_identical(model_dir, batch):
    plain = _run(model_dir, batch, TrainingConfig())
    offloaded = _run(model_dir, batch, TrainingConfig(offload="phase"))
    _assert_same_training(plain, offloaded)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp2_one_rank_training_with_phase_offload_is_bit_identical(model_dir, batch):
    assert not dist.is_initialized()
    dist.init_process_group(
        "gloo", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{_free_port()}"
    )
    try:
        plain = _run(model_dir, batch, TrainingConfig(backend="fsdp2"))
        offloaded = _run(model_dir, batch, TrainingConfig(backend="fsdp2", offload="phase"))
    finally:
        dist.destroy_process_group()
    _assert_same_training(plain, offloaded)
    assert any(".grad" in k for k in offloaded[1])


# Two spawned ranks importing torch and rlinf.core: over a minute on 2 shared cores.
@pytest.mark.slow
def test_fsdp2_two_ranks_padded_shards_round_trip(tmp_path):
    offload_cases.spawn_mlp_case(2, tmp_path)
    result = torch.load(tmp_path / "result.pt")
    (l1, w1, _), (l2, w2, exact) = result["plain"], result["offloaded"]
    assert exact
    assert l1 == l2 and l1[0] != l1[-1]
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k


def test_offloader_keeps_cpu_step_counters_and_is_idempotent():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    off = ModelOffloader(model, opt)
    off.onload()  # resident: nothing to bring back
    assert not off.offloaded
    step = opt.state[model.weight]["step"]
    off.offload()
    off.offload()
    assert off.offloaded
    off.onload()
    assert torch.equal(opt.state[model.weight]["step"], step)
    assert opt.state[model.weight]["step"].device.type == "cpu"
    # On a CPU-only run nothing is on an accelerator.
    assert tensor_bytes(model, opt) == 0 or _CUDA
    with pytest.raises(ValueError, match="no parameters"):
        ModelOffloader(torch.nn.ReLU()).offload()


def test_offload_config_errors_name_the_key():
    with pytest.raises(ValueError, match="offload must be one of"):
        TrainingConfig(offload="layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exclude each other"):
        TrainingConfig(backend="fsdp2", offload="phase", cpu_offload=True)
    algo = LLMUpdaterConfig()
    with pytest.raises(ConfigError, match=r"training\.offload: 'none' or 'phase'"):
        check_llm_data_parallel(LLMTrainingSection(offload="always"), 1, algo, 8)
    with pytest.raises(ConfigError, match=r"training\.offload: 'phase' and training\.cpu_offload"):
        check_llm_data_parallel(LLMTrainingSection(offload="phase", cpu_offload=True), 1, algo, 8)
    assert LLMTrainingSection(offload="phase").resolve(1).offload == "phase"


@pytest.mark.gpu
@pytest.mark.skipif(not _CUDA, reason="needs a CUDA device")
def test_cuda_offload_frees_the_actor_memory(tmp_path, batch):
    # Larger than the CPU tests' model, so that its state dwarfs small leftovers.
    big = build_tiny_causal_lm(
        tmp_path, TinyLMConfig(hidden_size=256, num_layers=2, num_heads=4, num_kv_heads=2)
    )
    device = torch.device("cuda", 0)
    updater = _ppo_updater(big, TrainingConfig(offload="phase"), device="cuda")
    metrics = updater.update(batch, REWARDS)
    for phase in ("reference", "actor_logprob", "critic", "actor_update"):
        assert metrics[f"memory/{phase}_peak_gib"] > 0
    parts = [
        (updater.backend.model, updater.optimizer),
        (updater.critic_backend.model, updater.critic_optimizer),
        (updater.ref_model, None),
    ]
    assert not updater.phases.offloaded("policy") and updater.phases.offloaded("reference")
    resident = sum(tensor_bytes(m, o) for m, o in parts)
    params = sum(p.numel() * p.element_size() for p in updater.backend.model.parameters())
    # Policy (parameters, gradients, 2 AdamW moments) and critic at least.
    assert resident >= 4 * params
    before = torch.cuda.memory_allocated(device)
    updater.phases.offload()
    after = torch.cuda.memory_allocated(device)
    assert all(tensor_bytes(m, o) == 0 for m, o in parts)
    assert before - after >= resident
    # What the process keeps is small next to one copy of the policy's parameters.
    assert after < params / 4
    weight = updater.backend.model.get_parameter("model.embed_tokens.weight")
    assert weight.device.type == "cpu" and weight.is_pinned()
    second = updater.update(batch, REWARDS)  # everything comes back and trains on
    assert second["train/loss"] != metrics["train/loss"]


def test_embodied_updater_refuses_phase_offload():
    from rlinf.models.embodied import PolicyUpdater, UpdaterConfig

    # Refused before the policy is looked at: any module will do.
    with pytest.raises(ValueError, match="LLM actor only"):
        PolicyUpdater(
            torch.nn.Linear(2, 2), UpdaterConfig(), 1, training=TrainingConfig(offload="phase")
        )


def test_actor_offload_names_are_checked(model_dir):
    from rlinf.models.llm._actor_offload import ActorOffload

    model, _ = load_causal_lm(model_dir)
    updater = LLMUpdater(model, LLMUpdaterConfig(), training=TrainingConfig(offload="phase"))
    phases = updater.phases
    with pytest.raises(ValueError, match="unknown actor model 'polcy'"):
        phases.offload("polcy")
    with (
        pytest.raises(ValueError, match="unknown actor phase 'rollout'"),
        phases.phase("rollout", {}),
    ):
        pass
    phases.offload("critic", "reference")  # this actor has neither: nothing to move
    assert not phases.offloaded("policy") and not phases.offloaded("critic")
    phases.offload()
    assert phases.offloaded("policy")
    assert isinstance(phases, ActorOffload)
