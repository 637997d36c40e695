"""The embodied runner section: run length, pipelining and how the flow executes."""

from __future__ import annotations

from dataclasses import dataclass

from rlinf.core import RunnerSection

__all__ = ["EmbodiedRunnerSection"]


@dataclass(frozen=True)
class EmbodiedRunnerSection(RunnerSection):
    """How long to train and what to record: the fields of :class:`rlinf.core.RunnerSection`
    (``name``, ``seed``, ``checkpoint_every``, ``runs_root``, ``metric_backends``,
    ``torch_threads``, ``timeout_s``, ``progress``, ``weight_sync``,
    ``weight_sync_bucket_mb``) plus the run length and pipelining below; ``weight_sync``
    applies to rollout workers (with ``policy_in_env`` weights go by the object store). ``seed`` offsets ``env.seed`` and seeds the initial weights and sampling;
    ``torch_threads`` is per worker (1: best for small MLPs).

    Attributes:
        total_env_steps: stop after this many env steps (primitive steps over all envs).
        horizon: ``T``, steps per env per rollout; one update per rollout.
        pipeline_stages: each env worker's envs are split into this many stages, so one
            stage's simulation overlaps another's inference (1: no pipelining).
        overlap_update: collect the next rollout while the actor updates on the last one.
            The rollout then acts with weights one version behind the actor's (one-step
            off-policy, as in asynchronous PPO), so the actor uses the decoupled objective
            (``algo.decoupled``, turned on here): clip around the update's starting policy,
            importance-weight by the rollout's log-probs. It pays only where the actor has
            devices of its own
            (e.g. ``placement.actor: "1"``, env and rollout on ``"0"``); collocated, the
            two would just share the device.
        policy_in_env: the env workers run the rollout policy themselves (no rollout
            workers, no per-step hand-off between processes; weights go to the env
            workers). Needs ``placement.rollout`` on the same devices as
            ``placement.env``: it is how env and rollout sharing devices execute best when
            the stages' exchange, not inference, is the cost (small policies on CPU).
    """

    name: str = "embodied"
    checkpoint_every: int = 20
    timeout_s: float = 300.0
    total_env_steps: int = 100_000
    horizon: int = 128
    pipeline_stages: int = 1
    overlap_update: bool = False
    policy_in_env: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.total_env_steps < 1 or self.horizon < 1:
            raise ValueError("total_env_steps and horizon must be >= 1")
        if self.pipeline_stages < 1:
            raise ValueError(f"pipeline_stages must be >= 1, got {self.pipeline_stages}")
        if self.policy_in_env and self.weight_sync == "collective":
            raise ValueError(
                "runner.weight_sync=collective needs rollout workers: with "
                "runner.policy_in_env the env workers load weights from the object store "
                "(use weight_sync=auto or object_store)"
            )
