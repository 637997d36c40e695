"""rlinf.algos: Pure tensor functions and registries for RL: advantages, policy and value losses, KL estimators, entropy, off-policy objectives, replay buffer."""

__all__: list[str] = []
