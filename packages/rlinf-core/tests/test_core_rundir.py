"""Run directories, checkpoints, metrics, presets, placement checks, CLI helpers."""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import random
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rlinf.core import (
    CONFIG_FILE,
    ClusterSection,
    ConfigError,
    MetricLogger,
    RunnerSection,
    add_train_command,
    config_from_dict,
    find_preset,
    find_run_dir,
    latest_checkpoint,
    lazy_exports,
    load_app_config,
    load_checkpoint,
    load_config,
    new_run_dir,
    read_metrics,
    resolve_torch_threads,
    restore_driver_rng,
    resume_run,
    run_cli,
    save_checkpoint,
    train_or_resume,
    validate_placement,
    write_config,
)


@dataclasses.dataclass(frozen=True)
class _Runner:
    name: str = "demo"
    steps: int = 3
    tags: tuple[str, ...] = ("a", "b")


@dataclasses.dataclass(frozen=True)
class _Cfg:
    runner: _Runner = dataclasses.field(default_factory=_Runner)
    lr: float = 0.5


def _load(source, overrides=()):
    return load_config(_Cfg, source, overrides)


def test_new_run_dir_is_timestamped_and_refuses_a_non_empty_dir(tmp_path):
    made = new_run_dir(tmp_path / "runs", "demo")
    assert made.parent == tmp_path / "runs" and made.is_dir() and not any(made.iterdir())
    assert re.fullmatch(r"\d{8}-\d{6}-demo", made.name)
    given = new_run_dir(tmp_path / "unused", "demo", tmp_path / "mine")
    assert given == tmp_path / "mine" and given.is_dir()
    (given / "x").write_text("1")
    with pytest.raises(FileExistsError, match="not empty"):
        new_run_dir(tmp_path, "demo", given)


def test_write_config_round_trips_through_the_loader(tmp_path):
    cfg = _Cfg(runner=_Runner(steps=7, tags=("x",)), lr=0.25)
    path = write_config(cfg, tmp_path)
    assert path == tmp_path / CONFIG_FILE
    assert _load(path) == cfg


def test_checkpoints_latest_pointer_state_model_and_rng(tmp_path):
    calls = []

    def save_model(d: str) -> None:
        calls.append(d)
        pathlib.Path(d).mkdir()
        (pathlib.Path(d) / "weights.bin").write_bytes(b"w")

    np.random.seed(3)
    random.seed(3)
    first = save_checkpoint(tmp_path, "step_000001", {"step": 1, "x": [1, 2]}, save_model)
    expected_np, expected_py = np.random.rand(3), random.random()
    assert calls == [str(first / "model")]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000001\n"
    second = save_checkpoint(tmp_path, "step_000002", {"step": 2})
    assert latest_checkpoint(tmp_path) == second
    assert not (second / "model").exists()  # no save_model: state only

    write_config(_Cfg(), tmp_path)  # now tmp_path is a run directory
    state = load_checkpoint(tmp_path)  # a run dir loads its latest checkpoint
    assert state["step"] == 2 and state["dir"] == second
    state = load_checkpoint(first)
    assert state["step"] == 1 and state["x"] == [1, 2]
    assert state["model_dir"] == first / "model" and (state["model_dir"] / "weights.bin").is_file()
    np.random.seed(99)
    random.seed(99)
    restore_driver_rng(state)  # back to the RNG states saved with the first checkpoint
    assert np.array_equal(np.random.rand(3), expected_np) and random.random() == expected_py

    # Saving a tag again replaces the directory: no stale model files survive.
    save_checkpoint(tmp_path, "step_000001", {"step": 1})
    assert not (first / "model").exists() and latest_checkpoint(tmp_path) == first


def test_checkpoint_errors_name_the_cause(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints/latest"):
        latest_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a checkpoint directory"):
        load_checkpoint(tmp_path)
    for tag in ("", "a/b", "latest", ".."):
        with pytest.raises(ValueError, match="plain directory name"):
            save_checkpoint(tmp_path, tag, {})


def test_find_run_dir_and_resume_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_config(_Cfg(), run)
    save_checkpoint(run, "step_000003", {"step": 3})
    assert find_run_dir(run / "checkpoints" / "step_000003" / "model") == run
    with pytest.raises(FileNotFoundError, match="not inside a run directory"):
        find_run_dir(tmp_path)

    cfg, path, state, prepared = resume_run(run, _load, prepare=lambda c: c.lr)
    assert (cfg, path, state["step"], prepared) == (_Cfg(), run, 3, 0.5)
    cfg, _, _, _ = resume_run(str(run), _load, ["runner.steps=9"], prepare=lambda c: None)
    assert cfg.runner.steps == 9 and _load(run / CONFIG_FILE).runner.steps == 9  # recorded


def test_read_metrics_from_the_logger_file_or_its_run_dir(tmp_path):
    with MetricLogger(tmp_path, backends=("jsonl",)) as log:
        log.log({"a": 1.5, "b": float("nan")}, 0)
        log.log({"a": float("inf")}, 2)
    for source in (tmp_path, tmp_path / "metrics.jsonl"):
        rows = read_metrics(source)
        assert [r["step"] for r in rows] == [0.0, 2.0]
        assert rows[0]["a"] == 1.5 and np.isnan(rows[0]["b"]) and rows[1]["a"] == float("inf")


def test_find_preset_by_name_or_path(tmp_path, monkeypatch):
    pkg = tmp_path / "rundir_test_presets"
    (pkg / "presets").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "presets" / "small.yaml").write_text("lr: 1.0\n")
    (pkg / "presets" / "big.yaml").write_text("lr: 2.0\n")
    (pkg / "presets" / "notes.txt").write_text("not a preset")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_preset("small", "rundir_test_presets") == pkg / "presets" / "small.yaml"
    with pytest.raises(ConfigError, match=r"no preset named 'huge'; presets: big, small$"):
        find_preset("huge", "rundir_test_presets")
    own = tmp_path / "own.yml"
    own.write_text("lr: 3.0\n")
    assert find_preset(own, "rundir_test_presets") == own
    with pytest.raises(ConfigError, match="does not exist"):
        find_preset(tmp_path / "missing.yaml", "rundir_test_presets")


def test_validate_placement_names_the_key():
    comps = ("actor", "rollout", "env")
    placement = validate_placement(
        {"actor": "0", "rollout": "0-1", "env": "1"}, 2, comps, single_process=("actor",)
    )
    assert placement["rollout"].world_size == 2 and str(placement.mode) == "hybrid"
    with pytest.raises(ConfigError, match=r"placement\.actor: the actor runs as exactly one"):
        validate_placement(
            {"actor": "0-1", "rollout": "0", "env": "0"}, 2, comps, single_process=("actor",)
        )
    with pytest.raises(ConfigError, match=r"^placement: .*'rollout'.*out of range"):
        validate_placement({"actor": "0", "rollout": "5", "env": "0"}, 2, comps)
    with pytest.raises(ConfigError, match=r"^placement: .*\['env'\]"):
        validate_placement({"actor": "0", "rollout": "0"}, 2, comps)


def test_cluster_section_maps_to_a_cluster_config():
    cc = ClusterSection(num_cpus=3, devices=4, address="auto").cluster_config()
    assert (cc.num_cpus, cc.devices_per_node, cc.address) == (3, 4, "auto")
    with pytest.raises(ValueError, match="devices"):
        ClusterSection(devices=0)


def test_auto_torch_threads_are_the_cores_of_one_slot(monkeypatch):
    auto = RunnerSection()
    assert auto.torch_threads == "auto"
    # Collocated on one slot of 2 cores: every worker may use both (they take turns).
    assert resolve_torch_threads(auto, ClusterSection(num_cpus=2, devices=1)) == 2
    # Disaggregated over 2 slots: they split the cores.
    assert resolve_torch_threads(auto, ClusterSection(num_cpus=2, devices=2)) == 1
    assert resolve_torch_threads(auto, ClusterSection(num_cpus=8, devices=3)) == 2
    assert resolve_torch_threads(auto, ClusterSection(num_cpus=2, devices=4)) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert resolve_torch_threads(auto, ClusterSection(num_cpus=None, devices=4)) == 4
    # Joining a running cluster, num_cpus does not apply: this machine's cores stand in.
    assert resolve_torch_threads(auto, ClusterSection(num_cpus=2, address="auto")) == 8
    assert resolve_torch_threads(RunnerSection(torch_threads=3), ClusterSection()) == 3
    with pytest.raises(ValueError, match="torch_threads must be >= 1 or 'auto', got 0"):
        RunnerSection(torch_threads=0)
    with pytest.raises(ConfigError, match=r"runner.torch_threads: expected int \| 'auto', got 'x'"):
        config_from_dict(RunnerSection, {"torch_threads": "x"}, prefix="runner.")


def _run_python(code: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "RAY_AUTH_MODE")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_ensure_ray_env_sets_the_variables_without_importing_ray(tmp_path):
    res = _run_python(
        """
        import os, sys
        from rlinf.core import ensure_ray_env
        ensure_ray_env("unused", [])
        assert "ray" not in sys.modules, "importing ensure_ray_env imported Ray"
        print(os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"], os.environ["RAY_AUTH_MODE"])
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "disabled"]


def test_loading_app_configs_and_parsing_placements_imports_no_ray(tmp_path):
    # A bad config must fail in a fraction of a second, before Ray is even imported.
    res = _run_python(
        """
        import sys
        from rlinf.core import ClusterSection, RunnerSection, validate_placement
        placement = validate_placement({"a": "0", "b": "0-1"}, 2, ["a", "b"])
        assert placement.mode.value == "hybrid", placement.mode
        ClusterSection().cluster_config()
        RunnerSection()
        assert "ray" not in sys.modules, "loading a config imported Ray"
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr


def test_ensure_ray_env_reexecutes_when_ray_was_imported_first(tmp_path):
    (tmp_path / "rundir_test_cli.py").write_text(
        "import os, sys\n"
        "print('child', os.environ['RAY_ENABLE_UV_RUN_RUNTIME_ENV'], 'ray' in sys.modules, "
        "*sys.argv[1:])\n"
    )
    res = _run_python(
        """
        import ray
        from rlinf.core import ensure_ray_env
        ensure_ray_env("rundir_test_cli", ["train", "--x=1"])
        print("parent continued")
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["child", "0", "False", "train", "--x=1"]


def test_load_app_config_finds_the_preset_and_validates(tmp_path, monkeypatch):
    pkg = tmp_path / "rundir_test_app"
    (pkg / "presets").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "presets" / "fast.yaml").write_text("lr: 0.125\nrunner:\n  steps: 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []

    def validate(cfg: _Cfg) -> None:
        seen.append(cfg)
        if cfg.lr > 1:
            raise ConfigError("lr: must be <= 1")

    cfg = load_app_config(
        _Cfg, "fast", ["runner.steps=5"], package="rundir_test_app", validate=validate
    )
    assert cfg == _Cfg(runner=_Runner(steps=5), lr=0.125) and seen == [cfg]
    assert (
        load_app_config(_Cfg, {"lr": 0.5}, package="rundir_test_app", validate=validate).lr == 0.5
    )
    with pytest.raises(ConfigError, match="lr: must be <= 1"):
        load_app_config(_Cfg, "fast", ["lr=2.0"], package="rundir_test_app", validate=validate)


def _demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo")
    add_train_command(p.add_subparsers(dest="command", required=True), help="h", config_help="c")
    return p


def test_train_command_dispatch_and_cli_exit_codes(capsys):
    calls = []

    def train(config, overrides, run_dir):
        if config == "bad":
            raise ConfigError("lr: bad value")
        calls.append(("train", config, list(overrides), run_dir))

    def resume(run_dir, overrides):
        calls.append(("resume", run_dir, list(overrides)))

    def command(args):
        train_or_resume(args, train, resume)

    def run(*argv: str) -> int:
        return run_cli("unused", _demo_parser(), command, list(argv))

    assert run("train", "--config", "p", "a.b=1", "--run-dir", "d") == 0
    assert run("train", "--resume", "r", "x=2") == 0
    assert calls == [("train", "p", ["a.b=1"], "d"), ("resume", "r", ["x=2"])]
    assert run("train", "--resume", "r", "--run-dir", "d") == 2
    assert "demo: error: --run-dir cannot be combined with --resume" in capsys.readouterr().err
    assert run("train", "--config", "bad") == 2
    assert "demo: error: lr: bad value" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --config and --resume are exclusive
        run("train", "--config", "p", "--resume", "r")


def test_lazy_exports_import_on_first_use():
    getter = lazy_exports("rlinf.core", {"read_metrics": "._rundir"})
    assert getter("read_metrics") is read_metrics
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        getter("nope")


def test_runner_section_checks_its_fields_and_subclasses_keep_them():
    @dataclasses.dataclass(frozen=True)
    class Runner(RunnerSection):
        name: str = "app"
        steps: int = 1

    r = Runner(steps=3)
    assert (r.name, r.steps, r.checkpoint_every, r.timeout_s) == ("app", 3, 0, 600.0)
    assert [f.name for f in dataclasses.fields(r)][:2] == ["name", "seed"]
    for kwargs, message in (
        ({"checkpoint_every": -1}, "checkpoint_every"),
        ({"torch_threads": 0}, "torch_threads"),
        ({"timeout_s": 0.0}, "timeout_s"),
    ):
        with pytest.raises(ValueError, match=message):
            Runner(**kwargs)
