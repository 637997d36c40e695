"""Config errors are reported, naming the key, before any worker (or Ray) starts."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import ray

from rlinf.apps.math import load_math_config
from rlinf.apps.math.cli import main
from rlinf.core import ConfigError


@pytest.mark.parametrize("preset", ["grpo", "dapo", "ppo", "reinforce_pp", "grpo_disaggregated"])
def test_presets_load(preset):
    cfg = load_math_config(preset)
    assert cfg.algo.name == preset.split("_disagg")[0]
    assert cfg.sft.steps > 0 and cfg.generation.n >= 2


def test_overrides_apply():
    cfg = load_math_config("grpo", ["algo.clip_high=0.28", "runner.steps=3", "sft.lora=true"])
    assert cfg.algo.clip_high == 0.28 and cfg.runner.steps == 3 and cfg.sft.lora
    assert cfg.data.arithmetic.template == "{expression}="
    assert dict(cfg.placement) == {"actor": "0", "rollout": "0", "reward": "0"}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("algo.clip_hihg=0.3", "algo.clip_hihg"),
        ("runner.steps=abc", "runner.steps"),
        ("algo.name=sac", r"algo: name: unknown advantage estimator 'sac'; registered: "),
        ("algo.algorithm=grpo", r"'algo.algorithm' was renamed to 'algo.name'"),
        ("algo.temperature=0.5", "algo.temperature"),
        ("generation.n=1", "generation.n"),
        ("generation.do_sample=false", "generation.do_sample"),
        ("algo.loss_agg_mode=mean", "loss_agg_mode"),
        ("data.arithmetic.operators=[x]", "operators"),
        ("sft.response_format=x", "response_format"),
        ("training.backend=", "training.backend"),
        ("placement.rollout=5", "placement"),
        ("placement.critic=0", "critic"),
        ("model.path=/no/such/model", "model.path"),
        ("runner.metric_backends=[tb]", "runner.metric_backends"),
        ("data.source=files", "train_files"),
        ("runner.max_staleness=-1", "runner: max_staleness must be >= 0, got -1"),
        ("runner.max_staleness=1.5", "runner.max_staleness"),
        ("algo.off_policy_correction=vtrace", "off_policy_correction must be one of"),
    ],
)
def test_bad_keys_and_values_are_named(override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_math_config("grpo", [override])


def test_data_parallel_actor_config():
    # The default trains in one process as before; two actor ranks pick fsdp2.
    assert load_math_config("grpo").training.backend_for(1) == "torch"
    cfg = load_math_config("grpo", ["placement.actor=0-1"])
    assert cfg.training.backend_for(2) == "fsdp2"
    assert load_math_config("grpo", ["training.cpu_offload=true"]).training.backend_for(1) == (
        "fsdp2"
    )
    # Phase offload works with the one-process backend: it does not force fsdp2.
    phase = load_math_config("grpo", ["training.offload=phase"]).training
    assert phase.offload == "phase" and phase.backend_for(1) == "torch"
    assert load_math_config("grpo").training.offload == "none"
    bad = {
        ("placement.actor=0-1", "training.backend=torch"): r"training\.backend: 'torch' trains "
        r"in one process but placement\.actor has 2 ranks",
        ("training.backend=torch", "training.mixed_precision=bf16"): r"training\.backend: "
        r"'torch' supports neither",
        (
            "cluster.devices=4",
            "placement.actor=0-3",
            "runner.prompts_per_step=1",
            "generation.n=2",
        ): r"placement\.actor: 4 actor ranks but a step has only 2 responses",
        ("placement.actor=0-1", "algo.mini_batch_size=1"): r"algo\.mini_batch_size: 1 responses "
        r"per mini-batch cannot be split across placement\.actor's 2 ranks",
        ("training.offload=always",): r"training\.offload: 'none' or 'phase', got 'always'",
        ("training.offload=phase", "training.cpu_offload=true"): r"training\.offload: 'phase' "
        r"and training\.cpu_offload exclude each other",
    }
    for overrides, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_math_config("grpo", list(overrides))


def test_dapo_overlong_needs_matching_budget():
    with pytest.raises(ConfigError, match="max_response_length"):
        load_math_config("dapo", ["generation.max_new_tokens=20"])


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match="grpo"):
        load_math_config("no-such-preset")
    with pytest.raises(ConfigError, match="does not exist"):
        load_math_config("missing.yaml")


def test_cli_fails_before_starting_anything(tmp_path: pathlib.Path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "--config", "grpo", "--run-dir", str(run_dir), "algo.lr=fast"])
    assert code == 2
    assert "algo.lr" in capsys.readouterr().err
    assert not run_dir.exists()
    assert not ray.is_initialized()


@pytest.mark.parametrize("name", ["rloo", "drgrpo", "reinforce_pp_baseline"])
def test_every_group_estimator_is_selectable(name):
    from rlinf.algos import ADVANTAGE_ESTIMATORS

    cfg = load_math_config("grpo", [f"algo.name={name}"])
    assert cfg.algo.advantage_estimator is ADVANTAGE_ESTIMATORS.get(name)
    with pytest.raises(ConfigError, match=rf"generation\.n: algo\.name {name} needs >= 2"):
        load_math_config("grpo", [f"algo.name={name}", "generation.n=1"])


def test_loading_the_config_imports_neither_ray_nor_transformers():
    # A bad key or path must be named in about a second, not after the model code loads.
    code = (
        "import sys\n"
        "from rlinf.apps.math._config import load_math_config\n"
        "load_math_config('grpo', ['runner.steps=3'])\n"
        "print(sorted(m for m in ('ray', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_async_knobs_load():
    cfg = load_math_config(
        "grpo",
        ["runner.max_staleness=2", "algo.off_policy_correction=decoupled", "algo.is_cap=3.0"],
    )
    assert cfg.runner.max_staleness == 2
    assert cfg.algo.effective_policy_loss == "decoupled_ppo"
    assert cfg.algo.ppo_loss_config.tis_cap == 3.0
    assert load_math_config("grpo").runner.max_staleness == 0


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["runner.partial_mode=sometimes"], "runner: partial_mode must be one of"),
        (["runner.partial_mode=continue"], "runner: partial_mode=continue needs max_staleness"),
        (
            [
                "runner.max_staleness=1",
                "runner.partial_mode=abort",
                "runner.weight_sync=collective",
            ],
            "runner: partial_mode=abort needs weight_sync object_store",
        ),
        (
            [
                "runner.max_staleness=1",
                "runner.partial_mode=continue",
                "runner.update_interval_tokens=0",
            ],
            "runner: update_interval_tokens must be an int >= 1",
        ),
        (
            ["runner.max_staleness=1", "runner.partial_mode=continue", "generation.backend=vllm"],
            "runner.partial_mode=continue: needs generation.backend=hf",
        ),
    ],
)
def test_bad_partial_rollout_config_is_named(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_math_config("grpo", overrides)


def test_partial_rollout_config_loads():
    cfg = load_math_config(
        "grpo",
        ["runner.max_staleness=1", "runner.partial_mode=abort", "runner.update_interval_tokens=4"],
    )
    assert cfg.runner.partial.mode == "abort"
    assert cfg.runner.partial.update_interval_tokens == 4
    assert not load_math_config("grpo").runner.partial.enabled
