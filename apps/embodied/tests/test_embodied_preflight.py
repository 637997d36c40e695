"""A bad env fails ``rlinf-embodied train`` in the driver: one line naming the key, exit
code 2, no Ray started and no run directory made (the CLI runs in a fresh process)."""

from __future__ import annotations

from rlinf.core import probe_cli

BAD_ENVS = {
    "env.env_id=NoSuchEnv-v0": "env.env_id: 'NoSuchEnv-v0' is not a registered gymnasium env",
    "env.kind=nope": "env.kind: unknown env kind 'nope'; valid: gym, maniskill, metaworld, mujoco",
}


def test_bad_env_ids_and_kinds_fail_before_ray(tmp_path):
    runs = tmp_path / "runs"
    argvs = [
        ["train", "--config", "cartpole", f"runner.runs_root={runs}", override]
        for override in BAD_ENVS
    ]
    probes = probe_cli("rlinf.apps.embodied.cli", argvs)
    for probe, message in zip(probes, BAD_ENVS.values(), strict=True):
        assert (probe.code, probe.started_ray) == (2, False), probe.stderr
        assert probe.stderr.startswith(f"rlinf-embodied: error: {message}"), probe.stderr
        assert len(probe.stderr.strip().splitlines()) == 1
    assert not runs.exists()
