"""Input errors of ``rlinf-math train`` end in one line and exit code 2 before Ray or any
worker starts, and leave no run directory behind (each case runs the CLI in a fresh
process: :func:`rlinf.core.probe_cli`)."""

from __future__ import annotations

import json
import pathlib

import pytest

from rlinf.core import probe_cli


def _rows(path: pathlib.Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _files(train: str, test: str) -> list[str]:
    return [
        "data.source=files",
        f"data.train_files={{paths: [{train}]}}",
        f"data.test_files={{paths: [{test}]}}",
    ]


@pytest.fixture
def good(tmp_path: pathlib.Path) -> str:
    return _rows(tmp_path / "train.jsonl", [{"prompt": "1+1=", "answer": "2"}])


def _case(tmp_path: pathlib.Path, name: str, good: str) -> tuple[list[str], str]:
    """``(overrides, the error line's expected start after 'rlinf-math: error: ')``."""
    missing = tmp_path / "nope.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    no_answer = _rows(tmp_path / "bad.jsonl", [{"prompt": "2+2="}])
    return {
        "missing_test_file": (_files(good, str(missing)), f"{missing}: no such file or directory"),
        "empty_test_file": (_files(good, str(empty)), f"{empty}: no rows (every path of data.test_files"),
        "empty_train_file": (_files(str(empty), good), f"{empty}: no rows (every path of data.train_files"),
        "missing_field": (_files(good, no_answer), f"{no_answer}:1: missing answer field 'answer'"),
        "model_path": ([f"model.path={missing}"], f"model.path: model path '{missing}' does not exist"),
    }[name]  # fmt: skip


# Ray-heavy: the workspace suite runs it; the isolated-install checks (quick tests) skip it.
@pytest.mark.slow
def test_input_errors_exit_2_before_ray_and_leave_no_run_dir(tmp_path, good):
    names = [
        "missing_test_file",
        "empty_test_file",
        "empty_train_file",
        "missing_field",
        "model_path",
    ]
    cases = [_case(tmp_path, name, good) for name in names]
    config = tmp_path / "mine.yaml"
    config.write_text("runner:\n  steps: 3\n algo: {lr: 0.1\n")
    cases.append(([], f"{config}:3:2: invalid YAML: "))
    run_dir = tmp_path / "run"
    argvs = [["train", "--config", "grpo", "--run-dir", str(run_dir), *o] for o, _ in cases[:-1]]
    argvs.append(["train", "--config", str(config), "--run-dir", str(run_dir)])
    for (_, expected), probe in zip(cases, probe_cli("rlinf.apps.math.cli", argvs), strict=True):
        assert probe.code == 2, probe.stderr
        assert probe.stderr.splitlines() == [probe.stderr.strip()]  # one line
        assert probe.stderr.startswith(f"rlinf-math: error: {expected}"), probe.stderr
        assert not probe.started_ray
        assert not run_dir.exists()
