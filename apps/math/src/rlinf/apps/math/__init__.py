"""rlinf.apps.math: Math reasoning: an LLM answers problems, a checker scores them, GRPO/PPO/DAPO/Reinforce++ update it."""

__all__: list[str] = []
