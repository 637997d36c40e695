"""``rlinf-math plan`` and ``placement: auto``: the config rules, the app's checks that
filter the planner's candidates (no Ray), the CLI's input errors (exit 2 before Ray), and
(slow) the command end to end on the tiny model."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import yaml

from rlinf.apps.math._app import APP
from rlinf.apps.math._config import load_math_config, validate
from rlinf.core import ConfigError, probe_cli, read_metrics
from rlinf.models.llm._plan import apply_llm_plan
from rlinf.models.llm._plan_profile import llm_profile_from_metrics
from rlinf.models.planning import choose

SMALL = [
    "data.arithmetic.max_digits=1",
    "data.arithmetic.operators=[+,-]",
    "data.train_rows=60",
    "data.test_rows=8",
    "model.tiny.hidden_size=32",
    "model.tiny.intermediate_size=64",
    "sft.steps=0",
    "generation.max_new_tokens=12",
    "generation.n=4",
    "runner.prompts_per_step=4",
    "runner.progress=false",
    "checker.num_workers=1",
]
ROWS = [
    {"time/generate": g, "time/reward": 0.1, "time/update": 0.4, "time/weight_sync": 0.05,
     "time/step": g + 0.6}
    for g in (5.0, 0.6, 0.6)
]  # fmt: skip


def test_auto_placement_is_checked_at_the_reference_point():
    cfg = load_math_config("grpo", ["placement=auto", "runner.max_staleness=2"])
    assert cfg.placement == "auto"
    assert validate(cfg).mode == "collocated"
    with pytest.raises(ConfigError, match=r"placement\.actor: 'auto' plans every component"):
        load_math_config("grpo", ["placement.actor=auto"])
    with pytest.raises(ConfigError, match="placement: expected a mapping"):
        load_math_config("grpo", ["placement=fastest"])


def test_candidates_are_checked_by_the_app():
    # The one-process torch backend cannot train on two actor ranks: the app refuses every
    # candidate that gives the actor both slots, under the key its check names.
    cfg = load_math_config("grpo", ["placement=auto", "training.backend=torch"])
    profile = llm_profile_from_metrics(ROWS)
    ranked, dropped, examples = choose(
        profile,
        cfg.cluster.topology(),
        lambda c: _why(cfg, c),
    )
    assert dropped["training.backend"] >= 1
    assert "'torch' trains in one process" in examples["training.backend"]
    assert all(r.specs["actor"] != "0-1" for r in ranked)
    best = apply_llm_plan(cfg, ranked[0])
    # rollout+reward on one slot, the actor on the other, one step of staleness: the update
    # (0.4 s) hides behind the next chain (generate 0.6 + unexplained 1.2 - 1.15 = 0.05 +
    # reward 0.1 = 0.75 s), then the 0.05 s sync: 0.8 s.
    assert best.placement == {"rollout": "0", "reward": "0", "actor": "1"}
    assert best.runner.max_staleness == 1
    assert ranked[0].seconds == pytest.approx(0.8)


def _why(cfg, candidate):
    try:
        validate(apply_llm_plan(cfg, candidate))
    except ConfigError as e:
        return str(e)
    return None


def test_plan_input_errors_exit_before_ray(tmp_path):
    # A resumed run keeps its placement: a config.yaml saying 'auto' is refused.
    run = tmp_path / "run"
    run.mkdir()
    preset = yaml.safe_load((resources.files("rlinf.apps.math") / "presets/grpo.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**preset, "placement": "auto"}))
    cases = [
        (["plan", "--profile-devices", "2"], "--profile-devices must include 1"),
        (["plan", "--profile-devices", "1,3"], "--profile-devices: 3 is not a device count"),
        (["plan", "--iterations", "1"], "--iterations must be an int >= 2"),
        (["plan", "--top", "0"], "--top must be >= 1"),
        (
            ["plan", "--profile-devices", "1,2", "training.backend=torch"],
            "plan: the reference run on 2 device(s) is refused: training.backend: 'torch'",
        ),
    ]
    argvs = [[a[0], "--config", "grpo", *a[1:]] for a, _ in cases]
    argvs.append(["train", "--resume", str(run)])
    cases.append(([], "placement: 'auto' plans new runs only"))
    for (_, expected), probe in zip(cases, probe_cli("rlinf.apps.math.cli", argvs), strict=True):
        assert probe.code == 2, probe.stderr
        assert probe.stderr.startswith(f"rlinf-math: error: {expected}"), probe.stderr
        assert not probe.started_ray


@pytest.mark.slow(seconds=190)
def test_plan_then_auto_train_end_to_end(tmp_path, capsys):
    from rlinf.apps.math.cli import main

    out = tmp_path / "plan.yaml"
    # One profiled count here (plus the wide point: two CPU slots); which counts `auto`
    # profiles is a quick test (test_auto_profiles_two_device_counts_...), so the auto run
    # below plans on one device: each profiled point is a flow of its own (~40 s here).
    args = ["plan", "--config", "grpo", "--iterations", "3", "--profile-devices", "1"]
    assert main([*args, "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    block = yaml.safe_load(out.read_text())
    assert set(block["placement"]) == {"actor", "rollout", "reward"}
    assert block["runner"]["max_staleness"] in (0, 1)
    assert "reference (all on device 0, synchronous step; scaling measured at 1 device" in printed
    # The block is a config the app accepts.
    overrides = [f"placement.{c}={d}" for c, d in block["placement"].items()]
    load_math_config("grpo", [*SMALL, *overrides])
    run_dir = tmp_path / "auto"
    train = ["train", "--config", "grpo", "--run-dir", str(run_dir), "placement=auto"]
    train += ["cluster.devices=1", "cluster.num_cpus=1"]
    assert main([*train, *SMALL, "runner.steps=2", "runner.eval_every=0"]) == 0
    assert "placement: auto chose" in capsys.readouterr().out
    record = json.loads((run_dir / "plan.json").read_text())
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["placement"] == record["chosen"]["placement"]
    assert written["runner"]["max_staleness"] == record["chosen"]["runner"]["max_staleness"]
    assert [int(r["step"]) for r in read_metrics(run_dir / "metrics.jsonl")][-1] == 2
    assert APP.check_config is validate


def test_auto_profiles_two_device_counts_when_the_app_accepts_them():
    from rlinf.models.llm._plan import auto_profile_devices

    assert auto_profile_devices(load_math_config("grpo", ["placement=auto"]), validate) == (1, 2)
    # One-process torch cannot train on 2 actor ranks, one slot has no second count: only 1.
    torch_cfg = load_math_config("grpo", ["placement=auto", "training.backend=torch"])
    assert auto_profile_devices(torch_cfg, validate) == (1,)
    one = load_math_config("grpo", ["placement=auto", "cluster.devices=1"])
    assert auto_profile_devices(one, validate) == (1,)


def test_wide_point_gives_lending_candidates_the_app_accepts():
    from rlinf.models.llm._plan import llm_choose, wants_wide_llm
    from rlinf.models.llm._plan_profile import llm_plan_block
    from rlinf.models.planning import with_wide_point

    cfg = load_math_config("grpo", ["placement=auto", "training.backend=torch"])
    assert wants_wide_llm(cfg)  # 2 CPU slots on one node, a scheduler section

    # An update (2.0 s) much longer than the chain; at twice the threads it takes 1.0 s
    # while the tiny generation gets slower (0.6 -> 0.7 s).
    def rows(gen: float, update: float) -> list[dict[str, float]]:
        return [
            {"time/generate": gen, "time/reward": 0.1, "time/update": update,
             "time/weight_sync": 0.05, "time/step": gen + 0.1 + update + 0.05 + 0.05}
            for _ in range(3)
        ]  # fmt: skip

    profile = with_wide_point(
        llm_profile_from_metrics(rows(0.6, 2.0)), llm_profile_from_metrics(rows(0.7, 1.0))
    )
    assert profile["actor"].wide_seconds == pytest.approx(1.0)
    ranked, dropped, examples = llm_choose(cfg, profile, cfg.cluster.topology(), validate)
    # Lending beside an overlapped update is not built in the LLM flow: dropped, by key.
    assert dropped["scheduler.dynamic"] >= 1
    assert "max_staleness=1) is not built" in examples["scheduler.dynamic"]
    best = ranked[0]
    # rollout+reward 0 | actor 1, synchronous, the rollout's slot lent to the update:
    # chain 0.6 + 0.05 (unexplained) + 0.1 = 0.75, update 2.0 / s 2 = 1.0, sync 0.05.
    assert best.lending and not best.overlap_update
    assert best.seconds == pytest.approx(1.8)
    block = llm_plan_block(best, cfg)
    assert block == {
        "placement": {"rollout": "0", "reward": "0", "actor": "1"},
        "runner": {"max_staleness": 0},
        "scheduler": {"dynamic": True},
    }
    planned = apply_llm_plan(cfg, best)
    assert planned.scheduler.dynamic and validate(planned).mode == "hybrid"
    wide = next(r for r in ranked if r.wide)
    # all on slot 0 at 2 threads: 0.7 + 0.05 + 0.1 + 1.0 + 0.05
    assert wide.seconds == pytest.approx(1.9)
    assert llm_plan_block(wide, cfg)["runner"]["torch_threads"] == 2
    assert apply_llm_plan(cfg, wide).runner.torch_threads == 2
    with pytest.raises(ValueError, match="needs the planned config"):
        llm_plan_block(best)
