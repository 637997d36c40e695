"""``rlinf-agentic``: a missing model or a config file that is not YAML is reported in one
line with exit code 2, before Ray starts and before any directory is written."""

from __future__ import annotations

from rlinf.core import probe_cli


def test_missing_model_and_broken_yaml_fail_before_ray(tmp_path):
    broken = tmp_path / "search.yaml"
    broken.write_text("task:\n  kind: multihop\n  sft_traces: [1, 2\n")
    model = tmp_path / "no_model"
    out = tmp_path / "out"
    probes = probe_cli(
        "rlinf.apps.agentic.cli",
        [
            ["train", "--config", "search", "--run-dir", str(out), f"model.path={model}"],
            ["train", "--config", str(broken), "--run-dir", str(out)],
            ["sft", "--config", "search", "--out", str(out), f"model.path={model}"],
        ],
    )
    expected = [
        f"model.path: model path '{model}' does not exist",
        f"{broken}:4:1: invalid YAML: ",
        f"model.path: model path '{model}' does not exist",
    ]
    for probe, message in zip(probes, expected, strict=True):
        assert probe.code == 2 and not probe.started_ray, probe.stderr
        assert probe.stderr.startswith(f"rlinf-agentic: error: {message}"), probe.stderr
        assert probe.stderr.count("\n") == 1
    assert not out.exists()
