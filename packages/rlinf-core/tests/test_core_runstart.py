"""Starting and resuming runs: checks before the directory exists, unique run directory
names, one metrics row per step after a resume, one-line errors for malformed YAML."""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import threading

import pytest

from rlinf.core import (
    ConfigError,
    MetricLogger,
    load_config,
    new_run_dir,
    probe_cli,
    read_metrics,
    resume_run,
    run_cli,
    save_checkpoint,
    start_run,
    truncate_metrics,
    write_config,
)


@dataclasses.dataclass(frozen=True)
class _Runner:
    name: str = "demo"
    runs_root: str = "runs"


@dataclasses.dataclass(frozen=True)
class _Cfg:
    runner: _Runner = dataclasses.field(default_factory=_Runner)
    data: str = "rows.jsonl"


def _load(source, overrides=()):
    return load_config(_Cfg, source, overrides)


def _require_data(cfg: _Cfg) -> list[str]:
    path = pathlib.Path(cfg.data)
    if not path.is_file() or not path.read_text().strip():
        raise ValueError(f"data: {path}: missing or empty")
    return path.read_text().splitlines()


def test_start_run_checks_everything_before_making_the_directory(tmp_path):
    root = tmp_path / "runs"
    cfg = {"runner": {"runs_root": str(root)}, "data": str(tmp_path / "rows.jsonl")}
    with pytest.raises(ValueError, match=r"rows\.jsonl: missing or empty"):
        start_run(_load, cfg, (), None, prepare=_require_data)
    assert not root.exists()  # nothing left behind to block the next try
    mine = tmp_path / "mine"
    with pytest.raises(ValueError, match="missing or empty"):
        start_run(_load, cfg, (), mine, prepare=_require_data)
    assert not mine.exists()

    (tmp_path / "rows.jsonl").write_text("a\nb\n")
    loaded, path, rows = start_run(_load, cfg, (), mine, prepare=_require_data)
    assert (path, rows) == (mine, ["a", "b"])
    assert _load(path / "config.yaml") == loaded

    # An occupied --run-dir fails before the data is even read.
    def never(cfg: _Cfg) -> None:
        raise AssertionError("prepare ran for an occupied run directory")

    with pytest.raises(FileExistsError, match="not empty"):
        start_run(_load, cfg, (), mine, prepare=never)


def test_runs_started_in_the_same_second_get_distinct_directories(tmp_path):
    made: list[pathlib.Path] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        made.append(new_run_dir(tmp_path, "demo"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.name for p in made}) == 8
    assert all(p.is_dir() and not any(p.iterdir()) for p in made)
    # Each name is <timestamp>-demo, or <timestamp>-demo-<n> for the later ones in a second.
    stamps = {p.name.split("-demo")[0] for p in made}
    suffixes = sorted(
        p.name.split("-demo")[1] for p in made if p.name.split("-demo")[0] == min(stamps)
    )
    assert suffixes[0] == "" and all(s == "" or s[1:].isdigit() for s in suffixes)


def test_resume_keeps_one_metrics_row_per_step(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_config(_Cfg(), run)
    with MetricLogger(run, backends=("jsonl",)) as log:
        for step in range(5):
            log.log({"loss": float(step)}, step)
            if step == 2:
                save_checkpoint(run, "step_000002", {"step": 2}, metrics_step=2)
    # Interrupted after step 4 (no checkpoint there): steps 3 and 4 run again on resume.
    _, _, state, _ = resume_run(run, _load, prepare=lambda cfg: None)
    assert state["step"] == 2
    assert [r["step"] for r in read_metrics(run)] == [0, 1, 2]
    with MetricLogger(run, backends=("jsonl",)) as log:
        for step in (3, 4):
            log.log({"loss": 10.0 + step}, step)
    rows = read_metrics(run)
    assert [(r["step"], r["loss"]) for r in rows] == [(0, 0), (1, 1), (2, 2), (3, 13), (4, 14)]
    assert truncate_metrics(run, 10) == 0  # nothing after step 10: the file is untouched
    assert truncate_metrics(tmp_path / "none", 0) == 0  # no file


def test_malformed_yaml_is_one_error_line_naming_file_line_and_cause(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runner:\n  name: [demo\n  runs_root: x\n")
    with pytest.raises(ConfigError) as info:
        _load(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}:3:") and "invalid YAML" in message and "\n" not in message

    parser = argparse.ArgumentParser(prog="rlinf-demo")
    parser.add_argument("--config")

    def command(args: argparse.Namespace) -> None:
        _load(args.config)

    assert run_cli("rlinf.core", parser, command, ["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rlinf-demo: error: {bad}:3:")

    undecodable = tmp_path / "latin1.yaml"
    undecodable.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8"):
        _load(undecodable)


def test_truncate_keeps_the_kept_lines_verbatim(tmp_path):
    lines = [json.dumps({"step": s, "x": "nan" if s == 1 else 0.1}) for s in (0, 1, 2)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert truncate_metrics(tmp_path, 1) == 1
    assert (tmp_path / "metrics.jsonl").read_text() == "\n".join(lines[:2]) + "\n"


def test_probe_cli_sees_whether_a_cli_started_ray(tmp_path, monkeypatch):
    # A CLI whose main starts (and stops) Ray only when given an argument.
    (tmp_path / "probe_demo_cli.py").write_text(
        "def main(argv):\n"
        "    import sys\n"
        "    if argv:\n"
        "        import ray\n"
        "        ray.init(num_cpus=1, include_dashboard=False, logging_level='ERROR')\n"
        "        ray.shutdown()\n"
        "    print('argv', argv, file=sys.stderr)\n"
        "    return len(argv)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    idle, started = probe_cli("probe_demo_cli", [[], ["start"]])
    assert (idle.code, idle.stderr, idle.started_ray) == (0, "argv []\n", False)
    assert (started.code, started.stderr, started.started_ray) == (1, "argv ['start']\n", True)
