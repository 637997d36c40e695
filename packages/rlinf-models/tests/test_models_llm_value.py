"""ValueModel: response-position values, left-padding invariance, checkpoints."""

from __future__ import annotations

import pytest
import torch

from rlinf.models.llm import ValueModel, build_tiny_causal_lm, load_causal_lm


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny"))


def _layout():
    # Row 0: prompt [5, 6, 7], response [8, 9]; row 1: prompt [10], response [11, 12].
    ids = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 10, 11, 12]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    return ids, mask, 3


def test_initial_values_zero_and_shapes(tiny_dir):
    critic = ValueModel(tiny_dir)
    ids, mask, p = _layout()
    values = critic(ids, mask, p)
    assert values.shape == (2, 2) and values.dtype == torch.float32
    assert torch.equal(values, torch.zeros(2, 2))  # head_init_std=0: exactly zero at start
    with pytest.raises(ValueError, match="prompt_length"):
        critic(ids, mask, 0)


def test_values_are_prefix_states_and_padding_invariant(tiny_dir):
    critic = ValueModel(tiny_dir, head_init_std=0.5)
    ids, mask, p = _layout()
    with torch.no_grad():
        values = critic(ids, mask, p)
        # Row 1 alone, unpadded: value t is the head at the state before response token t.
        hidden = critic.backbone(input_ids=torch.tensor([[10, 11, 12]])).last_hidden_state
        expected = critic.value_head(hidden[0, 0:2]).squeeze(-1)
    torch.testing.assert_close(values[1], expected, atol=1e-5, rtol=0)
    assert values.abs().min() > 0


def test_gradients_and_checkpoint_roundtrip(tiny_dir, tmp_path):
    critic = ValueModel(tiny_dir, head_init_std=0.1)
    ids, mask, p = _layout()
    critic(ids, mask, p).pow(2).sum().backward()
    assert critic.value_head.weight.grad.abs().sum() > 0
    assert critic.backbone.layers[0].mlp.up_proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        critic.value_head.bias.fill_(0.25)  # a trained-looking head survives the round trip
        before = critic(ids, mask, p)
    critic.save_pretrained(tmp_path / "critic")
    loaded = ValueModel.from_pretrained(tmp_path / "critic")
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask, p), before)
    assert loaded.head_loaded
    # A plain LM directory: its backbone with a new (zero) head, as for HF task heads.
    fresh = ValueModel.from_pretrained(tiny_dir)
    assert not fresh.head_loaded
    with torch.no_grad():
        assert torch.equal(fresh(ids, mask, p), torch.zeros(2, 2))
    with pytest.raises(FileNotFoundError, match="missing_critic"):
        ValueModel.from_pretrained(tmp_path / "missing_critic")


def test_from_causal_lm_module_shares_body(tiny_dir):
    model, _ = load_causal_lm(tiny_dir)
    critic = ValueModel(model)
    assert critic.backbone is model.model
    ids, mask, p = _layout()
    assert critic(ids, mask, p).shape == (2, 2)
    with pytest.raises(TypeError, match="backbone"):
        ValueModel(3)
