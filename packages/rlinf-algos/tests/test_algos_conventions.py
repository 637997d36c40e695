"""Registry calling conventions: every built-in entry called through its spec, against
hand-computed values; the ``abs`` KL estimator; user registrations."""

from __future__ import annotations

import math

import pytest
import torch

import rlinf.algos as algos
from rlinf.algos import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    POLICY_LOSSES,
    AdvantageInputs,
    PolicyLossInputs,
    PPOLossConfig,
)

# Two prompts x two samples, responses of 2 and 3 valid tokens (right-padded to 3).
OUTCOMES = torch.tensor([1.0, 0.0, 3.0, 1.0])
MASK = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)


def _llm_inputs(**kw) -> AdvantageInputs:
    token_rewards = torch.zeros(4, 3)
    token_rewards[0, 1], token_rewards[1, 2], token_rewards[2, 0], token_rewards[3, 2] = OUTCOMES
    return AdvantageInputs(rewards=token_rewards, mask=MASK, outcomes=OUTCOMES, group_size=2, **kw)


def _spread(per_row: list[float]) -> torch.Tensor:
    return torch.tensor(per_row)[:, None] * MASK.float()


def test_abs_kl_estimator():
    lp = torch.tensor([math.log(0.5), math.log(0.25), -1.0])
    ref = torch.tensor([math.log(0.25), math.log(0.5), -1.0])
    torch.testing.assert_close(
        algos.kl_estimate(lp, ref, "abs"), torch.tensor([math.log(2.0), math.log(2.0), 0.0])
    )
    lp = torch.tensor([0.3, -0.2], requires_grad=True)
    KL_ESTIMATORS.get("abs")(lp, torch.zeros(2)).sum().backward()
    torch.testing.assert_close(lp.grad, torch.tensor([1.0, -1.0]))


@pytest.mark.parametrize(
    ("name", "per_row"),
    [
        # groups (1, 0) and (3, 1): mean 0.5 / 2, unbiased std sqrt(0.5) / sqrt(2).
        (
            "grpo",
            [
                0.5 / (math.sqrt(0.5) + 1e-6),
                -0.5 / (math.sqrt(0.5) + 1e-6),
                1 / (math.sqrt(2) + 1e-6),
                -1 / (math.sqrt(2) + 1e-6),
            ],
        ),
        ("drgrpo", [0.5, -0.5, 1.0, -1.0]),
        # leave-one-out baseline of a pair is the other sample.
        ("rloo", [1.0, -1.0, 2.0, -2.0]),
    ],
)
def test_group_estimators_on_outcomes(name, per_row):
    spec = ADVANTAGE_ESTIMATORS.get(name)
    assert spec.group_relative and not spec.needs_values and not spec.uses_step_rewards
    adv, returns = spec(_llm_inputs())
    assert returns is None
    torch.testing.assert_close(adv, _spread(per_row))


def test_reinforce_pp_baseline_on_outcomes():
    adv, _ = ADVANTAGE_ESTIMATORS.get("reinforce_pp_baseline")(_llm_inputs())
    centered = _spread([0.5, -0.5, 1.0, -1.0])
    vals = centered[MASK]  # 10 valid tokens: 0.5 x2, -0.5 x3, 1.0 x1, -1.0 x3
    mean = vals.mean()
    std = vals.var(unbiased=True).sqrt()
    torch.testing.assert_close(adv, torch.where(MASK, (centered - mean) / std, 0.0))


def test_step_reward_estimators_on_token_rewards():
    inp = _llm_inputs(gamma=1.0, lam=1.0, values=torch.full((4, 3), 0.5))
    # gamma = 1: every valid token's return-to-go is its row's outcome.
    rtg = _spread(OUTCOMES.tolist())
    adv, ret = ADVANTAGE_ESTIMATORS.get("discounted_returns")(inp)
    torch.testing.assert_close(adv, rtg)
    torch.testing.assert_close(ret, rtg)
    adv, ret = ADVANTAGE_ESTIMATORS.get("gae")(inp)  # lam = 1: returns minus values
    torch.testing.assert_close(ret, rtg)
    torch.testing.assert_close(adv, torch.where(MASK, rtg - 0.5, 0.0))
    adv, ret = ADVANTAGE_ESTIMATORS.get("reinforce_pp")(inp)
    vals = rtg[MASK]
    expected = torch.where(MASK, (rtg - vals.mean()) / vals.var().sqrt(), 0.0)
    torch.testing.assert_close(adv, expected)
    assert ret is None


def test_group_estimators_per_step_compare_envs_at_each_step():
    # Two envs (one group), three steps; env 0's episode ends after step 0.
    rewards = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 4.0]])
    terminated = torch.tensor([[True, False, False], [False, False, False]])
    inp = AdvantageInputs(rewards=rewards, terminated=terminated, group_size=2, gamma=0.5)
    # Returns-to-go: env 0 [1, 2, 0]; env 1 [1, 2, 4].
    rtg = torch.tensor([[1.0, 2.0, 0.0], [1.0, 2.0, 4.0]])
    adv, ret = ADVANTAGE_ESTIMATORS.get("drgrpo")(inp)
    torch.testing.assert_close(ret, rtg)
    torch.testing.assert_close(adv, torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, 2.0]]))
    adv, _ = ADVANTAGE_ESTIMATORS.get("rloo")(inp)
    torch.testing.assert_close(adv, torch.tensor([[0.0, 0.0, -4.0], [0.0, 0.0, 4.0]]))
    with pytest.raises(ValueError, match="every step must be valid"):
        ADVANTAGE_ESTIMATORS.get("grpo")(
            AdvantageInputs(rewards=rewards, mask=MASK[:2], group_size=2)
        )


def test_specs_check_their_needs():
    with pytest.raises(ValueError, match="needs the critic's values"):
        ADVANTAGE_ESTIMATORS.get("gae")(_llm_inputs())
    with pytest.raises(ValueError, match="group_size >= 2"):
        ADVANTAGE_ESTIMATORS.get("rloo")(AdvantageInputs(rewards=torch.zeros(2, 3)))
    inp = PolicyLossInputs(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="needs rollout_log_probs"):
        POLICY_LOSSES.get("decoupled_ppo")(inp, PPOLossConfig())


def test_policy_loss_specs_equal_the_functions():
    torch.manual_seed(0)
    lp, old, behav, adv = (torch.randn(2, 4) * 0.3 for _ in range(4))
    ent = torch.rand(2, 4)
    cfg = PPOLossConfig(clip_low=0.1, clip_high=0.2, entropy_coef=0.01)
    loss, m = POLICY_LOSSES.get("ppo")(PolicyLossInputs(lp, old, adv, entropy=ent), cfg)
    ref, _ = algos.ppo_policy_loss(lp, old, adv, None, cfg, entropy=ent)
    torch.testing.assert_close(loss, ref)
    # Decoupled: w * max(-A r, -A clip(r)), r = pi / pi_prox, w = pi_prox / pi_behav (cap 5).
    inp = PolicyLossInputs(lp, old, adv, rollout_log_probs=behav, entropy=ent)
    loss, m = POLICY_LOSSES.get("decoupled_ppo")(inp, cfg)
    r = torch.exp(lp - old)
    w = torch.exp(old - behav).clamp(max=5.0)
    tok = w * torch.maximum(-adv * r, -adv * r.clamp(0.9, 1.2))
    torch.testing.assert_close(loss, tok.mean() - 0.01 * ent.mean())
    torch.testing.assert_close(m["entropy"], ent.mean())


def test_user_registered_entries_are_called_through_the_convention():
    name = "test_conventions_adv"

    @algos.advantage_estimator(name, group_relative=True)
    def _best_of_group(inp: AdvantageInputs):
        g = inp.outcomes.view(-1, inp.group_size)
        adv = (g == g.max(dim=1, keepdim=True).values).float().reshape(-1)
        return algos.broadcast_to_tokens(adv, inp.mask), None

    try:
        adv, _ = ADVANTAGE_ESTIMATORS.get(name)(_llm_inputs())
        torch.testing.assert_close(adv, _spread([1.0, 0.0, 1.0, 0.0]))
        with pytest.raises(ValueError, match="already registered"):
            algos.advantage_estimator(name)(_best_of_group)
    finally:
        ADVANTAGE_ESTIMATORS.unregister(name)
    assert name not in ADVANTAGE_ESTIMATORS
    with pytest.raises(KeyError, match="unknown advantage estimator"):
        ADVANTAGE_ESTIMATORS.unregister(name)
