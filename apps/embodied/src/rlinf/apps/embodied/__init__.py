"""rlinf.apps.embodied: Embodied: a policy acts in a simulator and PPO/GRPO/SAC-family algorithms update it."""

__all__: list[str] = []
