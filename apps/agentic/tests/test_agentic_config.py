"""Config errors are reported, naming the key, before any worker (or Ray) starts."""

from __future__ import annotations

import pathlib

import pytest
import ray

from rlinf.apps.agentic import load_agentic_config
from rlinf.apps.agentic.cli import main
from rlinf.core import ConfigError


@pytest.mark.parametrize(
    ("preset", "kind"),
    [("search", "multihop"), ("search_disaggregated", "multihop"), ("coder", "coding")],
)
def test_presets_load(preset, kind):
    cfg = load_agentic_config(preset)
    assert cfg.task.kind == kind
    assert cfg.sft.steps > 0 and cfg.generation.n >= 2
    assert set(cfg.placement) == {"actor", "rollout", "reward", "tools"}


def test_overrides_apply():
    cfg = load_agentic_config(
        "search", ["multi_turn.max_turns=4", "task.multihop.num_countries=7", "tools.local=true"]
    )
    assert cfg.multi_turn.max_turns == 4 and cfg.task.multihop.num_countries == 7
    assert cfg.tools.local and cfg.task.tools == ("search",)
    assert isinstance(cfg.generation.stop, tuple)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("algo.clip_hihg=0.3", "algo.clip_hihg"),
        ("task.multihop.num_peple=5", "task.multihop.num_peple"),
        ("multi_turn.max_turn=2", "multi_turn.max_turn"),
        ("runner.steps=abc", "runner.steps"),
        ("task.kind=chess", "task.kind"),
        ("task.call_format=xml", "task.call_format"),
        ("task.call_format=json", "task.call_format"),
        ("task.sft_traces=5000", "task.sft_traces"),
        ("task.format_reward=1.5", "format_reward"),
        ("tools.max_concurrency=0", "max_concurrency"),
        ("multi_turn.max_turns=0", "max_turns"),
        ("task.multihop.test_people=0", "test_people"),
        ("algo.temperature=0.5", "algo.temperature"),
        ("generation.n=1", "generation.n"),
        ("generation.do_sample=false", "generation.do_sample"),
        ("placement.tools=5", "placement"),
        ("placement.critic=0", "critic"),
        ("training.backend=", "training.backend"),
        ("model.path=/no/such/model", "model.path"),
        ("runner.metric_backends=[tb]", "runner.metric_backends"),
        ("runner.max_staleness=-1", "runner: max_staleness must be >= 0, got -1"),
        ("runner.max_staleness=1.5", "runner.max_staleness"),
        ("algo.off_policy_correction=vtrace", "off_policy_correction must be one of"),
    ],
)
def test_bad_keys_and_values_are_named(override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_agentic_config("search", [override])


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match="search"):
        load_agentic_config("no-such-preset")
    with pytest.raises(ConfigError, match="does not exist"):
        load_agentic_config("missing.yaml")


def test_cli_fails_before_starting_anything(tmp_path: pathlib.Path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "--config", "search", "--run-dir", str(run_dir), "algo.lr=fast"])
    assert code == 2
    assert "algo.lr" in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()


@pytest.mark.parametrize("name", ["rloo", "drgrpo", "reinforce_pp_baseline"])
def test_algorithm_key_and_estimators(name):
    from rlinf.algos import ADVANTAGE_ESTIMATORS

    cfg = load_agentic_config("search", [f"algo.name={name}"])
    assert cfg.algo.advantage_estimator is ADVANTAGE_ESTIMATORS.get(name)
    with pytest.raises(ConfigError, match=r"'algo\.algorithm' was renamed to 'algo\.name'"):
        load_agentic_config("search", [f"algo.algorithm={name}"])


def test_async_knobs_load():
    cfg = load_agentic_config(
        "search",
        ["runner.max_staleness=2", "algo.off_policy_correction=decoupled", "algo.is_cap=3.0"],
    )
    assert cfg.runner.max_staleness == 2
    assert cfg.algo.effective_policy_loss == "decoupled_ppo"
    assert cfg.algo.ppo_loss_config.tis_cap == 3.0
    assert load_agentic_config("search").runner.max_staleness == 0


def test_partial_rollouts_for_agents_and_what_stays_refused():
    cfg = load_agentic_config(
        "search",
        ["runner.max_staleness=1", "runner.partial_mode=abort", "runner.update_interval_tokens=3"],
    )
    assert cfg.runner.partial.mode == "abort" and cfg.runner.partial.update_interval_tokens == 3
    base = ["runner.max_staleness=1", "runner.partial_mode=continue"]
    # An engine generates a whole turn at once: no weights between decoding steps.
    with pytest.raises(
        ConfigError, match=r"runner\.partial_mode=continue: needs generation\.backend=hf"
    ):
        load_agentic_config("search", [*base, "generation.backend=vllm"])
    with pytest.raises(
        ConfigError, match=r"runner: partial_mode=continue needs max_staleness >= 1"
    ):
        load_agentic_config("search", ["runner.partial_mode=continue"])
    with pytest.raises(
        ConfigError, match=r"runner: partial_mode=continue needs weight_sync object_store"
    ):
        load_agentic_config("search", [*base, "runner.weight_sync=collective"])
