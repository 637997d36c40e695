"""vLLM / SGLang adapters: the engine-free parts on CPU, the engines themselves on GPU."""

from __future__ import annotations

import copy

import pytest
import torch

from rlinf.core import RegistryError
from rlinf.models import StaleWeightsError, WeightSnapshot
from rlinf.models.llm import GenerationConfig
from rlinf.models.llm.engines import (
    EngineSample,
    build_engine_backend,
    engine_tis_cap,
    pack_rollout,
    sglang_sampling_params,
    tensor_buckets,
    vllm_sampling_kwargs,
)
from rlinf.models.train import TRAINING_BACKENDS, TrainingConfig


def test_sampling_params_follow_the_config() -> None:
    cfg = GenerationConfig(max_new_tokens=7, temperature=0.7, top_p=0.9, top_k=5, n=3, stop=("##",))
    v = vllm_sampling_kwargs(cfg, seed=11)
    assert (v["n"], v["max_tokens"], v["temperature"], v["top_p"], v["top_k"]) == (
        3,
        7,
        0.7,
        0.9,
        5,
    )
    assert v["stop"] == ["##"] and v["include_stop_str_in_output"] and v["logprobs"] == 0
    assert v["seed"] == 11 and not v["ignore_eos"] and v["detokenize"]
    s = sglang_sampling_params(cfg, seed=11)
    assert (s["max_new_tokens"], s["temperature"], s["top_k"], s["sampling_seed"]) == (
        7,
        0.7,
        5,
        11,
    )
    assert s["no_stop_trim"] and s["stop"] == ["##"]
    greedy = GenerationConfig(do_sample=False, top_k=0, stop_on_eos=False)
    assert vllm_sampling_kwargs(greedy, 1)["temperature"] == 0.0
    assert vllm_sampling_kwargs(greedy, 1)["seed"] is None
    assert sglang_sampling_params(greedy, 1)["top_k"] == -1
    assert "sampling_seed" not in sglang_sampling_params(greedy, 1)
    assert sglang_sampling_params(greedy, 1)["ignore_eos"]
    with pytest.raises(TypeError, match="GenerationConfig"):
        vllm_sampling_kwargs({"n": 1}, 0)  # type: ignore[arg-type]


def test_pack_rollout_pads_and_masks() -> None:
    samples = [
        EngineSample((5, 6, 2), (-0.5, -1.0, -0.25), True),
        EngineSample((7,), (-2.0,), False),
        EngineSample((8, 9), (-0.1, -0.2), True),
        EngineSample((), (), False),
    ]
    b = pack_rollout([[1, 2], [3]], samples, 2, pad_token_id=0, version=4, max_new_tokens=3)
    assert b.prompt_length == 2 and b.version == 4
    assert b.input_ids.tolist() == [
        [1, 2, 5, 6, 2],
        [1, 2, 7, 0, 0],
        [0, 3, 8, 9, 0],
        [0, 3, 0, 0, 0],
    ]
    assert b.attention_mask.tolist() == [
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 0, 0, 0],
    ]
    assert b.response_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]]
    expected = torch.tensor([[-0.5, -1.0, -0.25], [-2.0, 0, 0], [-0.1, -0.2, 0], [0, 0, 0]])
    assert torch.allclose(b.rollout_logprobs, expected)
    assert b.prompt_index.tolist() == [0, 0, 1, 1]
    assert b.truncated.tolist() == [False, True, False, True]


def test_engine_output_errors_name_the_cause() -> None:
    with pytest.raises(ValueError, match="2 tokens but 1 log-probabilities"):
        EngineSample((1, 2), (-0.1,), True)
    with pytest.raises(ValueError, match="invalid log-probabilities"):
        EngineSample((1,), (float("nan"),), True)
    one = EngineSample((1,), (-0.1,), True)
    with pytest.raises(ValueError, match="3 samples for 2 prompts x n=2"):
        pack_rollout([[1], [2]], [one] * 3, 2, pad_token_id=0, version=0, max_new_tokens=4)
    with pytest.raises(ValueError, match="exceed max_new_tokens=1"):
        two = EngineSample((1, 2), (-0.1, -0.1), True)
        pack_rollout([[1]], [two], 1, pad_token_id=0, version=0, max_new_tokens=1)


def test_tensor_buckets_respect_the_byte_limit() -> None:
    state = {
        "a": torch.zeros(4),  # 16 bytes
        "b": torch.zeros(2),  # 8
        "c": torch.zeros(10),  # 40: alone
        "d": torch.zeros(1),  # 4
    }
    names = [[n for n, _ in b] for b in tensor_buckets(state, 24)]
    assert names == [["a", "b"], ["c"], ["d"]]
    with pytest.raises(ValueError, match="bucket_bytes"):
        next(tensor_buckets(state, 0))


def test_config_and_missing_extras_name_the_cause() -> None:
    with pytest.raises(ValueError, match=r"backend must be one of \('hf', 'vllm', 'sglang'\)"):
        GenerationConfig(backend="tgi")
    assert GenerationConfig(backend="vllm").backend == "vllm"
    for name in ("vllm", "sglang"):
        try:
            __import__(name)
        except ImportError:
            with pytest.raises(RegistryError, match=rf"rlinf-models\[{name}\]"):
                build_engine_backend(name, "/nonexistent")
    try:
        import megatron.core  # noqa: F401
    except ImportError:
        with pytest.raises(RegistryError, match=r"rlinf-models\[megatron\]"):
            TRAINING_BACKENDS.get("megatron")
    with pytest.raises(ValueError, match="tensor_parallel_size > 1 needs backend 'megatron'"):
        TrainingConfig(backend="fsdp2", tensor_parallel_size=2)
    with pytest.raises(ValueError, match="pipeline_parallel_size must be an int >= 1"):
        TrainingConfig(backend="megatron", pipeline_parallel_size=0)


def test_tis_is_on_by_default_for_engines_only() -> None:
    assert engine_tis_cap("hf", None) is None
    assert engine_tis_cap("vllm", None) == 2.0
    assert engine_tis_cap("sglang", 5.0) == 5.0
    from rlinf.models.llm import LLMUpdaterConfig
    from rlinf.models.llm.engines import with_engine_tis

    algo = LLMUpdaterConfig()
    assert with_engine_tis(algo, GenerationConfig()) is algo
    assert with_engine_tis(algo, GenerationConfig(backend="sglang")).tis_cap == 2.0
    capped = LLMUpdaterConfig(tis_cap=1.5)
    assert with_engine_tis(capped, GenerationConfig(backend="vllm")).tis_cap == 1.5


@pytest.mark.gpu
@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_engine_serves_new_weights_after_update_and_sleep(engine: str, tmp_path) -> None:
    """Greedy output equals the HF backend's on the same weights, after an update to new
    weights, and after sleep / wake (TRL #5312: stale weights after sleep)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip(engine, reason=f"needs the rlinf-models[{engine}] extra")
    from rlinf.models.llm import HFGenerationBackend, build_tiny_causal_lm, load_causal_lm

    model, tokenizer = load_causal_lm(build_tiny_causal_lm(tmp_path))
    backend = build_engine_backend(engine, str(tmp_path), dtype="float32", bucket_bytes=2**16)
    cfg = GenerationConfig(max_new_tokens=8, do_sample=False, stop_on_eos=False, backend=engine)
    prompts = [[1, 2, 3], [4, 5]]

    def hf_tokens(m: torch.nn.Module) -> list[list[int]]:
        ref = HFGenerationBackend(copy.deepcopy(m), tokenizer, device="cuda")
        return ref.generate(prompts, cfg).input_ids.tolist()

    backend.load_weights(WeightSnapshot.of(model, 0))
    assert backend.generate(prompts, cfg).input_ids.tolist() == hf_tokens(model)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    with pytest.raises(StaleWeightsError, match="skipped"):
        backend.load_weights(WeightSnapshot.of(model, 2))
    backend.load_weights(WeightSnapshot.of(model, 1))
    want = hf_tokens(model)
    assert backend.generate(prompts, cfg).input_ids.tolist() == want
    backend.offload()
    backend.onload()
    assert backend.generate(prompts, cfg).input_ids.tolist() == want
    backend.offload(discard_weights=True)
    with pytest.raises(StaleWeightsError, match="load weights first"):
        backend.generate(prompts, cfg)
    backend.load_weights(WeightSnapshot.of(model, 2))
    assert backend.generate(prompts, cfg).version == 2
    assert backend.generate(prompts, cfg).input_ids.tolist() == want


def test_phase_peak_memory_records_cuda_only() -> None:
    from rlinf.models._memory import phase_peak_memory

    metrics: dict[str, float] = {}
    with phase_peak_memory("rollout", metrics, "cpu"):
        torch.zeros(1024)
    assert metrics == {}
    with pytest.raises(ValueError, match="without '/'"), phase_peak_memory("a/b", metrics):
        pass


@pytest.mark.gpu
def test_phase_peak_memory_measures_the_phase() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from rlinf.models._memory import phase_peak_memory

    metrics: dict[str, float] = {}
    base = torch.cuda.memory_allocated() / 2**30
    with phase_peak_memory("actor", metrics):
        x = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
        del x
    assert metrics["memory/actor_peak_gib"] >= base + 1 / 16


def test_training_section_passes_megatron_sizes_and_names_the_extra() -> None:
    from rlinf.core import ConfigError
    from rlinf.models.llm import LLMTrainingSection

    with pytest.raises(ConfigError, match="tensor_parallel_size > 1 needs backend 'megatron'"):
        LLMTrainingSection(backend="fsdp2", tensor_parallel_size=2).resolve(2)
    try:
        import megatron.core  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"training.backend: .*rlinf-models\[megatron\]"):
            LLMTrainingSection(backend="megatron", tensor_parallel_size=2).resolve(2)
    else:
        cfg = LLMTrainingSection(backend="megatron", tensor_parallel_size=2).resolve(2)
        assert (cfg.backend, cfg.tensor_parallel_size) == ("megatron", 2)
