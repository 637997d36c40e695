"""Hugging Face Qwen2 / Llama <-> Megatron GPTModel weight conversion and TP sharding."""

from __future__ import annotations

import copy
import socket

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from rlinf.models.train._megatron_convert import (
    GPTShape,
    hf_to_megatron,
    megatron_to_hf,
    merge_tensor_parallel,
    split_tensor_parallel,
)


def _qwen2_config(tie: bool = True) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tie,
        max_position_embeddings=128,
    )


def _equal_dicts(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("tie", [True, False])
def test_qwen2_round_trip_through_megatron(tie: bool) -> None:
    torch.manual_seed(0)
    cfg = _qwen2_config(tie)
    hf = Qwen2ForCausalLM(cfg).state_dict()
    shape = GPTShape.from_hf_config(cfg)
    mc = hf_to_megatron(hf, shape)
    assert mc["decoder.layers.0.self_attention.linear_qkv.weight"].shape == (64, 32)
    assert mc["decoder.layers.0.self_attention.linear_qkv.bias"].shape == (64,)
    assert mc["decoder.layers.1.mlp.linear_fc1.weight"].shape == (96, 32)
    assert ("output_layer.weight" in mc) is not tie
    _equal_dicts(megatron_to_hf(mc, shape), hf)


def test_llama_untied_round_trip_has_no_qkv_bias() -> None:
    torch.manual_seed(1)
    cfg = LlamaConfig(
        vocab_size=48,
        hidden_size=24,
        intermediate_size=40,
        num_hidden_layers=1,
        num_attention_heads=6,
        num_key_value_heads=3,
        tie_word_embeddings=False,
    )
    hf = LlamaForCausalLM(cfg).state_dict()
    shape = GPTShape.from_hf_config(cfg)
    assert not shape.qkv_bias and shape.head_dim == 4
    mc = hf_to_megatron(hf, shape)
    assert not any(k.endswith("linear_qkv.bias") for k in mc)
    _equal_dicts(megatron_to_hf(mc, shape), hf)


def _hand_shape(**kw: object) -> GPTShape:
    base = dict(
        num_layers=1,
        hidden_size=1,
        num_heads=4,
        num_kv_heads=2,
        head_dim=1,
        ffn_hidden_size=2,
        vocab_size=2,
        tie_embeddings=True,
        qkv_bias=False,
    )
    return GPTShape(**(base | kw))  # type: ignore[arg-type]


def _hand_hf(shape: GPTShape) -> dict[str, torch.Tensor]:
    col = lambda *v: torch.tensor(v, dtype=torch.float32)[:, None]  # noqa: E731
    p = "model.layers.0."
    return {
        "model.embed_tokens.weight": col(100, 101),
        p + "self_attn.q_proj.weight": col(0, 1, 2, 3),
        p + "self_attn.k_proj.weight": col(10, 11),
        p + "self_attn.v_proj.weight": col(20, 21),
        p + "self_attn.o_proj.weight": torch.tensor([[30.0, 31, 32, 33]]),
        p + "mlp.gate_proj.weight": col(40, 41),
        p + "mlp.up_proj.weight": col(50, 51),
        p + "mlp.down_proj.weight": torch.tensor([[60.0, 61]]),
        p + "input_layernorm.weight": torch.tensor([70.0]),
        p + "post_attention_layernorm.weight": torch.tensor([71.0]),
        "model.norm.weight": torch.tensor([72.0]),
    }


def test_qkv_is_grouped_by_kv_head_and_tp_slices_whole_groups() -> None:
    shape = _hand_shape()
    mc = hf_to_megatron(_hand_hf(shape), shape)
    qkv = mc["decoder.layers.0.self_attention.linear_qkv.weight"].squeeze(1).tolist()
    # Group 0: queries 0, 1, key 10, value 20; group 1: queries 2, 3, key 11, value 21.
    assert qkv == [0, 1, 10, 20, 2, 3, 11, 21]
    assert mc["decoder.layers.0.mlp.linear_fc1.weight"].squeeze(1).tolist() == [40, 41, 50, 51]
    r0, r1 = split_tensor_parallel(mc, shape, tp=2)
    assert r0["decoder.layers.0.self_attention.linear_qkv.weight"].squeeze(1).tolist() == [
        0,
        1,
        10,
        20,
    ]
    assert r1["decoder.layers.0.self_attention.linear_qkv.weight"].squeeze(1).tolist() == [
        2,
        3,
        11,
        21,
    ]
    # Each rank holds its gate slice stacked on its up slice.
    assert r0["decoder.layers.0.mlp.linear_fc1.weight"].squeeze(1).tolist() == [40, 50]
    assert r1["decoder.layers.0.mlp.linear_fc1.weight"].squeeze(1).tolist() == [41, 51]
    assert r1["decoder.layers.0.self_attention.linear_proj.weight"].tolist() == [[32, 33]]
    assert r0["decoder.layers.0.mlp.linear_fc2.weight"].tolist() == [[60]]
    assert r1["embedding.word_embeddings.weight"].tolist() == [[101]]
    assert r1["decoder.final_layernorm.weight"].tolist() == [72]
    _equal_dicts(merge_tensor_parallel([r0, r1]), mc)


def test_tp_round_trip_on_a_real_shape() -> None:
    torch.manual_seed(2)
    cfg = _qwen2_config(tie=False)
    shape = GPTShape.from_hf_config(cfg)
    mc = hf_to_megatron(Qwen2ForCausalLM(cfg).state_dict(), shape)
    shards = split_tensor_parallel(mc, shape, tp=2)
    assert shards[0]["decoder.layers.0.self_attention.linear_qkv.bias"].shape == (32,)
    assert shards[1]["decoder.layers.0.self_attention.linear_proj.weight"].shape == (32, 16)
    _equal_dicts(merge_tensor_parallel(shards), mc)


def test_bad_inputs_name_the_cause() -> None:
    shape = _hand_shape()
    hf = _hand_hf(shape)
    with pytest.raises(ValueError, match=r"unexpected Hugging Face keys.*rotary"):
        hf_to_megatron(hf | {"model.rotary.inv_freq": torch.ones(1)}, shape)
    with pytest.raises(KeyError, match=r"model.norm.weight"):
        hf_to_megatron({k: v for k, v in hf.items() if k != "model.norm.weight"}, shape)
    with pytest.raises(ValueError, match=r"q_proj.weight has shape \(3, 1\)"):
        hf_to_megatron(hf | {"model.layers.0.self_attn.q_proj.weight": torch.ones(3, 1)}, shape)
    with pytest.raises(ValueError, match=r"lm_head.weight differs"):
        hf_to_megatron(hf | {"lm_head.weight": torch.zeros(2, 1)}, shape)
    with pytest.raises(ValueError, match=r"num_kv_heads .2. is not divisible by tp=4"):
        split_tensor_parallel(hf_to_megatron(hf, shape), shape, tp=4)
    mc = hf_to_megatron(hf, shape)
    r0, r1 = split_tensor_parallel(mc, shape, tp=2)
    r1["decoder.final_layernorm.weight"] = torch.tensor([0.0])
    with pytest.raises(ValueError, match=r"replicated decoder.final_layernorm.weight differs"):
        merge_tensor_parallel([r0, r1])
    with pytest.raises(ValueError, match=r"model_type 'gpt2'"):
        GPTShape.from_hf_config(type("C", (), {"model_type": "gpt2"})())
    with pytest.raises(ValueError, match=r"no tensor-parallel layout"):
        split_tensor_parallel(mc | {"decoder.layers.0.mystery.weight": torch.ones(1)}, shape, 2)


def test_megatron_gpt_model_round_trip(megatron_single_rank: None) -> None:
    """A GPTModel built from a Qwen2 config with Megatron's CPU initialization: its weights
    go to a Hugging Face Qwen2 model (strict load) and back unchanged."""
    from rlinf.models.train._megatron import build_gpt_model

    torch.manual_seed(3)
    cfg = _qwen2_config(tie=True)
    shape = GPTShape.from_hf_config(cfg)
    gpt = build_gpt_model(cfg, dtype=torch.float32, cpu_init=True)
    mc = {k: v for k, v in gpt.state_dict().items() if not k.endswith("._extra_state")}
    hf_model = Qwen2ForCausalLM(cfg)
    hf_model.load_state_dict(megatron_to_hf(mc, shape), strict=True)
    back = hf_to_megatron(hf_model.state_dict(), shape)
    _equal_dicts(back, mc)
    # And HF -> Megatron -> HF from the HF side: the GPTModel accepts the converted dict.
    hf_sd = Qwen2ForCausalLM(cfg).state_dict()
    missing, unexpected = gpt.load_state_dict(hf_to_megatron(hf_sd, shape), strict=False)
    assert not unexpected and all(k.endswith("._extra_state") for k in missing)
    again = {k: v for k, v in gpt.state_dict().items() if not k.endswith("._extra_state")}
    _equal_dicts(megatron_to_hf(again, shape), hf_sd)


@pytest.fixture
def megatron_single_rank():
    """Megatron's parallel state over a one-rank gloo group (skips without the extra)."""
    pytest.importorskip("megatron.core", reason="needs the rlinf-models[megatron] extra")
    from megatron.core import parallel_state

    dist = torch.distributed
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
        )
    parallel_state.initialize_model_parallel(1, 1)
    yield
    parallel_state.destroy_model_parallel()
    if started:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.gpu
def test_megatron_backend_matches_hf_logits_and_exports_hf_weights() -> None:
    """On one GPU: the megatron backend's logits equal the HF model's on a padded batch,
    and full_state_dict gives back the HF weights it was built from."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("megatron.core", reason="needs the rlinf-models[megatron] extra")
    from megatron.core import parallel_state

    from rlinf.models.train import TrainingConfig, build_backend

    dist = torch.distributed
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    try:
        torch.manual_seed(4)
        cfg = _qwen2_config(tie=True)
        hf = Qwen2ForCausalLM(cfg).cuda().eval()
        want_sd = {k: v.detach().cpu().clone() for k, v in hf.state_dict().items()}
        ids = torch.tensor([[0, 5, 6, 7], [1, 2, 3, 4]], device="cuda")
        mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], device="cuda")
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            want = hf(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        backend = build_backend(
            TrainingConfig(backend="megatron"),
            copy.deepcopy(hf),  # the backend frees the HF copy it is given
            lambda params: torch.optim.SGD(params, lr=0.1),
        )
        with torch.no_grad():
            got = backend.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        real = mask.bool()
        torch.testing.assert_close(got[real].float(), want[real].float(), atol=2e-4, rtol=1e-3)
        _equal_dicts(backend.full_state_dict(), want_sd)
    finally:
        parallel_state.destroy_model_parallel()
        dist.destroy_process_group()
