"""``algo.off_policy_correction`` on a stale batch (generated before the weights moved):
the importance-weight metrics against weights computed by hand from the two policies'
log-probs, and the config's errors."""

from __future__ import annotations

import copy

import pytest
import torch

from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMUpdater,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
    response_logprobs,
)

REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
CAP = 1.05


@pytest.fixture(scope="module")
def stale():
    """A batch from the initial weights and the weights after one large step on it."""
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        tiny = TinyLMConfig(
            hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
        )
        model, tok = load_causal_lm(build_tiny_causal_lm(d, tiny))
    prompts = [tok("1+2=", add_special_tokens=False)["input_ids"], tok("30-4=")["input_ids"]]
    batch = HFGenerationBackend(model, tok).generate(
        prompts, GenerationConfig(max_new_tokens=6, n=4, seed=0)
    )
    LLMUpdater(model, LLMUpdaterConfig(lr=3e-2)).update(batch, REWARDS)
    return model, batch


def _weights(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid tokens' ``pi_now / pi_rollout`` and the mask."""
    with torch.no_grad():
        logp, _ = response_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.prompt_length
        )
    mask = batch.response_mask.bool()
    return torch.exp(logp - batch.rollout_logprobs)[mask], mask


@pytest.mark.parametrize("correction", ["none", "tis", "mis", "decoupled"])
def test_importance_weight_metrics_match_hand_values(stale, correction):
    model, batch = stale
    w, _ = _weights(model, batch)
    over = w > CAP
    # The weights moved: some tokens lie above the cap, some below.
    assert 0 < int(over.sum()) < w.numel()
    cfg = LLMUpdaterConfig(lr=1e-3, off_policy_correction=correction, is_cap=CAP)
    m = LLMUpdater(copy.deepcopy(model), cfg).update(batch, REWARDS)
    expected = {
        "none": w.mean(),  # reported uncapped, not applied
        "tis": w.clamp(max=CAP).mean(),
        "mis": torch.where(over, 0.0, w).mean(),
    }
    if correction == "decoupled":
        # Over the tokens kept (all, when truncating): pi_prox / pi_behav capped.
        assert m["train/is_weight_mean"] == pytest.approx(float(w.clamp(max=CAP).mean()), 1e-4)
    else:
        assert m["train/is_weight_mean"] == pytest.approx(float(expected[correction]), 1e-4)
    frac = float(over.float().mean())
    assert m["train/is_clip_frac"] == pytest.approx(0.0 if correction == "none" else frac)
    assert cfg.effective_policy_loss == ("decoupled_ppo" if correction == "decoupled" else "ppo")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"off_policy_correction": "vtrace"}, r"off_policy_correction must be one of"),
        ({"off_policy_correction": "tis", "is_cap": 0.0}, r"is_cap must be > 0"),
        (
            {"off_policy_correction": "tis", "policy_loss": "decoupled_ppo"},
            r"policy_loss must stay 'ppo'",
        ),
        ({"off_policy_correction": "mis", "tis_cap": 2.0}, r"leave tis_cap unset"),
    ],
)
def test_bad_corrections_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LLMUpdaterConfig(**kwargs)
