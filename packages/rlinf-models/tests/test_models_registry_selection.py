"""The updaters select rlinf.algos registry entries by name: RLOO, Dr.GRPO and the
REINFORCE++ baseline in the LLM updater (advantages vs hand-computed values), the decoupled
loss and the abs KL estimator there, and the errors for unknown names and renamed keys."""

from __future__ import annotations

import pytest
import torch

from rlinf.algos import ADVANTAGE_ESTIMATORS
from rlinf.core import ConfigError, load_config
from rlinf.models.embodied import UpdaterConfig
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMUpdater,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
    token_advantages,
)

MASK = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]], dtype=torch.bool)
REWARDS = torch.tensor([1.0, 0.0, 3.0, 1.0])


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
        prompts, GenerationConfig(max_new_tokens=4, n=2, seed=0)
    )


@pytest.mark.parametrize(
    ("name", "per_row"),
    [
        ("drgrpo", [0.5, -0.5, 1.0, -1.0]),  # minus the group means 0.5 and 2
        ("rloo", [1.0, -1.0, 2.0, -2.0]),  # minus the other sample of the pair
    ],
)
def test_llm_group_estimators_by_hand(name, per_row):
    cfg = LLMUpdaterConfig(name=name)
    assert cfg.group_advantages and not cfg.uses_critic and not cfg.kl_in_reward
    adv, ret = token_advantages(cfg.advantage_estimator, REWARDS, MASK, 2)
    torch.testing.assert_close(adv, torch.tensor(per_row)[:, None] * MASK)
    assert ret is None


def test_llm_reinforce_pp_baseline_by_hand():
    adv, _ = token_advantages(
        LLMUpdaterConfig(name="reinforce_pp_baseline").advantage_estimator, REWARDS, MASK, 2
    )
    # Centered 0.5 (2 tokens), -0.5 (1), 1 (3), -1 (3): mean 0.5/9, whitened over 9 tokens.
    vals = torch.tensor([0.5] * 2 + [-0.5] + [1.0] * 3 + [-1.0] * 3)
    mean, std = vals.mean(), vals.std()
    expected = torch.tensor([0.5, -0.5, 1.0, -1.0])[:, None] * torch.ones(1, 3)
    torch.testing.assert_close(adv, torch.where(MASK, (expected - mean) / std, 0.0))


@pytest.mark.parametrize("name", ["rloo", "drgrpo", "reinforce_pp_baseline"])
def test_llm_updater_runs_selected_estimator(model_dir, batch, name):
    model, _ = load_causal_lm(model_dir)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    metrics = LLMUpdater(model, LLMUpdaterConfig(name=name, lr=1e-3)).update(batch, rewards)
    expected, _ = token_advantages(
        ADVANTAGE_ESTIMATORS.get(name), rewards, batch.response_mask.bool(), 2
    )
    valid = batch.response_mask.bool()
    assert metrics["train/advantage_abs_mean"] == pytest.approx(float(expected.abs()[valid].mean()))


def test_llm_decoupled_loss_and_abs_kl(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    ref, _ = load_causal_lm(model_dir)
    cfg = LLMUpdaterConfig(
        lr=1e-3, policy_loss="decoupled_ppo", kl_coef=0.1, kl_estimator="abs", epochs=2
    )
    metrics = LLMUpdater(model, cfg, ref_model=ref).update(batch, torch.tensor([1.0, 0, 0, 1]))
    # The reference equals the initial policy: |log p - log ref| is 0 in the first step and
    # > 0 once the policy has moved (the mean over the two steps).
    assert metrics["train/kl"] > 0
    assert "train/clip_frac" in metrics and "train/pg_loss" in metrics


def test_old_keys_name_the_new_one():
    with pytest.raises(ConfigError, match=r"'algorithm' was renamed to 'name'"):
        load_config(LLMUpdaterConfig, {"algorithm": "grpo"})
    with pytest.raises(ConfigError, match=r"'algo' was renamed to 'name'"):
        load_config(UpdaterConfig, {"algo": "ppo"})
    assert UpdaterConfig(decoupled=True).loss is UpdaterConfig(policy_loss="decoupled_ppo").loss
    assert UpdaterConfig(decoupled=True, policy_loss="decoupled_ppo").loss.decoupled
