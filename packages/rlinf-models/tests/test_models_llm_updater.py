"""LLMUpdater on a tiny Qwen2: advantages vs hand-computed values, the direction of a GRPO
step, zero gradient from zero-advantage groups, KL 0 against an identical reference,
gradient accumulation that does not change the update, PPO / REINFORCE++ / DAPO paths."""

from __future__ import annotations

import copy

import pytest
import torch

from rlinf.algos import ADVANTAGE_ESTIMATORS
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMUpdater,
    LLMUpdaterConfig,
    TinyLMConfig,
    build_tiny_causal_lm,
    group_size_of,
    load_causal_lm,
    outcome_token_rewards,
    response_logprobs,
    token_advantages,
)


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
    cfg = GenerationConfig(max_new_tokens=6, n=4, seed=0)
    return HFGenerationBackend(model, tok).generate(prompts, cfg)


def _seq_logp(model, batch) -> torch.Tensor:
    with torch.no_grad():
        logp, _ = response_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.prompt_length
        )
    return (logp * batch.response_mask).sum(dim=1)


def test_group_size_and_outcome_rewards_by_hand():
    assert group_size_of(torch.tensor([0, 0, 0, 1, 1, 1])) == 3
    with pytest.raises(ValueError, match="consecutively"):
        group_size_of(torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="group sizes"):
        group_size_of(torch.tensor([0, 0, 1]))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = outcome_token_rewards(torch.tensor([2.0, -1.0]), mask)
    assert torch.equal(out, torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]))


def test_token_advantages_by_hand():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]])
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    adv, ret = token_advantages(ADVANTAGE_ESTIMATORS.get("grpo"), rewards, mask, 2)
    # Group (1, 0): mean 0.5, sample std sqrt(0.5); group (1, 1): zero advantage.
    a = 0.5 / (0.5**0.5 + 1e-6)
    expected = torch.tensor([[a, a, 0.0], [-a, 0.0, 0.0], [0.0] * 3, [0.0] * 3])
    torch.testing.assert_close(adv, expected)
    assert ret is None
    # Dr.GRPO: no std scaling.
    adv, _ = token_advantages(ADVANTAGE_ESTIMATORS.get("drgrpo"), rewards, mask, 2)
    assert adv[0, 0] == pytest.approx(0.5) and adv[1, 0] == pytest.approx(-0.5)
    # REINFORCE++, gamma 1: returns are 1 on the 8 valid tokens of rows 0, 2, 3 and 0 on
    # row 1's one token; whitened with mean 8/9 and (unbiased) std 1/3: 1/3 and -8/3.
    adv, _ = token_advantages(ADVANTAGE_ESTIMATORS.get("reinforce_pp"), rewards, mask, 2)
    assert adv[0, 0] == pytest.approx(1 / 3, abs=1e-4)
    assert adv[1, 0] == pytest.approx(-8 / 3, abs=1e-4)
    assert adv[0, 2] == 0.0


def test_grpo_step_raises_logprob_of_rewarded_responses(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    before = _seq_logp(model, batch)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    cfg = LLMUpdaterConfig(name="grpo", lr=3e-3)
    metrics = LLMUpdater(model, cfg).update(batch, rewards)
    delta = _seq_logp(model, batch) - before
    assert delta[rewards == 1].min() > 0
    assert delta[rewards == 0].mean() < 0
    assert metrics["train/grad_norm"] > 0
    # Strictly on-policy: ratio 1 everywhere, nothing clipped; rollout vs train agree.
    assert metrics["train/clip_frac"] == 0.0
    assert metrics["train/logprob_mismatch"] < 1e-4
    assert metrics["train/kept_responses"] == 8.0


def test_zero_advantage_groups_give_zero_gradient(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    start = copy.deepcopy(model.state_dict())
    rewards = torch.tensor([1.0] * 4 + [0.0] * 4)
    metrics = LLMUpdater(model, LLMUpdaterConfig(lr=1e-2)).update(batch, rewards)
    assert metrics["train/grad_norm"] == 0.0
    assert metrics["train/pg_loss"] == 0.0
    for name, value in model.state_dict().items():
        assert torch.equal(value, start[name]), name


def test_dynamic_sampling_drops_flat_groups(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    rewards = torch.tensor([1.0] * 4 + [0.0, 1.0, 0.0, 0.0])
    cfg = LLMUpdaterConfig(name="dapo", lr=1e-3, clip_high=0.28, dynamic_sampling=True)
    metrics = LLMUpdater(model, cfg).update(batch, rewards)
    assert metrics["train/dropped_groups"] == 1.0
    assert metrics["train/kept_responses"] == 4.0
    # Everything flat: no update at all.
    start = copy.deepcopy(model.state_dict())
    metrics = LLMUpdater(model, cfg).update(batch, torch.zeros(8))
    assert metrics["train/kept_responses"] == 0.0 and "train/loss" not in metrics
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_kl_is_zero_against_identical_reference(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    ref, _ = load_causal_lm(model_dir)
    cfg = LLMUpdaterConfig(lr=1e-3, kl_coef=0.1, kl_estimator="k3")
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    updater = LLMUpdater(model, cfg, ref_model=ref)
    first = updater.update(batch, rewards)
    assert abs(first["train/kl"]) < 1e-6
    second = updater.update(batch, rewards)
    assert second["train/kl"] > 1e-8  # the policy moved away from the reference
    with pytest.raises(ValueError, match="ref_model"):
        LLMUpdater(model, cfg)


def test_micro_batches_accumulate_to_the_same_update(model_dir, batch):
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0, 0.0, 0.2, 1.0, 0.0])
    results = []
    for micro in (0, 2, 3):
        model, _ = load_causal_lm(model_dir)
        cfg = LLMUpdaterConfig(lr=1e-3, micro_batch_size=micro, max_grad_norm=None)
        metrics = LLMUpdater(model, cfg).update(batch, rewards)
        results.append((metrics["train/grad_norm"], model.state_dict()))
    for norm, state in results[1:]:
        assert norm == pytest.approx(results[0][0], rel=1e-4)
        for k, v in state.items():
            torch.testing.assert_close(v, results[0][1][k], atol=1e-6, rtol=1e-5)


def test_several_epochs_recompute_old_logprobs_and_clip(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    cfg = LLMUpdaterConfig(lr=2e-2, epochs=4, mini_batch_size=4, clip_low=0.05, clip_high=0.05)
    metrics = LLMUpdater(model, cfg).update(batch, rewards)
    assert metrics["train/logprob_mismatch"] < 1e-4  # before any step: same weights
    assert metrics["train/clip_frac"] > 0  # later mini-batches moved past the clip range


def test_reinforce_pp_with_kl_penalty(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    ref, _ = load_causal_lm(model_dir)
    cfg = LLMUpdaterConfig(name="reinforce_pp", lr=3e-3, kl_coef=0.01, kl_estimator="k1")
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    before = _seq_logp(model, batch)
    metrics = LLMUpdater(model, cfg, ref_model=ref).update(batch, rewards)
    delta = _seq_logp(model, batch) - before
    assert delta[rewards == 1].mean() > delta[rewards == 0].mean()
    assert metrics["train/kl"] == pytest.approx(0.0, abs=1e-6)


def test_lr_warmup_and_schedules(model_dir):
    model, _ = load_causal_lm(model_dir)
    cfg = LLMUpdaterConfig(lr=1.0, lr_warmup_steps=2, lr_schedule="linear")
    updater = LLMUpdater(model, cfg, total_updates=6)
    assert [updater.lr_at(u) for u in range(6)] == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    cos = LLMUpdater(model, LLMUpdaterConfig(lr=1.0, lr_schedule="cosine"), total_updates=4)
    assert [cos.lr_at(u) for u in range(3)] == pytest.approx([1.0, 0.853553, 0.5], abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "sac"}, r"name: unknown advantage estimator 'sac'; registered: .*dapo.*rloo"),
        ({"policy_loss": "a2c"}, r"policy_loss: unknown policy loss 'a2c'; registered: "),
        ({"plugins": ["no_such_plugin_mod"]}, r"plugins: cannot import 'no_such_plugin_mod'"),
        ({"loss_agg_mode": "mean"}, "loss_agg_mode"),
        ({"kl_estimator": "k9"}, r"kl_estimator: .*registered: abs, k1, k2, k3"),
        ({"overlong_buffer": 4}, "max_response_length"),
        ({"mini_batch_size": 6, "micro_batch_size": 4}, "micro_batch_size"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_config_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LLMUpdaterConfig(**kwargs)


def test_bad_batches_are_rejected(model_dir, batch):
    model, _ = load_causal_lm(model_dir)
    updater = LLMUpdater(model, LLMUpdaterConfig())
    with pytest.raises(ValueError, match="rewards"):
        updater.update(batch, torch.zeros(3))
    single = batch.select(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=">= 2 samples per prompt"):
        updater.update(single, torch.zeros(2))


def test_ppo_trains_critic_toward_returns(model_dir, batch):
    from rlinf.models.llm._value import ValueModel

    model, _ = load_causal_lm(model_dir)
    critic = ValueModel.from_pretrained(model_dir)
    cfg = LLMUpdaterConfig(name="ppo", lr=1e-3, critic_lr=1e-2, epochs=2, value_clip=None)
    updater = LLMUpdater(model, cfg, critic=critic)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    losses = [updater.update(batch, rewards)["train/vf_loss"] for _ in range(4)]
    # Fresh head: every value 0, so the first loss is 0.5 * mean(return^2) over tokens.
    assert losses[0] > 0 and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="critic"):
        LLMUpdater(model, cfg)
