"""Data parallel = one process: a 2-rank fsdp2 update (gloo, CPU) equals the 1-rank
``torch`` update on the same global batch (metrics, gradients, parameters within 1e-5 in
fp32) for the embodied actor-critic, the LLM policy (GRPO with a KL reference and
micro-batches of uneven token counts) and the LLM policy + critic (PPO); a checkpoint
saved by 2 ranks, loaded by 1, continues identically."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import dp_cases

from rlinf.models.llm import TinyLMConfig, build_tiny_causal_lm, load_causal_lm

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _close(a: dict, b: dict, what: str) -> None:
    assert sorted(a) == sorted(b), what
    for k in a:
        torch.testing.assert_close(
            torch.as_tensor(a[k]), torch.as_tensor(b[k]), **TOL, msg=f"{what}[{k}]"
        )


def _compare(one: Path, two: Path, resumed: Path) -> None:
    r1, r2 = torch.load(one / "result.pt"), torch.load(two / "result.pt")
    assert r1["m1"]["train/grad_norm"] > 0
    for key in r1:
        _close(r1[key], r2[key], key)
    # The parameters moved: the comparison is not between two untouched models.
    assert any(not torch.equal(r1["params1"][k], r1["params2"][k]) for k in r1["params1"])
    r3 = torch.load(resumed / "result.pt")
    _close(r3["m2"], r2["m2"], "resumed m2")
    _close(r3["params2"], r2["params2"], "resumed params2")


def _dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    dirs = tuple(tmp_path / n for n in ("one", "two", "resumed"))
    for d in dirs:
        d.mkdir()
    return dirs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny"),
        TinyLMConfig(
            hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64
        ),
    )


def test_embodied_actor_critic_two_ranks_equal_one(tmp_path):
    one, two, resumed = _dirs(tmp_path)
    dp_cases.embodied_case(one)
    dp_cases.spawn_ranks(2, dp_cases.embodied_case, two)
    dp_cases.embodied_case(resumed, two / "ckpt")
    _compare(one, two, resumed)


# Two spawned ranks that each import transformers: a minute apiece on 2 cores.
@pytest.mark.slow
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_llm_policy_and_critic_two_ranks_equal_one(tmp_path, model_dir, algo):
    one, two, resumed = _dirs(tmp_path)
    dp_cases.llm_case(model_dir, one, algo)
    dp_cases.spawn_ranks(2, dp_cases.llm_case, model_dir, two, algo)
    dp_cases.llm_case(model_dir, resumed, algo, two / "ckpt")
    _compare(one, two, resumed)
    # The 2-rank Hugging Face export loads as a plain model with the 1-rank weights.
    exported, _ = load_causal_lm(two / "hf")
    params1 = torch.load(one / "result.pt")["params1"]
    for k, v in exported.state_dict().items():
        torch.testing.assert_close(v, params1[k], **TOL)
    if algo == "ppo":
        assert torch.load(one / "result.pt")["critic_grads1"]


_CUDA = torch.cuda.device_count()


@pytest.mark.gpu
@pytest.mark.skipif(_CUDA < 2, reason="needs 2 CUDA devices")
def test_embodied_two_nccl_ranks_equal_one(tmp_path):
    one, two, resumed = _dirs(tmp_path)
    dp_cases.embodied_case(one)
    dp_cases.spawn_ranks(2, dp_cases.embodied_case, two, backend="nccl")
    dp_cases.embodied_case(resumed, two / "ckpt")
    _compare(one, two, resumed)


@pytest.mark.gpu
@pytest.mark.skipif(_CUDA < 1, reason="needs a CUDA device")
def test_embodied_bf16_fsdp2_on_gpu_tracks_fp32(tmp_path):
    """bf16 compute with fp32 master weights and reduction: the update follows the fp32
    one to bf16 precision (exact equality is not expected)."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    dp_cases.embodied_case(one)
    dp_cases.spawn_ranks(1, dp_cases.embodied_case, two, None, "bf16", backend="nccl")
    r1, r2 = torch.load(one / "result.pt"), torch.load(two / "result.pt")
    assert r2["params1"]["value_head.weight"].dtype == torch.float32
    for k, v in r1["params1"].items():
        torch.testing.assert_close(r2["params1"][k].cpu(), v, atol=2e-2, rtol=2e-2)
    assert r2["m1"]["train/vf_loss"] == pytest.approx(r1["m1"]["train/vf_loss"], rel=2e-2)
