"""A user's own advantage estimator, policy loss and KL estimator, registered in a module of
theirs, selected from the app config through ``algo.plugins`` and used by the updater (in
this process and in a fresh one, as in a worker)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from rlinf.algos import ADVANTAGE_ESTIMATORS, KL_ESTIMATORS, POLICY_LOSSES
from rlinf.apps.math import load_math_config
from rlinf.core import ConfigError
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    LLMUpdater,
    TinyLMConfig,
    build_tiny_causal_lm,
    load_causal_lm,
    response_logprobs,
)

MODULE = "rlinf_test_user_algos"
PLUGIN = textwrap.dedent(
    """
    import torch
    from rlinf.algos import KL_ESTIMATORS, advantage_estimator, broadcast_to_tokens, policy_loss

    SEEN = []

    @advantage_estimator("user_top1", group_relative=True)
    def top1(inp):
        g = inp.outcomes.view(-1, inp.group_size)
        adv = torch.where(g == g.max(dim=1, keepdim=True).values, 1.0, -0.5).reshape(-1)
        return broadcast_to_tokens(adv, inp.mask), None

    @policy_loss("user_reinforce")
    def reinforce(inp, config):
        SEEN.append(inp.advantages.detach().clone())
        loss = -(inp.advantages * inp.log_probs)[inp.mask].mean()
        return loss, {"pg_loss": loss.detach()}

    # Offset by 1 so that the test can tell this estimator was the one used.
    @KL_ESTIMATORS.register("user_sq")
    def sq(log_probs, ref_log_probs):
        return (log_probs - ref_log_probs) ** 2 + 1.0
    """
)
OVERRIDES = [
    f"algo.plugins=[{MODULE}]",
    "algo.name=user_top1",
    "algo.policy_loss=user_reinforce",
    "algo.kl_estimator=user_sq",
    "algo.kl_coef=0.1",
]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    (tmp_path / f"{MODULE}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    # The registries are process-wide: leave them as they were for the other tests.
    if MODULE in sys.modules:
        del sys.modules[MODULE]
        ADVANTAGE_ESTIMATORS.unregister("user_top1")
        POLICY_LOSSES.unregister("user_reinforce")
        KL_ESTIMATORS.unregister("user_sq")


def test_unknown_names_fail_at_config_loading_listing_the_choices(plugin_dir):
    with pytest.raises(ConfigError, match=r"algo: name: unknown advantage estimator 'user_top1'"):
        load_math_config("grpo", ["algo.name=user_top1"])  # plugin not listed
    with pytest.raises(ConfigError, match=r"registered: .*drgrpo, gae, grpo, .*rloo"):
        load_math_config("grpo", [f"algo.plugins=[{MODULE}]", "algo.name=nope"])
    with pytest.raises(ConfigError, match=r"plugins: cannot import 'no_such_user_module'"):
        load_math_config("grpo", ["algo.plugins=[no_such_user_module]"])


def test_plugin_selected_from_yaml_drives_the_updater(plugin_dir, tmp_path):
    cfg = load_math_config("grpo", OVERRIDES)
    model_dir = build_tiny_causal_lm(
        tmp_path / "tiny",
        TinyLMConfig(
            hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64
        ),
    )
    torch.set_num_threads(1)
    model, tok = load_causal_lm(model_dir)
    ref, _ = load_causal_lm(model_dir)
    prompts = [tok("1+2=")["input_ids"], tok("3+4=")["input_ids"]]
    batch = HFGenerationBackend(model, tok).generate(
        prompts, GenerationConfig(max_new_tokens=4, n=3, seed=0, temperature=0.7)
    )
    mask = batch.response_mask.bool()
    with torch.no_grad():
        logp, _ = response_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.prompt_length, temperature=0.7
        )
    rewards = torch.tensor([0.0, 1.0, 0.5, 1.0, 1.0, 0.0])
    metrics = LLMUpdater(model, cfg.algo, ref_model=ref).update(batch, rewards)

    # Best of each group of 3 gets 1, the others -0.5 (ties: both best).
    per_row = torch.tensor([-0.5, 1.0, -0.5, 1.0, 1.0, -0.5])
    expected_adv = torch.where(mask, per_row[:, None], 0.0)
    seen = sys.modules[MODULE].SEEN
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], expected_adv[:, : seen[0].shape[1]])
    assert metrics["train/advantage_abs_mean"] == pytest.approx(
        float(expected_adv.abs()[mask].mean())
    )
    assert metrics["train/pg_loss"] == pytest.approx(
        float(-(expected_adv * logp)[mask].mean()), rel=1e-4
    )
    # Reference = initial policy: the squared log-ratio is 0, so only the offset remains.
    assert metrics["train/kl"] == pytest.approx(1.0)


def test_worker_process_imports_the_plugins_itself(plugin_dir):
    algo = load_math_config("grpo", OVERRIDES).algo
    code = textwrap.dedent(
        f"""
        import pickle, sys, torch
        from rlinf.algos import ADVANTAGE_ESTIMATORS
        from rlinf.models.llm import LLMUpdater
        cfg = pickle.loads(sys.stdin.buffer.read())  # as a worker receives it: no checks ran
        assert "user_top1" not in ADVANTAGE_ESTIMATORS
        assert cfg.group_advantages  # the actor worker asks before building the updater
        up = LLMUpdater(torch.nn.Linear(2, 2), cfg, ref_model=torch.nn.Linear(2, 2))
        assert up.estimator is ADVANTAGE_ESTIMATORS.get("user_top1")
        assert "{MODULE}" in sys.modules
        """
    )
    subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(algo),
        check=True,
        env={**os.environ, "PYTHONPATH": str(plugin_dir)},
    )
