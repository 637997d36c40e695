import pytest

import rlinf.algos as algos
from rlinf.algos import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    POLICY_LOSSES,
    Registry,
)


def test_register_and_get():
    reg: Registry = Registry("widget")
    reg.register("a", 1)

    @reg.register("b")
    def fn():
        return 2

    assert reg.get("a") == 1
    assert reg["b"]() == 2
    assert "a" in reg and "z" not in reg
    assert reg.names() == ["a", "b"]
    assert list(reg) == ["a", "b"]
    assert len(reg) == 2


def test_duplicate_rejected():
    reg: Registry = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", 2)
    assert reg.get("a") == 1


def test_miss_lists_valid_names():
    reg: Registry = Registry("widget")
    reg.register("alpha", 1)
    reg.register("beta", 2)
    with pytest.raises(KeyError, match="unknown widget 'gamma'; valid names: alpha, beta"):
        reg.get("gamma")


def test_empty_name_rejected():
    with pytest.raises(ValueError, match="non-empty string"):
        Registry("widget").register("", 1)


def test_builtin_registries_filled():
    assert ADVANTAGE_ESTIMATORS.names() == [
        "discounted_returns",
        "drgrpo",
        "gae",
        "grpo",
        "reinforce_pp",
        "reinforce_pp_baseline",
        "rloo",
    ]
    assert POLICY_LOSSES.names() == ["decoupled_ppo", "ppo"]
    assert LOSS_AGGREGATIONS.names() == sorted(algos.AGG_MODES)
    assert KL_ESTIMATORS.names() == ["abs", "k1", "k2", "k3"]
    assert isinstance(ADVANTAGE_ESTIMATORS.get("gae"), algos.AdvantageEstimator)
    assert isinstance(POLICY_LOSSES.get("ppo"), algos.PolicyLoss)
    assert KL_ESTIMATORS.get("k3") is algos.kl_k3
    assert KL_ESTIMATORS.get("abs") is algos.kl_abs


def test_spec_registries_reject_plain_functions():
    with pytest.raises(TypeError, match="advantage estimator 'raw' must be a AdvantageEstimator"):
        ADVANTAGE_ESTIMATORS.register("raw", algos.grpo_advantages)
    with pytest.raises(TypeError, match="policy loss 'raw' must be a PolicyLoss"):
        POLICY_LOSSES.register("raw", algos.ppo_policy_loss)
    assert "raw" not in ADVANTAGE_ESTIMATORS and "raw" not in POLICY_LOSSES


def test_builtin_registry_miss_message():
    with pytest.raises(KeyError, match="valid names: abs, k1, k2, k3"):
        KL_ESTIMATORS.get("k4")


def test_public_api_is_exported():
    for name in algos.__all__:
        assert hasattr(algos, name), name
