"""rlinf.envs: Vectorized environments for rlinf: gymnasium/MuJoCo/ManiSkill adapters, text environments for LLMs, EnvWorker."""

__all__: list[str] = []
